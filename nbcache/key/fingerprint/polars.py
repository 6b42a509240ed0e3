"""polars: frames and series by their Arrow buffers, lazy frames by their plan and the files it scans.

A ``DataFrame`` is its schema (names and polars dtypes, which say more than Arrow types: ``Enum``
categories, time zones), each column's sorted flags (they change what some operations do), then
its columns as Arrow data (:mod:`.arrow`), handed over by polars without a copy. What would make
two equal frames differ is normalised first, at the price of a copy of the columns concerned:
chunks are merged (polars chunks as it pleases), strings are written as offsets and bytes rather
than polars' string views (whose buffers keep what a filter dropped), and ``Categorical`` columns
as their strings (their codes follow the order in which the process first saw each category).
``Object`` columns are walked value by value. A ``Series`` is a one-column frame plus its name.

A ``LazyFrame`` is its serialized plan (which holds the in-memory frames it starts from) plus the
content of the files it scans: ``collect()`` reads them in Rust, where no audit hook sees it, so
they are part of the value here. A plan polars cannot serialize (a Python function in it) has no
fingerprint.
"""

from __future__ import annotations

import glob
import json
import warnings
from typing import Any

import polars as pl

from ...errors import FingerprintError
from .arrow import ipc
from .core import _LAZYFRAME, _POLARS, _Walk
from .registry import REGISTRY, Kind

__all__: list[str] = []  # encoders registered with the registry; nothing to import from here

_GLOB = "*?["


def _frame_value(w: _Walk, df: Any) -> None:
    if w.remember(df):
        return
    w.tag(_POLARS)
    w.text("DataFrame")
    _frame(w, df)


def _series_value(w: _Walk, s: Any) -> None:
    if w.remember(s):
        return
    w.tag(_POLARS)
    w.text("Series")
    w.value(s.name)
    _frame(w, s.to_frame())


def _frame(w: _Walk, df: Any) -> None:
    schema = df.schema
    w.value([(name, str(dtype)) for name, dtype in schema.items()])
    w.value([(f["SORTED_ASC"], f["SORTED_DESC"]) for f in df.flags.values()])
    objects = [name for name, dtype in schema.items() if dtype == pl.Object]
    for name in objects:
        w.value(df.get_column(name).to_list())
    if objects:
        df = df.drop(objects)
    casts = {name: _without_categoricals(dtype) for name, dtype in df.schema.items()}
    casts = {name: dtype for name, dtype in casts.items() if dtype != df.schema[name]}
    if casts:
        df = df.cast(casts)
    if df.width and max(df.n_chunks("all")) > 1:
        df = df.rechunk()
    ipc(w, df.to_arrow(compat_level=pl.CompatLevel.oldest()))


def _without_categoricals(dtype: Any) -> Any:
    """``dtype`` with every ``Categorical`` in it (also inside lists and structs) made ``String``."""
    if isinstance(dtype, pl.Categorical):
        return pl.String()
    if isinstance(dtype, pl.List):
        return pl.List(_without_categoricals(dtype.inner))
    if isinstance(dtype, pl.Array):
        return pl.Array(_without_categoricals(dtype.inner), dtype.shape)
    if isinstance(dtype, pl.Struct):
        return pl.Struct([pl.Field(f.name, _without_categoricals(f.dtype)) for f in dtype.fields])
    return dtype


def _lazy(w: _Walk, lf: Any) -> None:
    if w.remember(lf):
        return
    w.tag(_LAZYFRAME)
    try:
        plan = lf.serialize()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # polars deprecates the JSON form; it is read only for paths
            described = json.loads(lf.serialize(format="json"))
    except Exception as exc:
        raise FingerprintError(
            f"cannot fingerprint a LazyFrame whose plan polars cannot serialize ({exc})", type_name="LazyFrame"
        ) from exc
    w.blob(plan)
    w.value(_scanned(sorted(set(_plan_paths(described)))))


def _plan_paths(node: Any) -> list[str]:
    """The paths named in a plan's ``"Paths"`` lists (a scan's sources)."""
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "Paths" and isinstance(value, list):
                    for path in value:
                        path = path.get("inner") if isinstance(path, dict) else path
                        if isinstance(path, str):
                            found.append(path)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _scanned(paths: list[str]) -> list[Any]:
    from ..deps import paths_digest

    out: list[Any] = []
    for path in paths:
        if "://" in path:
            out.append((path, None))  # object storage: not read here; the plan names it
        elif any(c in path for c in _GLOB):
            matches = sorted(glob.glob(path, recursive=True))
            out.append((path, sorted(paths_digest(matches).items())))
        else:
            out.append((path, paths_digest([path])[path]))
    return out


# Exactly these: a subclass defined elsewhere may hold state of its own, and goes through pickle.
REGISTRY.register(pl.DataFrame, Kind(_frame_value))
REGISTRY.register(pl.Series, Kind(_series_value))
REGISTRY.register(pl.LazyFrame, Kind(_lazy))
