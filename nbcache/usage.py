"""Usage statistics of a cache: one row per entry and the totals, as records or a DataFrame.

The numbers come from the store's index (``Cache.stats()`` and ``Cache.totals()``) when the cache
has one. Until that index is merged, a fallback marked below derives the rows from the manifests
and counts hits and misses in memory from :attr:`Engine.listeners <nbcache.engine.Engine.listeners>`
(so they cover this session only). Plain Python: pandas is imported only by :func:`to_frame`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    import pandas

    from .cache import Cache
    from .engine import Outcome

__all__ = [
    "COLUMNS", "EntryStats", "SessionCounters", "Totals", "collect", "hit_rate", "speedup", "time_saved", "title",
    "to_frame", "value",
]


@dataclass(frozen=True)
class EntryStats:
    """One entry and how it has been used (the fields of ``Cache.stats()``)."""

    key: str
    label: str | None
    cell: str
    size: int
    hits: int
    misses: int
    runtime: float
    """Seconds the cell took when the entry was made."""
    restore_time: float | None
    """Seconds the last restore took; None before the first hit."""
    created: float
    last_used: float | None


@dataclass(frozen=True)
class Totals:
    """The whole store (the fields of ``Cache.totals()``)."""

    entries: int
    size: int
    size_limit: int | None
    hits: int
    misses: int
    time_saved: float


# Derived numbers are functions of the records' fields rather than properties, so that they work
# the same on the index's record types once those replace the ones above.
def hit_rate(hits: int, misses: int) -> float | None:
    return hits / (hits + misses) if hits + misses else None


def speedup(row: EntryStats) -> float | None:
    return row.runtime / row.restore_time if row.restore_time else None


def time_saved(row: EntryStats) -> float:
    if row.restore_time is None:
        return 0.0
    return row.hits * max(0.0, row.runtime - row.restore_time)


def value(row: EntryStats, column: str) -> Any:
    """A column of ``COLUMNS`` for one row, derived ones included."""
    if column == "hit_rate":
        return hit_rate(row.hits, row.misses)
    if column == "speedup":
        return speedup(row)
    if column == "time_saved":
        return time_saved(row)
    return getattr(row, column)


def title(row: EntryStats) -> str:
    """What the dashboard calls an entry: its label, else the cell's first line."""
    return row.label or row.cell or row.key[:12]


def collect(cache: Cache, counters: SessionCounters | None = None) -> tuple[list[EntryStats], Totals]:
    """The rows and totals of ``cache``: from its index when it has one, else the fallback."""
    if hasattr(cache, "stats") and hasattr(cache, "totals"):
        return list(cache.stats()), _as_totals(cache.totals())
    # FALLBACK (delete once Cache.stats/totals are merged):
    return (counters or SessionCounters()).collect(cache)


def _as_totals(raw: Any) -> Totals:
    if isinstance(raw, Totals):
        return raw
    # The index's record type is not settled: accept a mapping or any object with these fields.
    get: Callable[[str], Any] = raw.get if isinstance(raw, dict) else lambda name: getattr(raw, name)
    return Totals(**{name: get(name) for name in Totals.__dataclass_fields__})


# Columns of the DataFrame, in order (also what the dashboard can sort by).
COLUMNS = (
    "key", "label", "cell", "size", "hits", "misses", "hit_rate", "runtime", "restore_time",
    "speedup", "time_saved", "created", "last_used",
)


def to_frame(rows: Iterable[EntryStats]) -> pandas.DataFrame:
    """One row per entry, indexed by key; times as UTC timestamps, durations in seconds."""
    import pandas as pd

    records = [{column: value(r, column) for column in COLUMNS} for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for column in ("created", "last_used"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    for column in ("hit_rate", "restore_time", "speedup"):
        frame[column] = frame[column].astype("float64")
    return frame.set_index("key")


# ==== FALLBACK: delete from here to the end of the file once Cache.stats()/totals() are merged ====
# It counts what the engine reports during this session, and keeps a scan of the manifests that a
# refresh updates by listing names: only new manifests are read, so a refresh after a cell does not
# re-read 10,000 files.


@dataclass
class _Usage:
    hits: int = 0
    misses: int = 0
    restore_time: float | None = None
    last_used: float | None = None


@dataclass
class _Scanned:
    key: str
    label: str | None
    cell: str
    runtime: float
    created: float
    size: int
    blobs: tuple[tuple[str, int], ...]


@dataclass
class SessionCounters:
    """An :class:`~nbcache.engine.Engine` listener counting hits and misses per key."""

    usage: dict[str, _Usage] = field(default_factory=dict)
    time_saved: float = 0.0
    _scan: dict[str, _Scanned] = field(default_factory=dict)
    _scanned_root: str | None = None

    def __call__(self, outcome: Outcome) -> None:
        if outcome.key is None or outcome.status == "error":
            return
        usage = self.usage.setdefault(outcome.key, _Usage())
        usage.last_used = time.time()
        if outcome.status == "hit":
            usage.hits += 1
            usage.restore_time = outcome.runtime
            self.time_saved += outcome.saved
        else:  # stored, or ran but could not be stored: both are misses
            usage.misses += 1
            # --force rewrites the manifest under the same key: read it again at the next collect.
            self._scan.pop(outcome.key, None)

    def collect(self, cache: Cache) -> tuple[list[EntryStats], Totals]:
        self._rescan(cache)
        rows = []
        blobs: dict[str, int] = {}
        for key, scanned in self._scan.items():
            usage = self.usage.get(key) or _Usage()
            blobs.update(scanned.blobs)
            rows.append(EntryStats(
                key=key, label=scanned.label, cell=scanned.cell, size=scanned.size, hits=usage.hits,
                misses=usage.misses, runtime=scanned.runtime, restore_time=usage.restore_time,
                created=scanned.created, last_used=usage.last_used or scanned.created,
            ))
        totals = Totals(
            entries=len(rows), size=sum(blobs.values()), size_limit=None,
            hits=sum(r.hits for r in rows), misses=sum(r.misses for r in rows), time_saved=self.time_saved,
        )
        return rows, totals

    def _rescan(self, cache: Cache) -> None:
        root = cache.store.url
        if root != self._scanned_root:  # another store: start over
            self._scan.clear()
            self._scanned_root = root
        cache.ensure_layout()
        present = {}
        for name in cache.store.list("manifests"):
            if name.endswith(".json"):
                present[name[len("manifests/"):-len(".json")]] = name
        for key in [k for k in self._scan if k not in present]:
            del self._scan[key]
        for key, name in present.items():
            if key in self._scan:
                continue
            scanned = _read_manifest(cache, name)
            if scanned is not None and scanned.key == key:
                self._scan[key] = scanned


def _read_manifest(cache: Cache, name: str) -> _Scanned | None:
    # json.loads rather than Entry.from_json: only a few fields are needed, and at 10,000 entries
    # building full Entry records is most of the time an open takes.
    try:
        data = json.loads(cache.store.get(name))
        values, outputs = data["values"], data["outputs"]
        return _Scanned(
            key=data["key"],
            label=data.get("label"),
            cell=_first_line(data.get("source", "")) or str(data.get("cell", "")),
            runtime=float(data["runtime"]),
            created=float(data["created"]),
            size=int(values["size"]) + int(outputs["size"]),
            blobs=((values["id"], int(values["size"])), (outputs["id"], int(outputs["size"]))),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable manifests are skipped, as Cache.entries() does


def _first_line(source: str) -> str:
    for line in source.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%%")):
            return stripped[:120]
    return ""
# ==== end of FALLBACK ====
