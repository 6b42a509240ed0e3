"""polars frames and series out of band: as Arrow data, whose buffers pickle out of band.

polars pickles a frame as its own serialization, bytes inside the pickle. Here a ``DataFrame``
or ``Series`` is written as the Arrow table polars exports without a copy (string views kept as
they are), plus its polars schema and sorted flags; pyarrow hands the buffers to pickle as
out-of-band buffers, and on a hit polars imports them back without a copy. The schema is applied
again where Arrow does not carry a polars dtype exactly. ``Object`` columns, which have no
Arrow form, keep polars' own pickle, as do subclasses.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from . import REDUCERS

__all__ = ["reduce_frame", "reduce_series"]


def _parts(df: Any) -> Any:
    schema = df.schema
    if any(dtype == pl.Object for dtype in schema.values()):
        return None
    flags = {name: (f["SORTED_ASC"], f["SORTED_DESC"]) for name, f in df.flags.items() if f["SORTED_ASC"] or f["SORTED_DESC"]}
    return df.to_arrow(compat_level=pl.CompatLevel.newest()), dict(schema), flags


def reduce_frame(df: Any, memo: dict[Any, Any]) -> Any:
    if type(df) is not pl.DataFrame:
        return None
    parts = _parts(df)
    return None if parts is None else (_rebuild_frame, parts)


def reduce_series(s: Any, memo: dict[Any, Any]) -> Any:
    if type(s) is not pl.Series:
        return None
    parts = _parts(s.to_frame())
    return None if parts is None else (_rebuild_series, parts)


def _rebuild_frame(table: Any, schema: dict[str, Any], flags: dict[str, tuple[bool, bool]]) -> Any:
    df = pl.from_arrow(table, rechunk=False)
    assert isinstance(df, pl.DataFrame)
    if dict(df.schema) != schema:
        df = df.cast(schema)  # type: ignore[arg-type]
    if flags:
        df = df.with_columns(pl.col(name).set_sorted(descending=desc) for name, (asc, desc) in flags.items())
    return df


def _rebuild_series(table: Any, schema: dict[str, Any], flags: dict[str, tuple[bool, bool]]) -> Any:
    return _rebuild_frame(table, schema, flags).to_series()


REDUCERS.register(pl.DataFrame, reduce_frame)
REDUCERS.register(pl.Series, reduce_series)
