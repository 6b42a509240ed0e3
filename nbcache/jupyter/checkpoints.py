"""Checkpoints: resume a long loop where it stopped, after an interruption or a crash.

::

    with nbcache.checkpoint("training", every=10) as ckpt:
        state = ckpt.load(default={"epoch": 0, "weights": w0})
        for epoch in range(state["epoch"], 200):
            state = {"epoch": epoch + 1, "weights": train_one_epoch(state["weights"])}
            ckpt.save(state)          # written every 10th call (or every `seconds`)

- ``save`` writes when due: every ``every`` calls and/or every ``seconds`` seconds.
- If the block is interrupted (KeyboardInterrupt, an error, a kernel crash after a save), the next
  run's ``load`` returns the last state written. An interruption also writes the latest state given
  to ``save``, so no progress is lost to the interval.
- When the block completes, the checkpoint is removed: it only exists while work is unfinished.

Checkpoints live in the active cache (``checkpoints/<name>`` in the store), written atomically and
checksummed like entries. Use one name per loop.
"""

from __future__ import annotations

import time
from typing import Any

import xxhash

from ..errors import CorruptEntryError
from ..store.backends import BlobStore

__all__ = ["Checkpoint", "checkpoint"]

_MISSING = object()


class Checkpoint:
    def __init__(self, name: str, store: BlobStore, *, every: int | None = None, seconds: float | None = None):
        if not name or "/" in name:
            raise ValueError(f"nbcache: checkpoint name {name!r} must be non-empty and contain no '/'")
        if every is None and seconds is None:
            every = 1
        self.name = name
        self.every = every
        self.seconds = seconds
        self.resumed = False
        """Whether :meth:`load` found a checkpoint from an earlier, unfinished run."""
        self.saves = 0
        self._store = store
        self._calls = 0
        self._last_write = time.monotonic()
        self._pending: Any = _MISSING

    @property
    def _blob(self) -> str:
        return f"checkpoints/{self.name}"

    def load(self, default: Any = None) -> Any:
        """The last saved state, or ``default`` when there is none (a fresh start)."""
        import cloudpickle

        try:
            raw = self._store.get(self._blob)
        except FileNotFoundError:
            return default
        digest, payload = raw[:32].decode("ascii", "replace"), raw[32:]
        if xxhash.xxh3_128_hexdigest(payload) != digest:
            raise CorruptEntryError(f"nbcache: checkpoint {self.name!r} fails its checksum; delete it with .clear()")
        self.resumed = True
        return cloudpickle.loads(payload)

    def save(self, state: Any, *, force: bool = False) -> bool:
        """Offer the current state; it is written when due (or ``force``). Returns whether written."""
        self._calls += 1
        self._pending = state
        due = force
        if self.every is not None and self._calls % self.every == 0:
            due = True
        if self.seconds is not None and time.monotonic() - self._last_write >= self.seconds:
            due = True
        if due:
            self._write(state)
        return due

    def _write(self, state: Any) -> None:
        import cloudpickle

        payload = cloudpickle.dumps(state, protocol=5)
        self._store.put(self._blob, [xxhash.xxh3_128_hexdigest(payload).encode("ascii"), payload])
        self._last_write = time.monotonic()
        self._pending = _MISSING
        self.saves += 1

    def clear(self) -> None:
        self._store.delete(self._blob)

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.clear()  # the work is done: nothing to resume
        elif self._pending is not _MISSING:
            self._write(self._pending)  # interrupted: keep the latest progress


def checkpoint(name: str, *, every: int | None = None, seconds: float | None = None, directory: str | None = None) -> Checkpoint:
    """A :class:`Checkpoint` in the active cache (or ``directory``)."""
    import os

    from ..store.backends import open_store

    if directory is None:
        directory = _active_cache_url() or os.environ.get("NBCACHE_DIR") or os.path.join(os.getcwd(), ".nbcache")
    return Checkpoint(name, open_store(directory), every=every, seconds=seconds)


def _active_cache_url() -> str | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    from .extension import session

    found = session(shell)
    return found.magics.cache_url if found is not None else None
