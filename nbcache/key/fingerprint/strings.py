"""The encoding of a run of strings: a whole list, tuple or object array in one pass.

For each string in order: its UTF-8 byte length as 8 bytes little-endian, then those bytes, lone
surrogates written as the ``surrogatepass`` error handler writes them. A fixed-width length rather
than a varint: it is what the rest of the encoding uses, and xxh3 reads the extra bytes faster
than a loop could save them. A run enters a key as :func:`digest_strings`, the xxh3-128 of that
encoding, so that the encoding can be hashed as it is made, in pieces, and a run that turns out
not to be all strings halfway leaves nothing behind.

The encoder is the C extension ``_strings`` (compiled by ``hatch_build.py`` at install) when it is
there, else :func:`encode_strings_python`, which writes the same bytes: a key made on a machine
without a compiler equals the key made with the extension. Both give None when an element is not
exactly a ``str``: a subclass may carry state that the string's bytes leave out.
"""

from __future__ import annotations

import operator
import struct
from typing import Any

import xxhash

__all__ = ["NATIVE", "digest_strings", "encode_strings", "encode_strings_python"]

_PACK_LEN = struct.Struct("<Q").pack

# The native encoder's piece: small enough to stay in the CPU's cache and below the allocator's
# threshold for a mapping of its own (128 kB in glibc), so each piece reuses the last one's memory.
CHUNK = 1 << 16


def encode_strings_python(obj: Any) -> bytes | None:
    """The pure-Python encoder; what the extension does, byte for byte (see the module docstring).

    ``obj`` is a list, a tuple, or a C-contiguous 1-d buffer of objects with a ``tolist()``
    (a numpy object array).
    """
    if type(obj) is list or type(obj) is tuple:  # exactly, as the extension
        items = obj
    else:
        view = memoryview(obj)  # TypeError, as the extension, when obj has no buffer
        if view.ndim != 1 or view.format not in ("O", "@O") or not view.c_contiguous:
            raise ValueError("_strings takes a C-contiguous 1-d buffer of format 'O'")
        items = obj.tolist()
    if operator.countOf(map(type, items), str) != len(items):
        return None
    encoded = [s.encode("utf-8", "surrogatepass") for s in items]
    return b"".join([part for b in encoded for part in (_PACK_LEN(len(b)), b)])


try:
    from ._strings import encode_chunk, encode_strings
except ImportError:  # not compiled (no compiler where nbcache was installed): same bytes, slower
    NATIVE = False
    encode_strings = encode_strings_python
else:
    NATIVE = True


def digest_strings(obj: Any, chunk: int = CHUNK) -> bytes | None:
    """The xxh3-128 digest of ``encode_strings(obj)``, or None when not every element is exactly a
    ``str``. ``chunk``: the size of the native encoder's pieces (a test's knob; the digest is the
    same whatever it is)."""
    hasher = xxhash.xxh3_128()
    if not NATIVE:
        encoded = encode_strings_python(obj)
        if encoded is None:
            return None
        hasher.update(encoded)
        return hasher.digest()
    update, start, n = hasher.update, 0, len(obj)
    while start < n:
        piece = encode_chunk(obj, start, chunk)
        if piece is None:
            return None
        encoded, start = piece
        update(encoded)
    return hasher.digest()
