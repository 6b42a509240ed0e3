"""pandas: every column's values, the index, the column names, the dtypes and ``attrs``.

All of them, never a sample. Column values go through the numpy encodings where pandas keeps a
numpy buffer (datetimes as their int64 values, nullable arrays as data plus mask), through the
Arrow encoding where it keeps Arrow arrays (``string[pyarrow]``, pandas 3's default ``str`` when
pyarrow is installed, ``ArrowDtype`` columns), and as Python objects plus the missing-value mask
otherwise. Imported by the registry the first time it sees a
pandas value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .core import _CATEGORICAL, _EXTARRAY, _FRAME, _INDEX, _MULTIINDEX, _RANGEINDEX, _SERIES, _Walk
from .numpy import _ndarray, _object_elements
from .registry import REGISTRY, Kind

__all__: list[str] = []  # encoders registered with the registry; nothing to import from here


def _frame(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_FRAME)
    _index(w, v.columns)
    _index(w, v.index)
    w.value(dict(v.attrs))
    w.value(v.flags.allows_duplicate_labels)
    columns = v._iter_column_arrays() if hasattr(v, "_iter_column_arrays") else (
        v.iloc[:, i].array for i in range(v.shape[1])
    )
    for column in columns:
        _array(w, column)


def _series(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_SERIES)
    w.value(v.name)
    _index(w, v.index)
    w.value(dict(v.attrs))
    _array(w, v._values)


def _index_value(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    _index(w, v)


def _extension_array(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    _array(w, v)


def _index(w: _Walk, idx: Any) -> None:
    w.text(type(idx).__qualname__)
    if isinstance(idx, pd.RangeIndex):
        w.tag(_RANGEINDEX)
        w.value(idx.name)
        w.value((idx.start, idx.stop, idx.step))
    elif isinstance(idx, pd.MultiIndex):
        w.tag(_MULTIINDEX)
        w.value(list(idx.names))
        w.length(idx.nlevels)
        for level, codes in zip(idx.levels, idx.codes):
            _index(w, level)
            _array(w, codes)
    else:
        w.tag(_INDEX)
        w.value(idx.name)
        freq = getattr(idx, "freq", None)
        w.value(None if freq is None else str(freq))
        _array(w, idx._values)


def _array(w: _Walk, arr: Any) -> None:
    """A column's values: a numpy array or a pandas extension array."""
    if isinstance(arr, np.ndarray):
        _ndarray(w, arr)
        return
    w.tag(_EXTARRAY)
    w.text(type(arr).__qualname__)
    w.text(repr(arr.dtype))  # repr: storage and missing-value marker of string dtypes count
    if isinstance(arr, pd.Categorical):
        w.tag(_CATEGORICAL)
        _ndarray(w, np.asarray(arr.codes))
        _index(w, arr.categories)
        w.value(bool(arr.ordered))
        return
    chunks = getattr(arr, "_pa_array", None)  # Arrow-backed (pandas 3's default str): its Arrow buffers
    if chunks is not None and type(chunks).__module__.partition(".")[0] == "pyarrow":
        from .arrow import unchunked  # pyarrow is imported: the array is made of it

        unchunked(w, chunks)
        return
    asi8 = getattr(arr, "asi8", None)  # datetimes, timedeltas, periods: their int64 values
    if isinstance(asi8, np.ndarray):
        _ndarray(w, asi8)
        return
    data, mask = getattr(arr, "_data", None), getattr(arr, "_mask", None)
    if isinstance(data, np.ndarray) and isinstance(mask, np.ndarray):  # nullable ints, floats, bools
        _ndarray(w, data)
        _ndarray(w, mask)
        return
    backing = getattr(arr, "_ndarray", None)  # python-backed strings and other numpy-backed arrays
    if isinstance(backing, np.ndarray):
        _ndarray(w, backing)
        return
    # Anything else (third-party): the missing-value mask plus the values as Python objects.
    # Exact, if slower than a buffer.
    _ndarray(w, np.asarray(arr.isna(), dtype=bool))
    _object_elements(w, arr.to_numpy(dtype=object, na_value=None))


# Exactly DataFrame and Series: a subclass's _metadata is state these encodings leave out.
REGISTRY.register(pd.DataFrame, Kind(_frame))
REGISTRY.register(pd.Series, Kind(_series))
REGISTRY.register_base(pd.Index, Kind(_index_value))
REGISTRY.register_base(pd.api.extensions.ExtensionArray, Kind(_extension_array))
