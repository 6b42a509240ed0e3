"""Usage statistics of a cache: one row per entry and the totals, as records or a DataFrame.

The numbers come from the store's SQLite index (``Cache.stats()`` and ``Cache.totals()``); the
CLI and the dashboard show them. Usage counters are those of this machine: a shared store's
index is local (see :mod:`nbcache.store.index`). Cells whose restore did not pay
(:mod:`nbcache.run.pays`) have a row too, marked ``not_worth``, with no size: their entry is gone,
their two times are what the verdict says. Plain Python: pandas is imported only by
:func:`to_frame`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Literal, Mapping

if TYPE_CHECKING:
    import pandas

    from .cache import Cache

__all__ = [
    "COLUMNS", "EntryStats", "ListingRow", "NotWorthStats", "Totals", "collect", "hit_rate", "speedup", "time_saved", "title",
    "to_frame", "value",
]


@dataclass(frozen=True)
class EntryStats:
    """One entry and how it has been used (the rows of ``Cache.stats()``)."""

    key: str
    label: str | None
    cell: str
    size: int
    """Bytes the entry takes in the store."""
    hits: int
    misses: int
    runtime: float
    """Seconds the cell took when the entry was made."""
    restore_time: float | None
    """Seconds the last restore took; None when never restored here."""
    created: float
    last_used: float
    """When it was last written or restored (on this machine)."""
    not_worth: ClassVar[bool] = False
    """No entry: restoring it did not pay, so the cell runs without the cache (:class:`NotWorthStats`)."""


@dataclass(frozen=True)
class NotWorthStats(EntryStats):
    """A cell whose first restore did not pay (:mod:`nbcache.run.pays`): it has no entry (size 0),
    its runtime and restore time are the verdict's, created and last used when it was decided."""

    not_worth: ClassVar[bool] = True


@dataclass(frozen=True)
class ListingRow:
    """One entry as the JupyterLab panel lists it (the rows of ``Cache.listing()``), from the
    index: no manifest is read."""

    key: str
    label: str | None
    cell: str
    source: str
    size: int
    """Bytes of content (values and outputs)."""
    runtime: float
    created: float
    names: tuple[str, ...]
    hits: int
    restore_time: float | None


@dataclass(frozen=True)
class Totals:
    entries: int
    size: int
    """Bytes in the store (blobs shared by entries counted once)."""
    size_limit: int | None
    hits: int
    misses: int
    time_saved: float
    """Seconds of cell runtime that hits avoided (on this machine)."""


# Derived numbers are functions rather than properties, so that they work on any object with the
# fields of EntryStats (a stand-in cache's rows too).
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


def collect(cache: Cache, *, sync: bool | Literal["if stale"] = False) -> tuple[list[EntryStats], Totals]:
    """The rows and totals of ``cache``, from its index. ``sync`` first brings the index up to
    date with the store (entries written by other kernels or machines): a listing of the
    manifests, reading only new ones (``"if stale"``: unless a remote store's index was synced
    moments ago); without it nothing but the local index is read."""
    if sync == "if stale":
        cache.sync_if_stale()
    elif sync:
        cache.sync()
    rows = list(cache.stats())
    return rows + _not_worth_rows(cache, {row.key for row in rows}), _as_totals(cache.totals())


def _not_worth_rows(cache: Any, keys: set[str]) -> list[EntryStats]:
    index = getattr(cache, "index", None)
    try:
        verdicts = [(v, index.usage_of(v.key)) for v in index.verdicts() if v.key not in keys] if index is not None else []
    except Exception:  # noqa: BLE001 - the verdicts are a nicety of the index
        return []
    return [
        NotWorthStats(v.key, v.label, v.cell, 0, hits, misses, v.runtime, v.restore_time, v.decided, v.decided)
        for v, (hits, misses) in verdicts
    ]


def _as_totals(raw: Totals | Mapping[str, Any]) -> Totals:
    # Cache.totals() gives Totals; a stand-in for a cache (the dashboard's tests) may give a mapping.
    return raw if isinstance(raw, Totals) else Totals(**{name: raw[name] for name in Totals.__dataclass_fields__})


# Columns of the DataFrame, in order (also what the dashboard can sort by).
COLUMNS = (
    "key", "label", "cell", "size", "hits", "misses", "hit_rate", "runtime", "restore_time",
    "speedup", "time_saved", "created", "last_used", "not_worth",
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
