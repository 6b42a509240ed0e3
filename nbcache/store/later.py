"""Compression after the write: large values blobs of a local store are compressed on a thread
of their own once their entry is written, not on the cell's time.

zstd's level 1 runs at a few hundred MB/s per core (about 330 MB/s, measured once on W2's
70 MB pickle on a 2-core machine), slower than a local disk takes raw bytes: a pickle of 70 MB that
shrinks to 21 MB would add 0.2 s to the cell that made it. So a local store writes such a blob
as it is (``blobs/../<id>``), its entry is usable at once, and the thread here then writes
``<id>.zst`` (hashing what it compresses: only bytes whose BLAKE3 is the id are kept) and removes
``<id>``. The manifest still names ``<id>``: a reader that does not find it reads ``<id>.zst``
(:meth:`nbcache.store.blobs.Blobs.read_frames`), and deleting, sweeping and the doctor take the
two names as one blob (:func:`other_name`).

A process that ends first leaves the blob raw (correct, only larger): at exit the thread gets up
to :data:`EXIT_WAIT` seconds to finish. A forked child starts with no work of its parent's.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from typing import Callable

__all__ = ["EXIT_WAIT", "compressed", "other_name", "submit", "wait"]

EXIT_WAIT = 2.0
"""Seconds a process that exits waits for the blobs it is still compressing."""

_SUFFIX = ".zst"


def compressed(name: str) -> bool:
    """Whether the blob ``name`` is stored compressed (``<id>.zst``)."""
    return name.endswith(_SUFFIX)


def other_name(name: str) -> str:
    """The blob's name in its other form: ``<id>`` <-> ``<id>.zst``."""
    return name[: -len(_SUFFIX)] if compressed(name) else name + _SUFFIX


class _Worker:
    """One thread per process that runs jobs in order, started by the first."""

    def __init__(self) -> None:
        self._jobs: deque[Callable[[], None]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            self._jobs.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="nbcache-compress", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether every job submitted so far is done (within ``timeout`` seconds)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._jobs))
                job = self._jobs.popleft()
                self._busy = True
            try:
                job()
            except Exception:  # noqa: BLE001 - a job that fails leaves its blob raw: still correct
                pass
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


_worker = _Worker()


def submit(job: Callable[[], None]) -> None:
    """Run ``job`` on the compression thread, after the jobs before it."""
    _worker.submit(job)


def wait(timeout: float | None = None) -> bool:
    """Wait for the blobs this process is still compressing; whether all are done."""
    return _worker.wait(timeout)


def _after_fork() -> None:
    global _worker
    _worker = _Worker()


os.register_at_fork(after_in_child=_after_fork)
atexit.register(lambda: _worker.wait(EXIT_WAIT))
