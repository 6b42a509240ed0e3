"""Which cells automatic mode found cheap: the hint that lets it stay out of their way.

Keying a cell costs a few hundred microseconds (analysis, fingerprints, a lookup); running a cell
of a few milliseconds costs hardly more. So automatic mode remembers, by a digest of the cell's
source, how long a cell took when it ran and was not stored because it was quicker than
``NbCache.min_runtime``. The next time the same source runs, it runs as it would without
nbcache, only timed; if it then takes longer, the hint is dropped and the next run is keyed.

A hint can only make a cell run when it might have hit (a needless miss, never a stale hit),
so it is kept simply: an append-only text file beside the cache's index (one line per change,
the last line for a digest wins, compacted now and then), shared by the kernels of one machine.
Changes are written at most every ``FLUSH_SECONDS`` (and by :meth:`Runtimes.flush`): a kernel
killed in between loses only hints. A file that cannot be read or written leaves the hints in
memory.
"""

from __future__ import annotations

import os
import time

import xxhash

from ..atomic import replaced

__all__ = ["FLUSH_SECONDS", "RUNTIMES_FILE", "Runtimes", "source_digest"]

RUNTIMES_FILE = "runtimes.log"
# The first line; bump the number when the line format changes (an old file is then ignored).
_HEADER = "nbcache-runtimes 1\n"
_FORGOTTEN = "-"
# Rewrite the file once it holds this many more lines than live hints.
_COMPACT_SLACK = 2000
# Appending costs an open and a write: batched for the cells of a Run All.
FLUSH_SECONDS = 2.0


def source_digest(source: str) -> str:
    """The digest hints are kept by: the cell's source as typed (cheap; no analysis)."""
    return xxhash.xxh3_64_hexdigest(source.encode("utf-8", "surrogatepass"))


class Runtimes:
    """Seconds by source digest, for runs that were not stored."""

    def __init__(self, path: str | None):
        self.path = path
        self._seconds: dict[str, float] | None = None
        self._lines = 0
        self._pending: list[str] = []
        self._flushed = 0.0
        self._unwritable = False

    def get(self, digest: str) -> float | None:
        return self._load().get(digest)

    def remember(self, digest: str, seconds: float) -> None:
        self._load()[digest] = seconds
        self._append(f"{digest} {seconds:.6f}\n")

    def forget(self, digest: str) -> None:
        if self._load().pop(digest, None) is not None:
            self._append(f"{digest} {_FORGOTTEN}\n")

    def __len__(self) -> int:
        return len(self._load())

    # -- the file --------------------------------------------------------------------------------
    def _load(self) -> dict[str, float]:
        if self._seconds is not None:
            return self._seconds
        self._seconds = {}
        if self.path is None:
            return self._seconds
        try:
            with open(self.path, encoding="ascii", errors="replace") as fh:
                if fh.readline() != _HEADER:
                    self._lines = _COMPACT_SLACK + 1  # another format: the next change rewrites it
                    return self._seconds
                for line in fh:
                    self._lines += 1
                    digest, _, value = line.strip().partition(" ")
                    if value == _FORGOTTEN:
                        self._seconds.pop(digest, None)
                        continue
                    try:
                        self._seconds[digest] = float(value)
                    except ValueError:
                        continue  # a line cut short by a crash: skip it
        except OSError:
            pass
        return self._seconds

    def _append(self, line: str) -> None:
        if self.path is None or self._unwritable:
            return
        self._pending.append(line)
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the changes not written yet."""
        lines, self._pending = self._pending, []
        self._flushed = time.monotonic()
        if self.path is None or self._unwritable or not lines:
            return
        self._lines += len(lines)
        try:
            if self._lines > len(self._load()) + _COMPACT_SLACK:
                self._compact()
                return
            new = not os.path.exists(self.path)
            if new:
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(self.path, "a", encoding="ascii") as fh:
                fh.write((_HEADER if new else "") + "".join(lines))
        except OSError:
            self._unwritable = True  # read-only or full: keep the hints in memory for this session

    def _compact(self) -> None:
        with replaced(self.path or "", prefix=".runtimes-", encoding="ascii") as fh:
            fh.write(_HEADER)
            fh.writelines(f"{digest} {seconds:.6f}\n" for digest, seconds in self._load().items())
        self._lines = len(self._load())
