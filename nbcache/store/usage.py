"""Usage statistics of a cache, as the dashboard shows them: one row per entry and the totals,
as records or a DataFrame.

The numbers come from the store's SQLite index (``Cache.stats()`` and ``Cache.totals()``). A row
here differs from the index's in one way: an entry never restored has no restore time (None),
where the index says 0. Cells whose restore did not pay (:mod:`nbcache.run.pays`) have a row too,
marked ``not_worth``, with no size: their entry is gone, their two times are what the verdict
says. Plain Python: pandas is imported only by :func:`to_frame`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .cache import Totals

if TYPE_CHECKING:
    import pandas

    from .cache import Cache

__all__ = [
    "COLUMNS", "EntryStats", "Totals", "collect", "hit_rate", "speedup", "time_saved", "title",
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
    not_worth: bool = False
    """No entry: restoring it did not pay, so the cell runs without the cache."""


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


def collect(cache: Cache, *, sync: bool = False) -> tuple[list[EntryStats], Totals]:
    """The rows and totals of ``cache``, from its index. ``sync`` first brings the index up to
    date with the store (entries written by other kernels or machines): a listing of the
    manifests, reading only new ones; without it nothing but the local index is read."""
    if sync:
        cache.sync()
    rows = [_as_row(row) for row in cache.stats()]
    return rows + _not_worth_rows(cache, {row.key for row in rows}), _as_totals(cache.totals())


def _not_worth_rows(cache: Any, keys: set[str]) -> list[EntryStats]:
    index = getattr(cache, "index", None)
    try:
        verdicts = [(v, index.usage_of(v.key)) for v in index.verdicts() if v.key not in keys] if index is not None else []
    except Exception:  # noqa: BLE001 - the verdicts are a nicety of the index
        return []
    return [
        EntryStats(v.key, v.label, v.cell, 0, hits, misses, v.runtime, v.restore_time, v.decided, v.decided, not_worth=True)
        for v, (hits, misses) in verdicts
    ]


def _as_row(raw: Any) -> EntryStats:
    # The index says 0 for "never restored here"; the dashboard shows that as no restore time.
    fields = {name: getattr(raw, name) for name in EntryStats.__dataclass_fields__ if name != "not_worth"}
    if not fields["hits"] or not fields["restore_time"]:
        fields["restore_time"] = None
    return EntryStats(**fields)


def _as_totals(raw: Any) -> Totals:
    if isinstance(raw, Totals):
        return raw
    # The index's record type is not settled: accept a mapping or any object with these fields.
    get: Callable[[str], Any] = raw.get if isinstance(raw, dict) else lambda name: getattr(raw, name)
    return Totals(**{name: get(name) for name in Totals.__dataclass_fields__})


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
