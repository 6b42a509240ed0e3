"""scipy.sparse: matrices and arrays of every format by their class and their arrays.

A sparse matrix or array (``csr_matrix``, ``csr_array``, ``coo``, ``dia``, ``bsr``, ``lil``,
``dok``...) is its class plus its attributes, which are what it pickles as: ``data``,
``indices``/``indptr``, ``coords``, ``offsets``, the shape, and the flags it keeps (sorted indices,
canonical format). numpy arrays among them count by their buffers; ``lil`` rows and ``dok`` items
are walked. Only scipy's own classes: a subclass defined elsewhere goes through pickle.

Imported with the first value of a type from ``scipy.sparse`` (not of the rest of scipy).
"""

from __future__ import annotations

from typing import Any

from scipy import sparse

from .core import _SPARSE, _Walk
from .registry import REGISTRY, Kind, _library

__all__: list[str] = []  # encoders registered with the registry; nothing to import from here


def _sparse(w: _Walk, m: Any) -> None:
    if w.remember(m):
        return
    w.tag(_SPARSE)
    w.text(f"{type(m).__module__}.{type(m).__qualname__}")
    w.value(dict(vars(m)))


_KIND = Kind(_sparse)
_BASE: type = getattr(sparse, "_base")._spbase  # what every format of both APIs derives from
REGISTRY.register_subclasses(_BASE, lambda t: _KIND if _library(t) == "scipy" else None)
