"""Recording what a cell shows while it runs, and showing it again.

A :class:`Recorder` taps the places output goes through, without diverting it: the user sees the
output live, and nbcache keeps an ordered list of records:

- ``{"type": "stream", "name": "stdout" | "stderr", "text": ...}``: ``print``, logging to a
  stream, ``!cmd`` output, in the order the kernel sent them (:mod:`nbcache.run.streams`).
  Consecutive sends of one stream are merged.
- ``{"type": "display", "data": ..., "metadata": ..., "transient": ..., "update": ...}``: every
  ``display()``: HTML, Markdown, images, inline matplotlib figures, pandas tables.
- ``{"type": "clear", "wait": ...}``: ``clear_output()``.
- ``{"type": "result", "index": i, "data": ..., "metadata": ...}``: the i-th value that went to
  the display hook (the cell's ``Out[n]``) and what the hook showed of it then; the value itself
  is stored with the variables, so a hit passes it through the same display hook (``_`` and
  ``Out`` hold the real object) showing what was shown then. Formatting it again would not do: a
  matplotlib ``Text`` moves once its figure is drawn, a figure restored from a pickle has no
  canvas to render to PNG.

Records shown while an ``ipywidgets.Output`` captured carry ``"into": model_id``: the frontend
showed them inside that widget. When the recording ends, a ``{"type": "widgets", ...}`` record
holds the state of the widgets the records show, as the run left them (see :mod:`.widgets`).

Streams are tapped by replacing the ``write`` method on the stream object itself (so a logging
handler that captured ``sys.stdout`` long ago is recorded too), or by swapping ``sys.stdout`` when
the stream does not allow that. The display publisher and display hook are objects given by the
caller, which keeps this module free of IPython.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any, Callable, Protocol

from .streams import StreamOrder

__all__ = ["Recorder", "decode_outputs", "encode_outputs"]

Record = dict[str, Any]


class Widgets(Protocol):
    """What the recorder asks of the widget library (see :class:`.widgets.WidgetTracker`)."""

    def capturing(self) -> str | None:
        """The model id of the output widget that outputs go into now, if any."""

    def snapshot(self, records: list[Record]) -> Record | None:
        """A record of the state of the widgets these records show."""


class Recorder:
    """Taps streams, a display publisher and a display hook while active (a context manager)."""

    def __init__(self, publisher: Any = None, widgets: Widgets | None = None):
        self.records: list[Record] = []
        self.results: list[Any] = []
        self._publisher = publisher
        self._widgets = widgets
        self._undo: list[Callable[[], None]] = []
        self.paused = False
        self._order = StreamOrder(self._sent)
        self._intervals: dict[str, float | None] = {}

    # -- recording -----------------------------------------------------------------------------
    def _into(self) -> str | None:
        return self._widgets.capturing() if self._widgets is not None else None

    def _add(self, record: Record, into: str | None) -> None:
        if into is not None:
            record["into"] = into
        self.records.append(record)

    def stream(self, name: str, text: str) -> None:
        if not text or self.paused:
            return
        self._order.write(name, str(text), self._intervals.get(name))

    def flushed(self, name: str) -> None:
        self._order.flush(name)

    def _sent(self, name: str, text: str) -> None:
        last = self.records[-1] if self.records else None
        into = self._into()
        if last is not None and last["type"] == "stream" and last["name"] == name and last.get("into") == into:
            last["text"] += text
        else:
            self._add({"type": "stream", "name": name, "text": str(text)}, into)

    def display(self, data: Any, metadata: Any = None, transient: Any = None, update: bool = False) -> None:
        if self.paused:
            return
        self._order.sync()
        record = {"type": "display", "data": data, "metadata": metadata, "transient": transient, "update": bool(update)}
        self._add(record, self._into())

    def clear(self, wait: bool = False) -> None:
        self._order.sync()
        self._add({"type": "clear", "wait": bool(wait)}, self._into())

    def result(self, value: Any) -> Record:
        """Record a value for the display hook; the caller shows it with :attr:`paused` set, so
        whatever the hook prints (a terminal shell prints ``Out[n]``) is not recorded twice, and
        fills in the record's ``data`` and ``metadata`` with what the hook showed."""
        self._order.sync()
        record: Record = {"type": "result", "index": len(self.results)}
        self.records.append(record)
        self.results.append(value)
        return record

    # -- installing taps -----------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        for name in ("stdout", "stderr"):
            self._tap_stream(name)
        if self._publisher is not None:
            self._tap_publisher(self._publisher)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._order.sync()
        while self._undo:
            self._undo.pop()()
        if self._widgets is not None:
            try:
                snapshot = self._widgets.snapshot(self.records)
            except Exception:  # noqa: BLE001 - no state: a hit shows the widgets' text form
                snapshot = None
            if snapshot is not None:
                self.records.append(snapshot)

    def _tap_stream(self, name: str) -> None:
        stream = getattr(sys, name)
        original = stream.write
        recorder = self
        interval = getattr(stream, "flush_interval", None)
        self._intervals[name] = interval if isinstance(interval, (int, float)) else None

        def write(text: Any) -> Any:
            if isinstance(text, str):
                recorder.stream(name, text)
            return original(text)

        self._tap_flush(stream, name)
        try:
            stream.write = write
        except (AttributeError, TypeError):
            tee = _Tee(stream, write)
            setattr(sys, name, tee)

            def undo_swap() -> None:
                if getattr(sys, name) is tee:
                    setattr(sys, name, stream)

            self._undo.append(undo_swap)
            return

        def undo_attr() -> None:
            if stream.__dict__.get("write") is write:
                del stream.write
            else:  # someone tapped on top of us; leave theirs in place
                pass

        self._undo.append(undo_attr)

    def _tap_flush(self, stream: Any, name: str) -> None:
        original = getattr(stream, "flush", None)
        if original is None:
            return
        recorder = self

        def flush() -> Any:
            recorder.flushed(name)
            return original()

        try:
            stream.flush = flush
        except (AttributeError, TypeError):
            return

        def undo() -> None:
            if stream.__dict__.get("flush") is flush:
                del stream.flush

        self._undo.append(undo)

    def _tap_publisher(self, publisher: Any) -> None:
        publish, clear_output = publisher.publish, publisher.clear_output
        recorder = self

        def tapped_publish(data: Any, metadata: Any = None, *args: Any, transient: Any = None, update: bool = False, **kwargs: Any) -> Any:
            recorder.display(data, metadata, transient, update)
            return publish(data, metadata, *args, transient=transient, update=update, **kwargs)

        def tapped_clear(wait: bool = False) -> Any:
            recorder.clear(wait)
            return clear_output(wait)

        publisher.publish = tapped_publish
        publisher.clear_output = tapped_clear

        def undo() -> None:
            for attr, tap in (("publish", tapped_publish), ("clear_output", tapped_clear)):
                if publisher.__dict__.get(attr) is tap:
                    delattr(publisher, attr)

        self._undo.append(undo)


class _Tee:
    """Stands in for a stream whose ``write`` cannot be replaced."""

    def __init__(self, stream: Any, write: Callable[[Any], Any]):
        self._stream = stream
        self.write = write

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._stream, attr)


# -- encoding ------------------------------------------------------------------------------------
def _to_json(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, dict):
        return {str(k): _to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_json(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return {"$repr": repr(obj)}


def _from_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"$bytes"}:
            return base64.b64decode(obj["$bytes"])
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def encode_outputs(records: list[Record]) -> bytes:
    """Records as JSON (bytes payloads such as PNG data base64-encoded): readable without pickle."""
    return json.dumps(_to_json(records), separators=(",", ":")).encode("utf-8")


def decode_outputs(raw: bytes) -> list[Record]:
    records = _from_json(json.loads(raw))
    if not isinstance(records, list):
        raise ValueError("outputs blob is not a list")
    return records
