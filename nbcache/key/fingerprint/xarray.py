"""xarray: variables, data arrays and datasets by their data, coordinates, indexes and attributes.

A ``Variable`` is its dims, data, ``attrs`` and ``encoding``: numpy data by its buffer, an index
coordinate by its pandas index, data that is still on disk (a dataset opened lazily) by its values,
read here, since the file may change behind the variable; anything else (dask, duck arrays) by
its own encoding. A ``DataArray`` is its name, variable, coordinates and indexes; a ``Dataset``
its variables (in order), which of them are coordinates, its dims, indexes, ``attrs`` and
``encoding``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .core import _XARRAY, _Walk
from .registry import REGISTRY, Kind

__all__: list[str] = []  # encoders registered with the registry; nothing to import from here

_indexing: Any = getattr(xr.core, "indexing")
_ADAPTER: Any = _indexing.PandasIndexingAdapter
_LAZY: Any = _indexing.ExplicitlyIndexed


def _name(w: _Walk, v: Any) -> None:
    w.tag(_XARRAY)
    w.text(f"{type(v).__module__}.{type(v).__qualname__}")


def _variable(w: _Walk, var: Any) -> None:
    if w.remember(var):
        return
    _name(w, var)
    w.value(tuple(var.dims))
    w.value(dict(var.attrs))
    w.value(dict(var.encoding))
    data: Any = var._data
    if isinstance(data, _ADAPTER):
        w.text(repr(data.dtype))
        w.value(data.array)
    elif isinstance(data, _LAZY):
        w.value(np.asarray(data))
    else:
        w.value(data)


def _indexes(w: _Walk, obj: Any) -> None:
    indexes = obj.xindexes
    w.length(len(indexes))
    for name, index in indexes.items():
        w.value(name)
        if w.remember(index):  # the index of a multi-index's every level is one object
            continue
        w.text(f"{type(index).__module__}.{type(index).__qualname__}")
        pandas_index = getattr(index, "index", None)
        if pandas_index is not None:
            w.value(pandas_index)
            w.value(getattr(index, "dim", None))
        else:
            w.value(index)


def _data_array(w: _Walk, da: Any) -> None:
    if w.remember(da):
        return
    _name(w, da)
    w.value(da.name)
    w.value(da.variable)
    w.value([(name, coord.variable) for name, coord in da.coords.items()])
    _indexes(w, da)


def _dataset(w: _Walk, ds: Any) -> None:
    if w.remember(ds):
        return
    _name(w, ds)
    w.value(list(ds.variables.items()))
    w.value(list(ds.coords))
    w.value(dict(ds.sizes))
    w.value(dict(ds.attrs))
    w.value(dict(ds.encoding))
    _indexes(w, ds)


REGISTRY.register_base(xr.Variable, Kind(_variable))
REGISTRY.register_base(xr.DataArray, Kind(_data_array))
REGISTRY.register_base(xr.Dataset, Kind(_dataset))
