"""Fingerprints: a 16-byte digest of a value, equal for equal values, different for different ones.

A fingerprint is xxh3-128 over a canonical encoding of the value. Every piece of the encoding is
type-tagged and length-prefixed, so two different values cannot encode to the same bytes through
a shortcut (``[1, 2]`` vs ``[12]``, ``"1"`` vs ``1``, ``1`` vs ``1.0`` vs ``True``):

- scalars (None, bool, int, float, complex, str, bytes) encode their exact value;
- lists, tuples and dicts encode their elements in order (dict insertion order is observable, so
  it is part of the value); sets sort their elements' fingerprints (their order is not);
- an object seen twice in one value encodes as a back-reference, so aliasing (``[a, a]`` vs
  ``[a, copy(a)]``) and cycles are part of the fingerprint and never loop;
- numpy arrays hash their raw buffer with dtype, shape and memory order; object arrays hash each
  element; pandas objects hash every column's values, the index, the column names, the dtypes
  and ``attrs`` — all of them, never a sample;
- functions hash their code (bytecode, constants, names, defaults, closure) plus the globals the
  code refers to, transitively; classes hash their members. Code from installed libraries hashes
  as module, name and the library's version instead, which is both cheaper and what changes when
  the library changes. Line numbers and file names are left out: they differ between kernels;
- anything else goes through pickle (protocol 5, out-of-band buffers hashed in place), with the
  objects above intercepted so they keep their canonical encodings, string identity and set order
  left out; such a value encodes as the digest of its pickle.

A hit restores objects by unpickling them, and a library's pickling need not reproduce an object
exactly: a :class:`Fingerprinter` may be given :class:`Substitutes`, the digests restored objects'
pickles had when their entry was made (see :mod:`.pickled`).

A value with no sound fingerprint (a generator, an open file, a lock) raises
:class:`~nbcache.errors.FingerprintError`.

``FINGERPRINT_VERSION`` names this encoding; it is part of every key, so a change of the encoding
invalidates old entries instead of silently colliding with them.
"""

from __future__ import annotations

from .core import DIGEST_SIZE, FINGERPRINT_VERSION, Fingerprinter, fingerprint
from .pickled import Substitutes, _restore_marker, takes_pickle_path

__all__ = ["DIGEST_SIZE", "FINGERPRINT_VERSION", "Fingerprinter", "Substitutes", "fingerprint", "takes_pickle_path"]
