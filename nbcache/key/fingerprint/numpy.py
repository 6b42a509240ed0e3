"""numpy: arrays by their raw buffer, dtype, shape and memory order; scalars and dtypes exactly.

Object arrays hash each element (in one pass when all are ``str``: see :func:`.core.strings`). The registry imports this
adapter the first time it sees a numpy value, so importing nbcache never imports numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import _DTYPE, _LIST, _NDARRAY, _NDOBJ, _NPSCALAR, _Walk, strings
from .registry import REGISTRY, Kind

__all__: list[str] = []  # encoders registered with the registry; nothing to import from here


def _array_value(w: _Walk, a: Any) -> None:
    if w.remember(a):
        return
    _ndarray(w, a)


def _scalar(w: _Walk, v: Any) -> None:
    w.tag(_NPSCALAR)
    w.text(v.dtype.str)
    w.blob(v.tobytes())


def _dtype(w: _Walk, v: Any) -> None:
    w.tag(_DTYPE)
    w.text(repr(v))


def _ndarray(w: _Walk, a: Any) -> None:
    dtype = a.dtype
    if dtype.hasobject:
        w.tag(_NDOBJ)
        w.text(repr(dtype))
        w.length(a.ndim)
        for n in a.shape:
            w.length(n)
        _object_elements(w, a.ravel(order="K") if a.ndim != 1 else a)
        return
    w.tag(_NDARRAY)
    # repr(dtype) covers byte order, structured fields, datetime units and string lengths.
    w.text(repr(dtype))
    w.length(a.ndim)
    for n in a.shape:
        w.length(n)
    # Memory order is observable (a.flags, a.tobytes('A')); equal values in C and Fortran
    # order are different values here.
    order = "F" if (a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous) else "C"
    w.text(order)
    data = a if a.flags.c_contiguous or a.flags.f_contiguous else np.ascontiguousarray(a)
    flat: Any = data.reshape(-1, order="A").view(np.uint8)
    w.blob(memoryview(flat) if data.size else b"")


def _object_elements(w: _Walk, flat: Any) -> None:
    """Elements of a 1-d object array (or a list), in one pass when all are ``str``."""
    # A C-contiguous array is read by the string encoder through its buffer (its PyObject
    # pointers), without a list of its elements; a strided one is made a list first.
    if not isinstance(flat, list) and not flat.flags.c_contiguous:
        flat = flat.tolist()  # one pass in C; iterating an ndarray element by element is slower
    w.length(len(flat))
    if strings(w, flat):
        return
    if not isinstance(flat, list):
        flat = flat.tolist()
    w.tag(_LIST)
    item = w.value
    for x in flat:
        item(x)


# Exactly ndarray: its subclasses (masked arrays, matrices, memmaps) hold more than the buffer and
# go through pickle. np.object_ has no instances (np.object_(x) is x): every np.generic is a scalar
# with a buffer of its own.
REGISTRY.register(np.ndarray, Kind(_array_value))
REGISTRY.register_base(np.generic, Kind(_scalar))
REGISTRY.register_base(np.dtype, Kind(_dtype))
