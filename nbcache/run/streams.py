"""The order in which stdout and stderr reach the notebook, as the kernel sends them.

A Jupyter kernel buffers each stream and sends what it holds a moment after the first write
(ipykernel: ``flush_interval``, 0.2 s), on an explicit ``flush()``, and before any display or
result. Writes to stdout and stderr a few milliseconds apart therefore arrive grouped by stream
(``o1 o2`` then ``e1``), while writes a second apart arrive interleaved (``o1 e1 o2``). A hit
replays everything at once, so it must replay the sends, not the writes: :class:`StreamOrder`
turns the writes of a run into the sequence of sends the kernel made, which the host replays
with a flush after each. A stream without a ``flush_interval`` (a terminal) sends each write at
once, in write order.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["StreamOrder"]

# The kernel flushes stdout, then stderr, before a display and when the cell ends.
_SYNC_ORDER = ("stdout", "stderr")


class StreamOrder:
    """Holds each stream's writes as the kernel buffers them; ``emit(name, text)`` gets each send."""

    def __init__(self, emit: Callable[[str, str], None], clock: Callable[[], float] = time.monotonic):
        self._emit = emit
        self._clock = clock
        self._pending: dict[str, list[str]] = {}
        self._due: dict[str, float] = {}

    def write(self, name: str, text: str, interval: float | None) -> None:
        now = self._clock()
        self._expire(now)
        if not interval or interval <= 0:
            self.flush(name)
            self._emit(name, text)
            return
        if name not in self._pending:
            self._pending[name] = []
            self._due[name] = now + interval
        self._pending[name].append(text)

    def flush(self, name: str) -> None:
        """An explicit flush of one stream (``print(..., flush=True)``, a progress bar)."""
        self._expire(self._clock())
        texts = self._pending.pop(name, None)
        self._due.pop(name, None)
        if texts:
            self._emit(name, "".join(texts))

    def sync(self) -> None:
        """Everything pending is sent (a display, a result, the end of the cell)."""
        self._expire(self._clock())
        for name in sorted(self._pending, key=lambda n: _SYNC_ORDER.index(n) if n in _SYNC_ORDER else len(_SYNC_ORDER)):
            self.flush(name)

    def _expire(self, now: float) -> None:
        # Sends the kernel's timer made by now, in the order it made them.
        for name in sorted((n for n, due in self._due.items() if due <= now), key=self._due.__getitem__):
            texts = self._pending.pop(name)
            del self._due[name]
            self._emit(name, "".join(texts))
