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
exactly (scikit-learn's ``Bunch`` drops an attribute, statsmodels' datasets are their own
``__dict__``): the restored object would fingerprint unlike the original, and every later cell
that reads it would miss. So a :class:`Fingerprinter` may be given *substitutes*: for an object
restored by a hit, the digest its pickle had when the entry was made, used for as long as the
restored object's own pickle digest is the one it had right after the restore (it is unchanged).

A value with no sound fingerprint (a generator, an open file, a lock) raises
:class:`~nbcache.errors.FingerprintError`.

``FINGERPRINT_VERSION`` names this encoding; it is part of every key, so a change of the encoding
invalidates old entries instead of silently colliding with them.
"""

from __future__ import annotations

import functools
import io
import math
import pickle
import struct
import types
import weakref
from typing import Any, Callable

import xxhash

from ...errors import FingerprintError
from ..modules import is_library_module, module_digest, module_version

__all__ = ["DIGEST_SIZE", "FINGERPRINT_VERSION", "Fingerprinter", "Substitutes", "fingerprint", "takes_pickle_path"]

# Bump when the encoding below changes: old keys then stop matching rather than colliding.
FINGERPRINT_VERSION = 2
# xxh3-128: ~18 GB/s on one core here; 128 bits make accidental collisions irrelevant.
DIGEST_SIZE = 16

_PACK_LEN = struct.Struct("<Q").pack
_PACK_DOUBLE = struct.Struct("<d").pack

# One-byte tags. Never reuse a tag for a different meaning; add new ones at the end.
_NONE, _TRUE, _FALSE, _INT, _FLOAT, _COMPLEX, _STR, _BYTES, _BYTEARRAY = b"NTFifcsbB"
_TUPLE, _LIST, _DICT, _SET, _FROZENSET, _REF = b"()d{}r"
_NDARRAY, _NDOBJ, _NPSCALAR, _DTYPE = b"ao#t"
_FRAME, _SERIES, _INDEX, _RANGEINDEX, _MULTIINDEX, _EXTARRAY, _CATEGORICAL = b"DSIRMEC"
_FUNC, _CODE, _CLASS, _MODULE, _LIBOBJ, _METHOD, _PARTIAL, _PICKLE, _ELLIPSIS = b"FKLmlMPpE"
_WRAPPER, _INSTANCE = b"WO"


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
        t = type(v)
        handler = _EXACT.get(t)
        if handler is not None:
            handler(self, v)
            return
        if _plain_class(t):  # first: a list of 10,000 instances skips the checks below
            _instance(self, v)
            return
        module = t.__module__.partition(".")[0]
        if module == "numpy":
            if _numpy_value(self, v):
                return
        elif module == "pandas":
            if _pandas_value(self, v):
                return
        if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType)):
            self.update(_code_like_digest(self.fp, v))
            return
        if isinstance(v, types.MethodType):
            if self.remember(v):
                return
            self.tag(_METHOD)
            self.value(v.__func__)
            self.value(v.__self__)
            return
        wrapped = getattr(v, "__wrapped__", None) if callable(v) else None
        if wrapped is not None and not isinstance(v, type):
            # lru_cache and other wrappers pickle by name only: their code is the wrapped function's
            if self.remember(v):
                return
            self.tag(_WRAPPER)
            self.text(_qualname(t))
            self.value(wrapped)
            params = getattr(v, "cache_parameters", None)
            self.value(params() if callable(params) else None)
            return
        if t is functools.partial:
            if self.remember(v):
                return
            self.tag(_PARTIAL)
            self.value(v.func)
            self.value(v.args)
            self.value(v.keywords)
            return
        _pickled(self, v)


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
        item = w.value
        for x in v:
            item(x)

    return encode


def _dict(w: _Walk, v: dict[Any, Any]) -> None:
    if w.remember(v):
        return
    w.tag(_DICT)
    w.length(len(v))
    item = w.value
    for k, x in v.items():
        item(k)
        item(x)


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


_EXACT: dict[type, Callable[[_Walk, Any], None]] = {
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
    set: _set(_SET),
    frozenset: _set(_FROZENSET),
    type(Ellipsis): _ellipsis,
}


# -- numpy ------------------------------------------------------------------------------------
def _numpy_value(w: _Walk, v: Any) -> bool:
    import numpy as np

    if type(v) is np.ndarray:
        if w.remember(v):
            return True
        _ndarray(w, v)
        return True
    if isinstance(v, np.generic) and not isinstance(v, np.object_):
        w.tag(_NPSCALAR)
        w.text(v.dtype.str)
        w.blob(v.tobytes())
        return True
    if isinstance(v, np.dtype):
        w.tag(_DTYPE)
        w.text(repr(v))
        return True
    return False


def _ndarray(w: _Walk, a: Any) -> None:
    import numpy as np

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
    """Elements of a 1-d object array (or a list), with a fast path when all are ``str``."""
    if not isinstance(flat, list):
        flat = flat.tolist()  # one pass in C; iterating an ndarray element by element is slower
    n = len(flat)
    w.length(n)
    # set(map(type, ...)) runs in C: the check costs ~20 ns an element.
    if n and set(map(type, flat)) == {str}:
        # Lengths (in code points) plus the concatenation determine every element.
        import numpy as np

        w.tag(_STR)
        lengths: Any = np.fromiter(map(len, flat), dtype=np.int64, count=n)
        w.blob(memoryview(lengths).cast("B"))
        w.blob("".join(flat).encode("utf-8", "surrogatepass"))
        return
    w.tag(_LIST)
    item = w.value
    for x in flat:
        item(x)


# -- pandas -----------------------------------------------------------------------------------
def _pandas_value(w: _Walk, v: Any) -> bool:
    import pandas as pd

    t = type(v)
    if t is pd.DataFrame:
        if w.remember(v):
            return True
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
        return True
    if t is pd.Series:
        if w.remember(v):
            return True
        w.tag(_SERIES)
        w.value(v.name)
        _index(w, v.index)
        w.value(dict(v.attrs))
        _array(w, v._values)
        return True
    if isinstance(v, pd.Index):
        if w.remember(v):
            return True
        _index(w, v)
        return True
    if isinstance(v, pd.api.extensions.ExtensionArray):
        if w.remember(v):
            return True
        _array(w, v)
        return True
    return False


def _index(w: _Walk, idx: Any) -> None:
    import pandas as pd

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
    import numpy as np
    import pandas as pd

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
    # Anything else (arrow-backed, third-party): the missing-value mask plus the values
    # as Python objects. Exact, if slower than a buffer.
    _ndarray(w, np.asarray(arr.isna(), dtype=bool))
    _object_elements(w, arr.to_numpy(dtype=object, na_value=None))


# -- code: functions, classes, modules --------------------------------------------------------
def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _library_object(w: _Walk, obj: Any, module: str) -> None:
    w.tag(_LIBOBJ)
    w.text(_qualname(obj))
    w.text(module_version(module))


def _code_like_digest(fp: Fingerprinter, obj: Any) -> bytes:
    if isinstance(obj, types.ModuleType):
        return fp.code_digest(obj, lambda w: _module(w, obj))
    module = getattr(obj, "__module__", None)
    if isinstance(obj, types.BuiltinFunctionType) or is_library_module(module):
        # Installed code: its identity and the library's version stand for its behaviour.
        return fp.code_digest(obj, lambda w: _library_object(w, obj, module or "builtins"))
    if isinstance(obj, type):
        return fp.code_digest(obj, lambda w: _class(w, obj))
    return fp.code_digest(obj, lambda w: _function(w, obj))


def _module(w: _Walk, module: types.ModuleType) -> None:
    w.tag(_MODULE)
    w.text(module.__name__)
    # Installed: its version; working tree: its source and the sources it imports.
    w.text(module_digest(module.__name__) if getattr(module, "__file__", None) else module_version(module.__name__))


def _function(w: _Walk, fn: types.FunctionType) -> None:
    w.tag(_FUNC)
    w.text(fn.__qualname__)
    _code(w, fn.__code__)
    w.value(fn.__defaults__)
    w.value(fn.__kwdefaults__)
    w.value([c.cell_contents if _cell_filled(c) else _EmptyCell for c in fn.__closure__ or ()])
    w.value(getattr(fn, "__wrapped__", None))
    # The globals the code refers to, at their current values: a helper edited two cells up,
    # or a constant it reads, changes the fingerprint of every function that uses it.
    fn_globals = fn.__globals__
    builtins_ns = fn_globals.get("__builtins__")
    for name in sorted(_code_names(fn.__code__)):
        if name in fn_globals:
            w.text(name)
            w.value(fn_globals[name])
        elif builtins_ns is not None and name not in _builtin_names(builtins_ns):
            w.text(name)
            w.tag(_NONE)


class _EmptyCell:
    """Stands for a closure cell that has no value yet."""


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _builtin_names(builtins_ns: Any) -> Any:
    return builtins_ns if isinstance(builtins_ns, dict) else vars(builtins_ns)


_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME", "DELETE_NAME"})


def _code_names(code: types.CodeType) -> set[str]:
    """Names the code looks up as globals (``co_names`` also holds attribute names: ``x.mean``)."""
    import dis

    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_OPS and isinstance(ins.argval, str)}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _code(w: _Walk, code: types.CodeType) -> None:
    w.tag(_CODE)
    w.blob(code.co_code)
    w.length(code.co_argcount)
    w.length(code.co_posonlyargcount)
    w.length(code.co_kwonlyargcount)
    w.length(code.co_flags)
    w.value(code.co_names)
    w.value(code.co_varnames)
    w.value(code.co_freevars)
    w.value(code.co_cellvars)
    w.length(len(code.co_consts))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code(w, const)
        else:
            w.value(const)


def _class(w: _Walk, cls: type) -> None:
    w.tag(_CLASS)
    w.text(cls.__qualname__)
    w.length(len(cls.__bases__))
    for base in cls.__bases__:
        w.update(_code_like_digest(w.fp, base))
    w.text(type(cls).__qualname__)  # the metaclass
    # By name: a class restored from a pickle (a hit, in a new kernel) has its members in another order.
    for name, member in sorted(vars(cls).items(), key=lambda item: item[0]):
        if name in ("__dict__", "__weakref__", "__module__", "__slotnames__"):
            continue  # __slotnames__: copyreg caches it on the class the first time one is pickled
        w.text(name)
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property):
            member = (member.fget, member.fset, member.fdel)
        try:
            w.value(member)
        except FingerprintError:
            w.text(f"<{type(member).__qualname__}>")  # slot descriptors and the like


# -- instances that pickle as class + __dict__ ------------------------------------------------------
_PLAIN: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _plain_class(t: type) -> bool:
    """Whether instances of ``t`` pickle as nothing but their class and ``__dict__`` (no reduce
    or state hooks, no slots, not a subclass of a builtin container): those are walked here, as
    class + ``__dict__``, which is what their pickle holds, ten times faster than pickling each."""
    plain = _PLAIN.get(t)
    if plain is None:
        try:
            plain = (
                t.__reduce_ex__ is object.__reduce_ex__
                and t.__reduce__ is object.__reduce__
                and getattr(t, "__getstate__", None) is getattr(object, "__getstate__", None)
                and not hasattr(t, "__getnewargs_ex__")
                and not hasattr(t, "__getnewargs__")
                and t.__dictoffset__ != 0
                and all(b is object or (b.__module__ != "builtins" and "__slots__" not in vars(b)) for b in t.__mro__)
            )
            _PLAIN[t] = plain
        except TypeError:  # not weak-referenceable
            return False
    return plain


def _instance(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_INSTANCE)
    w.update(_code_like_digest(w.fp, type(v)))
    w.value(v.__dict__)


# -- everything else: pickle ------------------------------------------------------------------
def _restore_marker(digest: bytes) -> bytes:  # pragma: no cover - never unpickled
    return digest


class _HashingPickler(pickle.Pickler):
    """Pickles into the hasher, keeping nbcache's own encodings for code, arrays and frames.

    One pickler serves many values in turn (:meth:`use`): making one costs more than pickling
    a small object, and a list of 10,000 instances is hashed object by object.
    """

    def __init__(self, w: _Walk):
        self.file = _HasherFile(w.update)
        super().__init__(self.file, protocol=5, buffer_callback=self._buffer)
        self.w = w
        self.root: Any = None

    def use(self, w: _Walk) -> _HashingPickler:
        self.w = w
        self.file._update = w.update
        self.clear_memo()
        return self

    def dump(self, obj: Any) -> None:
        self.root = obj
        super().dump(obj)

    def _buffer(self, buffer: pickle.PickleBuffer) -> bool:
        # Out-of-band buffers (numpy arrays inside objects) are hashed in place, not copied.
        view = buffer.raw()
        self.w.update(_PACK_LEN(view.nbytes))
        self.w.update(view)
        return False

    def persistent_id(self, obj: Any) -> Any:
        # What pickle encodes beyond the value, made canonical. The identity of a string is not
        # part of its value, yet pickle's memo encodes it, and unpickling interns attribute
        # names: an object restored from the cache would fingerprint unlike the original (seen
        # with statsmodels results). A fresh bytes object per string is never memoized. A set's
        # order follows string hashes, which differ in every new process: sort its elements.
        t = obj.__class__
        if t is str:
            return obj.encode("utf-8", "surrogatepass")
        if t is set or t is frozenset:
            return (t is frozenset, sorted(self.w.fp.digest(x) for x in obj))
        return None

    def reducer_override(self, obj: Any) -> Any:
        if obj is _restore_marker:
            return NotImplemented
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType)):
            return _restore_marker, (_code_like_digest(self.w.fp, obj),)
        if callable(obj) and getattr(obj, "__wrapped__", None) is not None and obj is not self.root:
            return _restore_marker, (self.w.fp.digest(obj),)
        module = type(obj).__module__.partition(".")[0]
        if module in ("numpy", "pandas") and obj is not self.root:
            digest = self.w.fp.digest(obj)
            return _restore_marker, (digest,)
        return NotImplemented


class _HasherFile(io.RawIOBase):
    def __init__(self, update: Callable[[Any], None]):
        self._update = update

    def write(self, data: Any) -> int:
        self._update(data)
        return len(data)


def _pickled(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_PICKLE)
    hasher = xxhash.xxh3_128()
    inner = _Walk(w.fp, hasher)
    inner.text(_qualname(type(v)))
    pool = w.fp._picklers
    pickler = pool.pop().use(inner) if pool else _HashingPickler(inner)
    try:
        pickler.dump(v)
    except FingerprintError:
        raise
    except Exception as exc:
        raise FingerprintError(
            f"cannot fingerprint a value of type {type(v).__qualname__}: {exc}",
            type_name=type(v).__qualname__,
        ) from exc
    else:
        pool.append(pickler)  # a pickler that failed midway is not reused
    digest = hasher.digest()
    substitutes = w.fp.substitutes
    if substitutes is not None:
        digest = substitutes.apply(v, digest)
    if id(v) == w.fp._wanted:
        w.fp._found = digest
    w.blob(digest)


def takes_pickle_path(value: Any) -> bool:
    """Whether ``value`` (at the top of a fingerprint) is encoded through pickle, roughly: False
    for the types with an encoding of their own (which a pickle round trip keeps exactly)."""
    t = type(value)
    if t in _EXACT or t.__module__.partition(".")[0] in ("numpy", "pandas"):
        return False
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType, types.MethodType, functools.partial)):
        return False
    return not _plain_class(t)


class Substitutes:
    """Pickle digests of restored objects that stand for the originals' (see the module doc).

    Holds the objects themselves (so their ids stay theirs); :meth:`prune` drops those no longer
    in the namespace.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, bytes, bytes]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, obj: Any, original: bytes) -> None:
        """``obj`` was just restored from an entry that recorded ``original`` as its digest."""
        self._by_id.pop(id(obj), None)
        restored = Fingerprinter().pickle_digest(obj)
        if restored is not None and restored != original:
            self._by_id[id(obj)] = (obj, restored, original)

    def apply(self, obj: Any, digest: bytes) -> bytes:
        found = self._by_id.get(id(obj))
        if found is not None and found[0] is obj and found[1] == digest:
            return found[2]
        return digest

    def prune(self, alive: Any) -> None:
        """Keep only the objects that are values of ``alive`` (a namespace)."""
        if self._by_id:
            ids = {id(v) for v in alive.values()}
            for key in [k for k in self._by_id if k not in ids]:
                del self._by_id[key]
