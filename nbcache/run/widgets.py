"""Widgets a cell showed, stored in the state the run left them in, and live again on a hit.

A widget's output is only a reference (``application/vnd.jupyter.widget-view+json`` naming a
model id); what it shows lives in the model, which a restart loses. So when a recording ends,
:meth:`WidgetTracker.snapshot` stores the models the outputs refer to (and the models those refer
to: a tqdm bar is an ``HBox`` of two ``HTML`` and a ``FloatProgress``), in ipywidgets' own state
serialization (``Widget.get_manager_state``, the data JupyterLab's "Save widget state" writes).
A hit :func:`revive` s them: the same classes, from ipywidgets' registry (as the kernel does for a
model the frontend creates), with the final state, under new model ids the replayed views name.
A slider shows its value, a tqdm bar 100% and its final counts, live in the kernel.

``ipywidgets.Output`` captures outputs in the frontend, by the id of the request that ran the
cell: the recorder marks what was shown while an ``Output`` captured (:meth:`capturing`) and the
replay shows it inside the revived one.

Where a model cannot be revived (a custom widget whose class is not imported, no ipywidgets), the
hit shows the text form of the final state, taken when the recording ended; a widget the cell
closed shows nothing, as after running the cell.

ipywidgets is never imported here unless the notebook already did (or the replayed cell did).
"""

from __future__ import annotations

import base64
import copy
import sys
from typing import Any, Iterable, Iterator

__all__ = ["VIEW", "WidgetTracker", "reduce_widget", "revive", "view_data"]

VIEW = "application/vnd.jupyter.widget-view+json"
_REF = "IPY_MODEL_"
_WIDGET_MODULE = "ipywidgets.widgets.widget"
# Old model id -> the widget unpickling re-created for it during this hit: the replay then shows
# that same widget (``slider`` and the slider shown are one object, as after running the cell).
_revived: dict[str, Any] = {}


def _widget_module() -> Any:
    return sys.modules.get(_WIDGET_MODULE)


def _refs(value: Any) -> Iterator[str]:
    """Model ids a state or an output bundle refers to."""
    if isinstance(value, str):
        if value.startswith(_REF):
            yield value[len(_REF) :]
    elif isinstance(value, dict):
        view = value.get(VIEW)
        if isinstance(view, dict) and isinstance(view.get("model_id"), str):
            yield view["model_id"]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _refs(item)


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with model ids (references and views) replaced through ``ids``."""
    if isinstance(value, str):
        if value.startswith(_REF) and value[len(_REF) :] in ids:
            return _REF + ids[value[len(_REF) :]]
        return value
    if isinstance(value, dict):
        out = {k: _rewrite(v, ids) for k, v in value.items()}
        view = out.get(VIEW)
        if isinstance(view, dict) and view.get("model_id") in ids:
            out[VIEW] = {**view, "model_id": ids[view["model_id"]]}
        return out
    if isinstance(value, (list, tuple)):
        return [_rewrite(v, ids) for v in value]
    return value


def _text_form(widget: Any) -> str:
    """What the widget's ``text/plain`` would say now (ipywidgets cuts it at 110 characters)."""
    module = _widget_module()
    try:
        text = repr(widget)
    except Exception:  # noqa: BLE001 - tqdm's bar repr needs its (gone) progress object
        try:
            text = module.Widget.__repr__(widget)
        except Exception:  # noqa: BLE001
            return ""
    return text if len(text) <= 110 else text[:110] + "…"


def _manager_state(widgets: Iterable[Any]) -> dict[str, Any]:
    state = _widget_module().Widget.get_manager_state(drop_defaults=False, widgets=list(widgets))
    return dict(state["state"])


def _closure(roots: Iterable[str]) -> dict[str, Any]:
    """The live widgets with these model ids and every widget their states refer to."""
    instances = getattr(_widget_module(), "_instances", {})
    found: dict[str, Any] = {}
    stack = list(roots)
    while stack:
        model_id = stack.pop()
        widget = instances.get(model_id)
        if model_id in found or widget is None:
            continue
        found[model_id] = widget
        try:
            stack.extend(_refs(widget.get_state()))
        except Exception:  # noqa: BLE001 - a widget whose state cannot be read is stored as text
            continue
    return found


class WidgetTracker:
    """What a :class:`~nbcache.run.capture.Recorder` asks about widgets while it records."""

    def __init__(self) -> None:
        self._outputs: list[Any] = []
        self._seen: tuple[int, Any] = (0, None)

    def capturing(self) -> str | None:
        """The model id of the ``Output`` widget the frontend routes outputs to now, if any.
        Asked on every write to a stream, so the list of ``Output`` widgets is only made again
        when widgets were made or closed since."""
        output = sys.modules.get("ipywidgets.widgets.widget_output")
        if output is None:
            return None
        instances = getattr(_widget_module(), "_instances", {})
        seen = (len(instances), next(reversed(instances), None))
        if seen != self._seen:
            self._outputs = [w for w in list(instances.values()) if isinstance(w, output.Output)]
            self._seen = seen
        for widget in reversed(self._outputs):  # nested captures: the one made last (most often the inner one)
            if widget.msg_id and widget.comm is not None:
                return str(widget.model_id)
        return None

    def snapshot(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        """A ``widgets`` record: the models the records show, as the run left them."""
        if _widget_module() is None:
            return None
        shown = list(dict.fromkeys(m for r in records if r["type"] in ("display", "result") for m in _refs(r.get("data"))))
        if not shown:
            return None
        live = _closure(shown)
        try:
            state = _manager_state(live.values())
        except Exception:  # noqa: BLE001 - no state: the hit shows the text form
            state = {}
        return {
            "type": "widgets",
            "state": state,
            "text": {m: _text_form(live[m]) for m in shown if m in live},
            "closed": [m for m in shown if m not in live],
        }


# -- on a hit -------------------------------------------------------------------------------------
def _with_buffers(entry: dict[str, Any]) -> dict[str, Any]:
    state = copy.deepcopy(entry.get("state") or {})
    for buffer in entry.get("buffers") or ():
        target = state
        path = buffer["path"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = base64.b64decode(buffer["data"])
    return state


def _widget_class(state: dict[str, Any]) -> Any:
    """The class ipywidgets' registry names for a model's state (the registry the kernel uses for
    models the frontend creates), or None."""
    try:
        return _widget_module()._registry.get(
            state["_model_module"],
            state["_model_module_version"],
            state["_model_name"],
            state["_view_module"],
            state["_view_module_version"],
            state["_view_name"],
        )
    except (KeyError, TypeError, AttributeError):
        return None


def _create(state: dict[str, Any]) -> Any:
    """A live widget of the registered class for this state, made with the state (None: no such
    class here, or the state does not fit it)."""
    cls = _widget_class(state)
    if cls is None:
        return None
    traits = cls.class_traits(sync=True)
    values = {}
    for name, value in state.items():
        trait = traits.get(name)
        if trait is None:
            continue
        from_json = trait.metadata.get("from_json")
        if from_json is not None:
            try:
                value = from_json(value, None)
            except Exception:  # noqa: BLE001
                return None
        values[name] = value
    kwargs = {name: v for name, v in values.items() if not traits[name].read_only}
    if "_options_labels" in values and "options" in cls.class_traits():
        # Selection widgets sync their labels and index, not their options: the labels are the
        # options the frontend knows (exact for options given as strings).
        kwargs = {k: v for k, v in kwargs.items() if k not in ("value", "label", "index")}
        kwargs["options"] = tuple(values["_options_labels"])
        if "index" in values:
            kwargs["index"] = values["index"]
    try:
        return cls(**kwargs)
    except Exception:  # noqa: BLE001 - a state this class rejects: the text form instead
        return None


def revive(states: dict[str, Any]) -> dict[str, Any]:
    """Re-create the widgets of a ``widgets`` record's ``state``: old model id -> live widget
    (the ones that could not be made are left out, and so are the ones that refer to them)."""
    if not states:
        return {}
    if _widget_module() is None:
        try:
            import ipywidgets  # noqa: F401 - the cell being replayed imported it when it ran
        except ImportError:
            return {}
    made: dict[str, Any] = {}
    failed: set[str] = set()

    def make(model_id: str, path: tuple[str, ...]) -> Any:
        if model_id in made:
            return made[model_id]
        if model_id in _revived:
            made[model_id] = _revived[model_id]
            return made[model_id]
        entry = states.get(model_id)
        if entry is None or model_id in failed or model_id in path:
            return None
        state = _with_buffers(entry)
        for ref in dict.fromkeys(_refs(state)):
            if make(ref, (*path, model_id)) is None:
                failed.add(model_id)
                return None
        widget = _create(_rewrite(state, {old: w.model_id for old, w in made.items()}))
        if widget is None:
            failed.add(model_id)
        else:
            made[model_id] = widget
        return widget

    for model_id in states:
        make(model_id, ())
    return made


def reduce_widget(widget: Any) -> Any:
    """Pickle a live widget as its state, to be re-created (and shown by the replay) on a hit."""
    if getattr(widget, "comm", None) is None or _widget_class(widget.get_state()) is None:
        return None  # closed, or a class a hit could not re-create: pickle's own answer
    model_id = widget.model_id
    return _unpickle_widget, (model_id, _manager_state(_closure([model_id]).values()))


def _unpickle_widget(model_id: str, states: dict[str, Any]) -> Any:
    if model_id not in _revived:
        _revived.update(revive(states))
    if model_id not in _revived:
        raise ValueError(f"the widget {model_id} cannot be re-created here (is its library installed?)")
    return _revived[model_id]


def view_data(data: Any, revived: dict[str, Any] | None, record: dict[str, Any] | None) -> Any:
    """A recorded output bundle as the hit shows it: views name the revived widgets; a view whose
    widget could not be revived gives way to the text form of its final state; None when the
    output showed only widgets the cell closed (running the cell leaves nothing of them).

    ``record`` is the ``widgets`` record, None for entries stored before widgets were (a view
    then stays only while its model is alive in this kernel, as it is without a restart)."""
    if not isinstance(data, dict) or VIEW not in data:
        return data
    model_id = str((data[VIEW] or {}).get("model_id"))
    if record is None:
        instances = getattr(_widget_module(), "_instances", {})
        return data if model_id in instances else {k: v for k, v in data.items() if k != VIEW}
    widget = (revived or {}).get(model_id)
    if widget is not None:
        return _rewrite(data, {old: w.model_id for old, w in (revived or {}).items()})
    if model_id in record.get("closed", ()):
        return None
    text = (record.get("text") or {}).get(model_id)
    shown = {k: v for k, v in data.items() if k != VIEW}
    if text:
        shown["text/plain"] = text
    return shown


def forget_revived() -> None:
    """End of a hit: the next hit re-creates its own widgets, as running the cell again would."""
    _revived.clear()
