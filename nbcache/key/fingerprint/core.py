"""The encoding core: tags, the walk that feeds a hasher, and the scalars and containers.

A :class:`_Walk` is one traversal of one value into one xxh3-128 hasher. Its primitives write
type tags and length-prefixed blobs, its memo of seen objects turns a second sight of an object
into a back-reference (so aliasing and cycles are part of the value and never loop), and
:meth:`_Walk.value` hands each value to the encoder for its type. :class:`Fingerprinter` owns
what outlives one walk: the memo of code digests, the pool of picklers, the substitutes.
"""

from __future__ import annotations

import collections
import math
import struct
from typing import TYPE_CHECKING, Any, Callable

import xxhash

from .registry import REGISTRY, Kind
from .strings import digest_strings

__all__ = ["DIGEST_SIZE", "FINGERPRINT_VERSION", "Fingerprinter", "fingerprint"]

if TYPE_CHECKING:
    from .pickled import Substitutes, _HashingPickler

# Bump when the encoding changes: old keys then stop matching rather than colliding.
# 3: runs of strings through one C pass (long lists, object arrays), pandas' Arrow-backed arrays by
# their Arrow buffers.
FINGERPRINT_VERSION = 3
# xxh3-128: ~18 GB/s on one core here; 128 bits make accidental collisions irrelevant.
DIGEST_SIZE = 16

_PACK_LEN = struct.Struct("<Q").pack
_PACK_DOUBLE = struct.Struct("<d").pack

# One-byte tags, for every encoder of the package in this one table so that none is used twice.
# Never reuse a tag for a different meaning; add new ones at the end.
_NONE, _TRUE, _FALSE, _INT, _FLOAT, _COMPLEX, _STR, _BYTES, _BYTEARRAY = b"NTFifcsbB"
_TUPLE, _LIST, _DICT, _SET, _FROZENSET, _REF = b"()d{}r"
_NDARRAY, _NDOBJ, _NPSCALAR, _DTYPE = b"ao#t"
_FRAME, _SERIES, _INDEX, _RANGEINDEX, _MULTIINDEX, _EXTARRAY, _CATEGORICAL = b"DSIRMEC"
_FUNC, _CODE, _CLASS, _MODULE, _LIBOBJ, _METHOD, _PARTIAL, _PICKLE, _ELLIPSIS = b"FKLmlMPpE"
_WRAPPER, _INSTANCE = b"WO"
_STRS, _USER, _TENSOR, _TORCH_MODULE, _OPTIMIZER, _ARROW, _POLARS, _LAZYFRAME, _SPARSE, _XARRAY = b"$UXnqAHZVY"
_ODICT = b"Q"[0]
# _STRS (`$`, a pickle of a run of strings) is retired: a run is now `u` and the digest of its own
# framing (strings.py), made by nbcache's C extension. Entries keyed with a run of strings miss
# once; the others still hit.
_STR_RUN = b"u"[0]

# The walk asks the registry (registry.py) how to encode each value: the exact types first,
# without a method call, since most values are scalars and containers.
_EXACT = REGISTRY.exact_encoders
_KIND = REGISTRY.kind


def fingerprint(value: Any) -> bytes:
    """The 16-byte fingerprint of ``value``."""
    return Fingerprinter().digest(value)


class Fingerprinter:
    """Computes fingerprints; one instance may be reused for several values.

    Code fingerprints (functions, classes, local modules) are memoized per instance, so a
    helper used by many inputs is hashed once per key.
    """

    def __init__(self, substitutes: Substitutes | None = None) -> None:
        self._code_memo: dict[int, bytes] = {}
        self._code_keep: list[Any] = []  # keeps memoized objects alive so ids stay unique
        self._in_progress: set[int] = set()
        self.substitutes = substitutes
        self._picklers: list[_HashingPickler] = []
        self._wanted: int | None = None  # see pickle_digest
        self._found: bytes | None = None
        self._standing: set[int] = set()  # see stand_in_digest

    def stand_in_digest(self, obj: Any) -> bytes:
        """``obj``'s fingerprint, as it stands inside a pickle. A stand-in's walk may pickle
        something that holds the object again (a module's hook bound to the module): that inner
        sight stands as its type's name, the outer one already encodes the object."""
        key = id(obj)
        if key in self._standing:
            return xxhash.xxh3_128(b"cycle:" + _qualname(type(obj)).encode()).digest()
        self._standing.add(key)
        try:
            return self.digest(obj)
        finally:
            self._standing.discard(key)

    def digest(self, value: Any) -> bytes:
        hasher = xxhash.xxh3_128()
        _Walk(self, hasher).value(value)
        return hasher.digest()

    def digests(self, value: Any) -> tuple[bytes, bytes | None]:
        """The fingerprint of ``value`` and the digest of its pickle (substitutes applied; None
        when ``value`` is not encoded through pickle), from one walk."""
        self._wanted, self._found = id(value), None
        try:
            return self.digest(value), self._found
        finally:
            self._wanted = None

    def pickle_digest(self, value: Any) -> bytes | None:
        return self.digests(value)[1]

    # Code objects, functions and classes are memoized by identity: they are hashed once per
    # key even when many inputs refer to them, and recursion (a function that calls itself
    # through a global) terminates.
    def code_digest(self, obj: Any, compute: Callable[[_Walk], None]) -> bytes:
        key = id(obj)
        cached = self._code_memo.get(key)
        if cached is not None:
            return cached
        if key in self._in_progress:
            # A cycle (f refers to itself through its globals): its name stands for it.
            return xxhash.xxh3_128(b"cycle:" + _qualname(obj).encode()).digest()
        self._in_progress.add(key)
        try:
            hasher = xxhash.xxh3_128()
            compute(_Walk(self, hasher))
            digest = hasher.digest()
        finally:
            self._in_progress.discard(key)
        self._code_memo[key] = digest
        self._code_keep.append(obj)
        return digest


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


class _Walk:
    """One traversal feeding one hasher; the memo of seen objects encodes aliasing and cycles."""

    __slots__ = ("fp", "update", "seen", "keep")

    def __init__(self, fp: Fingerprinter, hasher: Any):
        self.fp = fp
        self.update = hasher.update
        self.seen: dict[int, int] = {}
        # Objects remembered stay alive until the walk ends: a temporary (a closure's cell list,
        # a property's accessors) freed midway would hand its id to a later object, which would
        # then encode as a back-reference to it.
        self.keep: list[Any] = []

    # -- primitives --------------------------------------------------------------------------
    def tag(self, tag: int) -> None:
        self.update(bytes((tag,)))

    def blob(self, data: bytes | memoryview) -> None:
        self.update(_PACK_LEN(len(data) if isinstance(data, bytes) else data.nbytes))
        self.update(data)

    def text(self, s: str) -> None:
        self.blob(s.encode("utf-8", "surrogatepass"))

    def length(self, n: int) -> None:
        self.update(_PACK_LEN(n))

    def remember(self, obj: Any) -> bool:
        """Record ``obj``; if it was seen before in this value, emit a back-reference instead."""
        key = id(obj)
        index = self.seen.get(key)
        if index is not None:
            self.tag(_REF)
            self.length(index)
            return True
        self.seen[key] = len(self.seen)
        self.keep.append(obj)
        return False

    # -- dispatch ----------------------------------------------------------------------------
    def value(self, v: Any) -> None:
        encode = _EXACT.get(type(v))
        if encode is None:
            encode = _KIND(v).encode
        encode(self, v)


# -- scalars and containers ------------------------------------------------------------------
def _none(w: _Walk, v: Any) -> None:
    w.tag(_NONE)


def _bool(w: _Walk, v: bool) -> None:
    w.tag(_TRUE if v else _FALSE)


def _int(w: _Walk, v: int) -> None:
    w.tag(_INT)
    w.blob(v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True))


def _float(w: _Walk, v: float) -> None:
    w.tag(_FLOAT)
    # NaN payloads differ bit-wise but not in any way Python shows; canonicalize them.
    w.update(_PACK_DOUBLE(math.nan) if v != v else _PACK_DOUBLE(v))


def _complex(w: _Walk, v: complex) -> None:
    w.tag(_COMPLEX)
    _float(w, v.real)
    _float(w, v.imag)


def _str(w: _Walk, v: str) -> None:
    w.tag(_STR)
    w.text(v)


def _bytes(w: _Walk, v: bytes) -> None:
    w.tag(_BYTES)
    w.blob(v)


def _bytearray(w: _Walk, v: bytearray) -> None:
    if w.remember(v):
        return
    w.tag(_BYTEARRAY)
    w.blob(memoryview(v))


def _sequence(tag: int) -> Callable[[_Walk, Any], None]:
    def encode(w: _Walk, v: list[Any] | tuple[Any, ...]) -> None:
        if w.remember(v):
            return
        w.tag(tag)
        w.length(len(v))
        if len(v) >= _MIN_RUN and strings(w, v):
            return
        item = w.value
        for x in v:
            item(x)

    return encode


# Below this many elements a sequence of strings is walked element by element, as it always was:
# the run's own hasher costs more to set up than a few strings cost to walk.
_MIN_RUN = 16


def strings(w: _Walk, items: Any) -> bool:
    """Encode ``items`` (a list, a tuple, a C-contiguous 1-d object array) as a run of strings if
    every one is exactly a ``str`` (True), else write nothing (False).

    The run is the digest of its UTF-8 bytes and lengths (:mod:`.strings`: one pass in C, or the
    same bytes from Python where the extension was not compiled). Neither the identity of a string
    nor a repeat of one is written; the exact-type check keeps out ``str`` subclasses (which may
    carry state).
    """
    if not len(items):
        return False
    digest = digest_strings(items)
    if digest is None:
        return False
    w.tag(_STR_RUN)
    w.update(digest)
    return True


def _mapping(tag: int) -> Callable[[_Walk, Any], None]:
    def encode(w: _Walk, v: dict[Any, Any]) -> None:
        if w.remember(v):
            return
        w.tag(tag)
        w.length(len(v))
        item = w.value
        for k, x in v.items():
            item(k)
            item(x)

    return encode


_dict = _mapping(_DICT)


def _set(tag: int) -> Callable[[_Walk, Any], None]:
    def encode(w: _Walk, v: set[Any] | frozenset[Any]) -> None:
        if w.remember(v):
            return
        w.tag(tag)
        w.length(len(v))
        # Iteration order of a set depends on hash randomization; the element digests,
        # sorted, do not.
        for d in sorted(w.fp.digest(x) for x in v):
            w.update(d)

    return encode


def _ellipsis(w: _Walk, v: Any) -> None:
    w.tag(_ELLIPSIS)


# Inside another object's pickle these are pickled as usual: their pickle is canonical (strings and
# sets are made so by the pickler), and cheaper than a stand-in.
for _type, _encode in {
    type(None): _none,
    bool: _bool,
    int: _int,
    float: _float,
    complex: _complex,
    str: _str,
    bytes: _bytes,
    bytearray: _bytearray,
    tuple: _sequence(_TUPLE),
    list: _sequence(_LIST),
    dict: _dict,
    # torch keeps a module's hooks in them; walked, a hook bound to its module is a back-reference.
    collections.OrderedDict: _mapping(_ODICT),
    set: _set(_SET),
    frozenset: _set(_FROZENSET),
    type(Ellipsis): _ellipsis,
}.items():
    REGISTRY.register(_type, Kind(_encode, stand_in=None))
