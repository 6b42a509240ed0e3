"""Fingerprints: a 16-byte digest of a value, equal for equal values, different for different ones.

A fingerprint is xxh3-128 over a canonical encoding of the value. Every piece of the encoding is
type-tagged and length-prefixed, so two different values cannot encode to the same bytes through
a shortcut (``[1, 2]`` vs ``[12]``, ``"1"`` vs ``1``, ``1`` vs ``1.0`` vs ``True``):

- scalars (None, bool, int, float, complex, str, bytes) encode their exact value;
- lists, tuples and dicts encode their elements in order (dict insertion order is observable, so
  it is part of the value); sets sort their elements' fingerprints (their order is not);
- an object seen twice in one value encodes as a back-reference, so aliasing (``[a, a]`` vs
  ``[a, copy(a)]``) and cycles are part of the fingerprint and never loop;
- numpy arrays hash their raw buffer with dtype, shape and memory order; pandas objects hash
  every column's values, the index, the column names, the dtypes and ``attrs``, never a sample;
  torch tensors their bytes with dtype, device type, layout, shape and strides, modules and
  optimizers the tensors they hold; Arrow data (pyarrow, polars, pandas' Arrow-backed columns)
  its buffers; scipy.sparse and xarray objects their arrays;
- a run of strings (a long list, an object array) is one pass over their UTF-8 bytes and lengths;
- functions hash their code plus the globals it refers to, transitively, classes their members,
  installed code its module, name and the library's version;
- anything else goes through pickle, inside which the objects above keep their own encodings;
  such a value encodes as the digest of its pickle.

The package:

- :mod:`.core`: the walk (tags, back-references), :class:`Fingerprinter`, scalars and containers;
- :mod:`.registry`: which encoding a type has, asked by the walk, by the pickler for the objects
  inside a pickle, and by :func:`takes_pickle_path`;
- :mod:`.numpy`, :mod:`.pandas`, :mod:`.torch`, :mod:`.arrow`, :mod:`.polars`, :mod:`.scipy`,
  :mod:`.xarray`: one adapter per library, imported with its first value;
- :mod:`.user`: ``nbcache.register_fingerprint``, for types of yours or of other libraries;
- :mod:`.code`: functions, classes, modules; :mod:`.objects`: instances, methods, partials;
- :mod:`.strings`: runs of strings, encoded by a C extension (or by Python, to the same bytes);
- :mod:`.pickled`: the pickle fallback, and :class:`Substitutes`, which let objects restored by a
  hit fingerprint as the originals did when a library's pickle round trip is inexact.

A value with no sound fingerprint (a generator, an open file, a lock) raises
:class:`~nbcache.errors.FingerprintError`.

``FINGERPRINT_VERSION`` names this encoding; it is part of every key, so a change of the encoding
invalidates old entries instead of silently colliding with them.
"""

from __future__ import annotations

from . import objects  # noqa: F401 - fills in the registry's kinds of Python's own objects
from .core import DIGEST_SIZE, FINGERPRINT_VERSION, Fingerprinter, fingerprint
from .pickled import Substitutes, takes_pickle_path
from .registry import REGISTRY

# Imported the first time a value of a type from that library is seen.
REGISTRY.register_lazy("numpy", f"{__name__}.numpy")
REGISTRY.register_lazy("pandas", f"{__name__}.pandas")
REGISTRY.register_lazy("torch", f"{__name__}.torch")
REGISTRY.register_lazy("pyarrow", f"{__name__}.arrow")
REGISTRY.register_lazy("polars", f"{__name__}.polars")
REGISTRY.register_lazy("scipy.sparse", f"{__name__}.scipy")
REGISTRY.register_lazy("xarray", f"{__name__}.xarray")

__all__ = ["DIGEST_SIZE", "FINGERPRINT_VERSION", "Fingerprinter", "Substitutes", "fingerprint", "takes_pickle_path"]
