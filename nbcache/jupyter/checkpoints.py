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
signed with the cache's key like entries: a keyed BLAKE3 (:func:`nbcache.store.digest.mac`) of
the checkpoint's name and bytes, checked before anything is unpickled. A checkpoint that fails
(tampered with, written with another key, by an older nbcache, or for another name) is refused
with one ``nbcache:`` line and ``load`` returns the default: the loop starts afresh, and its first
save replaces the refused file. Use one name per loop.

The file::

    b"NBCK" | version (1 byte) | 64 hex digits of the MAC | the cloudpickle of the state
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ..store import digest, signing
from ..store.backends import BlobStore

__all__ = ["Checkpoint", "checkpoint"]

_MISSING = object()
_MAGIC = b"NBCK"
_VERSION = b"\x01"
_HEAD = len(_MAGIC) + len(_VERSION) + 64


class Checkpoint:
    def __init__(
        self, name: str, store: BlobStore, *, every: int | None = None, seconds: float | None = None,
        key: str | bytes | None = None,
    ):
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
        self.refused: str | None = None
        """Why :meth:`load` refused the stored checkpoint (None when it did not)."""
        self._store = store
        self._key = key
        self._secret: bytes | None = None
        self._calls = 0
        self._last_write = time.monotonic()
        self._pending: Any = _MISSING

    @property
    def _blob(self) -> str:
        return f"checkpoints/{self.name}"

    @property
    def _signing_key(self) -> bytes:
        if self._secret is None:
            self._secret = signing.load_key(self._key)
        return self._secret

    def _mac(self, payload: Any) -> str:
        # The name is under the MAC: a checkpoint copied to another name is refused too.
        return digest.mac(self._signing_key, "checkpoint", [self.name.encode(), b"\0", payload])

    def load(self, default: Any = None) -> Any:
        """The last saved state, or ``default`` when there is none (a fresh start) or when the
        stored one is refused (see the module's docstring)."""
        import cloudpickle

        try:
            raw = self._store.get(self._blob)
        except FileNotFoundError:
            return default
        problem = self._check(raw)
        if problem is not None:
            self.refused = problem
            print(f"nbcache: checkpoint {self.name!r} {problem}, so it is not loaded; starting from the default state", file=sys.stderr)
            return default
        self.resumed = True
        return cloudpickle.loads(memoryview(raw)[_HEAD:])

    def _check(self, raw: bytes) -> str | None:
        """Why ``raw`` must not be unpickled, or None."""
        if not raw.startswith(_MAGIC):
            return "was written by an older nbcache (unsigned)"
        if raw[len(_MAGIC) : len(_MAGIC) + 1] != _VERSION:
            return "has a format this nbcache does not read"
        signature = raw[len(_MAGIC) + 1 : _HEAD].decode("ascii", "replace")
        if not digest.mac_matches(self._signing_key, "checkpoint", [self.name.encode(), b"\0", memoryview(raw)[_HEAD:]], signature):
            return "is not signed with this cache's key (tampered with, or written with another NBCACHE_KEY)"
        return None

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
        self._store.put(self._blob, [_MAGIC + _VERSION + self._mac(payload).encode("ascii"), payload])
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


def checkpoint(
    name: str, *, every: int | None = None, seconds: float | None = None, directory: str | None = None,
    key: str | bytes | None = None,
) -> Checkpoint:
    """A :class:`Checkpoint` in the active cache (or ``directory``), signed with the active
    cache's key (or ``key``; else ``$NBCACHE_KEY``, else the key file)."""
    import os

    from ..store.backends import open_store

    url, active_key = _active_cache()
    if directory is None:
        directory = url or os.environ.get("NBCACHE_DIR") or os.path.join(os.getcwd(), ".nbcache")
    return Checkpoint(name, open_store(directory), every=every, seconds=seconds, key=key or active_key)


def _active_cache() -> tuple[str | None, str | None]:
    """The URL and the configured key (None: the default) of the shell's ``%%cache``."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None, None
    shell = get_ipython()
    if shell is None:
        return None, None
    from .extension import session

    found = session(shell)
    if found is None:
        return None, None
    return found.magics.cache_url, found.magics.key or None
