"""Values to bytes and back: what a cell bound, in one pickle, with large buffers out of band.

All of a cell's values go into *one* pickle, so objects they share stay shared after a restore
(``a = b = []`` gives ``a is b`` again). What makes a restored namespace behave like the one the
cell left behind, at the speed of pickle itself:

- **References to what was already there.** An object that existed in the namespace before the
  cell ran (``view = base``; an instance whose class was defined two cells up) is written as a
  reference to that name, and resolved against the live namespace on load, so identity
  (``view is base``, ``isinstance(p, P)``) survives. The key guarantees that those names hold the
  same values on a hit as when the entry was written.

  Finding those references costs no Python call per object: pickle's own memo is seeded with
  them before the values are pickled, so the C pickler writes a memo reference (``BINGET``) when
  it meets one, exactly as for an object it already wrote. The stream starts with a short header
  pickle that, on load, looks each name up in the namespace and puts the object in the
  unpickler's memo at the same index (one ``persistent_load`` per name, not per object). (Values
  versions 1 and 2 had no header: each reference was a persistent id. They are still read.)
- **Functions see the live namespace.** A function defined in the notebook is pickled by value
  (cloudpickle), but re-created with the live namespace as its globals, so it sees later changes
  to the globals it uses, exactly like the function the cell defined.
- **Buffers out of band.** Pickle protocol 5 hands large buffers (numpy arrays, pandas blocks,
  Arrow data; torch tensors and polars frames through :mod:`.reducers`) to nbcache instead of
  copying them into the pickle. They are written straight to the file and read back with
  ``readinto`` into the memory the arrays will use: no extra copy either way. The pickle itself
  goes to a :class:`~nbcache.store.frames.Spool` frame by frame, never as a whole into memory.
- **Libraries' own objects.** The reducers of :mod:`.reducers` (torch, polars; widgets and
  figures) and the views of :mod:`.views` see every object that is not a builtin container,
  scalar, class or function, after one dict lookup of its type: an instance nobody reduces leaves
  ``reducer_override`` at once.
- **The garbage collector waits.** Pickling and unpickling a million small containers would
  trigger hundreds of collections that find nothing (every object is reachable from the values):
  it is paused while they run, which makes a load of object-heavy values about 3x faster.

The frames (pickle + buffers) are laid out by :mod:`nbcache.store.frames`.
"""

from __future__ import annotations

import contextlib
import gc
import io
import pickle
import struct
import sys
import types
from typing import Any, BinaryIO, Iterable, Iterator, Mapping

import cloudpickle
from cloudpickle import cloudpickle as _cp

from ..errors import CorruptEntryError, UnpicklableError
from ..store.frames import Frames, Spool
from .reducers import REDUCERS
from .views import Anchors, array_view

__all__ = ["dump_values", "load_values"]

# The name under which the header refers to the namespace itself (no variable has this name).
_NAMESPACE = ""
# The first values version whose pickle starts with the header (nbcache.store.frames).
_HEADER_VERSION = 3
# A type the reducer session has not looked up yet.
_UNSEEN: Any = object()


def _slots(namespace: Mapping[str, Any], refs: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    """The memo slots the header fills: the namespace, then each referenced object once, by name."""
    names, objects, seen = [_NAMESPACE], [namespace], {id(namespace)}
    for name in sorted(refs):
        obj = refs[name]
        if id(obj) in seen:
            continue  # the same object under another name: one slot (pickle's memo has one per object)
        seen.add(id(obj))
        names.append(name)
        objects.append(obj)
    return names, objects


def _header(names: list[str]) -> bytes:
    """A pickle that, loaded by :class:`_ValuesUnpickler`, puts the object under each name into the
    memo at the name's index: PROTO 5, then per name BINUNICODE name, BINPERSID, MEMOIZE, POP;
    then NONE, STOP."""
    out = bytearray(b"\x80\x05")
    for name in names:
        data = name.encode("utf-8", "surrogatepass")
        out += b"X" + struct.pack("<I", len(data)) + data + b"Q\x940"
    out += b"N."
    return bytes(out)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _ValuesPickler(cloudpickle.Pickler):
    def __init__(self, file: Any, namespace: Mapping[str, Any], slots: list[Any], buffers: list[Any]):
        # cloudpickle's dispatch table is a ChainMap: the C pickler would look every instance's
        # type up in it through Python (and a KeyError). The same table as one dict is a C lookup.
        # (Read once by the C pickler's __init__, hence set before it.)
        self.dispatch_table = dict(cloudpickle.Pickler.dispatch_table)
        super().__init__(file, protocol=5, buffer_callback=self._take_buffer)
        self._namespace = namespace
        self._buffers = buffers
        self._stored_arrays: set[int] = set()
        self._anchors = Anchors((), ())
        # Libraries' objects written out of band (torch tensors, polars frames) and live objects
        # (widgets, figures): see .reducers.
        self._reduce = REDUCERS.session()
        # Pre-existing objects are memo entries already: the C pickler refers to them by index.
        self.memo = {id(obj): (index, obj) for index, obj in enumerate(slots)}
        # Functions whose globals are the namespace get the namespace itself as their globals
        # (a memo reference), not cloudpickle's copy of the few globals they use.
        self.globals_ref[id(namespace)] = namespace

    def _view_reduce(self, obj: Any) -> Any:
        args = self._anchors.view_args(obj)
        return (_array_view, args) if args is not None else None

    def _root_reduce(self, obj: Any) -> Any:
        """A stored array is rebuilt directly over its buffer, so views of it have it as ``base``."""
        if id(obj) not in self._stored_arrays or obj.dtype.hasobject:
            return None
        if not (obj.flags.c_contiguous or obj.flags.f_contiguous):
            return None
        order = "C" if obj.flags.c_contiguous else "F"
        return _array_over, (pickle.PickleBuffer(obj), obj.dtype, obj.shape, order)

    def _take_buffer(self, buffer: pickle.PickleBuffer) -> bool:
        raw = buffer.raw()
        if raw.nbytes < 4096:
            return True  # small buffers stay in band: a frame per tiny array costs more than it saves
        self._buffers.append(raw)
        return False

    def reducer_override(self, obj: Any) -> Any:
        # Called for every object that is not a builtin container or scalar: the common case (an
        # instance of some class) must leave at once, after one dict lookup of its type for the
        # reducers (.reducers: torch tensors, polars frames, widgets and figures).
        t = type(obj)
        if t is types.FunctionType:
            if obj.__globals__ is self._namespace:
                newargs = self._function_getnewargs(obj)
                state, slotstate = _cp._function_getstate(obj)
                # Restoring must not write the function's globals back into the namespace: they
                # are the user's variables, which may have changed since the entry was written.
                slotstate["__globals__"] = {}
                return (_cp._make_function, newargs, (state, slotstate), None, None, _set_function_state)
            return super().reducer_override(obj)
        if isinstance(obj, type):
            return super().reducer_override(obj)  # classes: cloudpickle's (by value when dynamic)
        # (The session's call, inlined: a type seen before costs one dict lookup.)
        reduce = self._reduce.known.get(t, _UNSEEN)
        if reduce is _UNSEEN:
            reduce = self._reduce.reducer_for(t)
        if reduce is not None:
            reduced = reduce(obj, self._reduce.memo)
            if reduced is not None:
                return reduced
        if t.__name__ == "ndarray" and t.__module__ == "numpy" and self._anchors:
            # A view of an array stored here or referred to by name stays a view of it (views.py).
            reduced = self._view_reduce(obj) if obj.base is not None else self._root_reduce(obj)
            if reduced is not None:
                return reduced
        return NotImplemented


def _array_over(buffer: Any, dtype: Any, shape: tuple[int, ...], order: Any) -> Any:
    import numpy as np

    if memoryview(buffer).readonly:
        buffer = bytearray(buffer)  # an in-band (small) buffer arrives as read-only bytes
    return np.ndarray(shape, dtype, buffer=buffer, order=order)


def _array_view(anchor: Any, dtype: Any, shape: tuple[int, ...], offset: int, strides: tuple[int, ...], layout: Any = None) -> Any:
    """The helper stored views name (see the end of this module): :func:`views.array_view`."""
    return array_view(anchor, dtype, shape, offset, strides, layout)


def _set_function_state(func: types.FunctionType, state: Any) -> None:
    """cloudpickle's ``_function_setstate`` minus the update of the (live) globals."""
    state, slotstate = state
    func.__dict__.update(state)
    slotstate.pop("__globals__", None)
    slotstate.pop("_cloudpickle_submodules", None)
    closure = slotstate.pop("__closure__")
    if closure is not None:
        for i, cell in enumerate(closure):
            try:
                func.__closure__[i].cell_contents = cell.cell_contents  # type: ignore[index]
            except ValueError:  # an empty cell
                continue
    for name, value in slotstate.items():
        setattr(func, name, value)


class _ValuesUnpickler(pickle.Unpickler):
    """Loads the header (names into the memo), then the values. ``legacy``: a pickle of values
    versions 1 and 2, without a header, whose references are persistent ids
    (``("namespace",)``, ``("name", name)``)."""

    def __init__(self, file: BinaryIO, namespace: Mapping[str, Any], buffers: Iterable[Any], *, legacy: bool = False):
        super().__init__(file, buffers=buffers)
        self._namespace = namespace
        self._legacy = legacy

    def persistent_load(self, pid: Any) -> Any:
        if self._legacy:
            if pid == ("namespace",):
                return self._namespace
            if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "name" and isinstance(pid[1], str):
                return self._lookup(pid[1])
        elif pid == _NAMESPACE:
            return self._namespace
        elif isinstance(pid, str):
            return self._lookup(pid)
        raise CorruptEntryError(f"unknown reference in entry: {pid!r}")

    def _lookup(self, name: str) -> Any:
        try:
            return self._namespace[name]
        except KeyError:
            raise CorruptEntryError(f"the entry refers to the variable {name!r}, which is no longer defined") from None


def dump_values(
    values: Mapping[str, Any], *, namespace: Mapping[str, Any], refs: Mapping[str, Any], spool: str | None = None
) -> Frames:
    """Pickle ``values`` (name -> object) into frames, the pickle spooled in ``spool`` (a folder;
    None: the system's temporary folder) once it outgrows memory. Close the frames when done.

    ``refs`` maps namespace names to the objects they held before the cell ran: those objects are
    stored as references to the names (resolved against the namespace on load). Raises
    :class:`UnpicklableError` naming the first value that cannot be pickled.
    """
    buffers: list[Any] = []
    out = Spool(spool)
    names, slots = _slots(namespace, refs)
    try:
        out.write(_header(names))
        pickler = _ValuesPickler(out, namespace, slots, buffers)
        stored = [v for v in values.values() if type(v).__name__ == "ndarray" and v.base is None]
        pickler._stored_arrays = {id(v) for v in stored}
        pickler._anchors = Anchors(stored, slots[1:])
        with _collector_paused():
            pickler.dump(dict(values))
    except OSError:
        out.close()
        raise  # the spool could not be written: a store problem, not the value's
    except Exception as exc:
        out.close()
        name, culprit = _find_unpicklable(values, namespace, slots)
        type_name = type(culprit).__qualname__
        raise UnpicklableError(
            f"variable {name!r} ({type_name}) cannot be pickled: {exc}", name=name, type_name=type_name
        ) from exc
    return Frames(out, buffers)


def _find_unpicklable(values: Mapping[str, Any], namespace: Mapping[str, Any], slots: list[Any]) -> tuple[str, Any]:
    for name, value in values.items():
        try:
            _ValuesPickler(io.BytesIO(), namespace, slots, []).dump(value)
        except Exception:
            return name, value
    return "<unknown>", None


# The helpers above are pickled by reference (module and name) into every entry that holds a
# view or a notebook function, so their names are part of the on-disk format: they keep the module
# name they had before the package moved under nbcache.run, and that name stays an alias of this
# module. Entries written before and after the move are byte-identical and restore both ways.
_PICKLED_MODULE = "nbcache.serialize"
for _helper in (_array_over, _array_view, _set_function_state):
    _helper.__module__ = _PICKLED_MODULE
sys.modules.setdefault(_PICKLED_MODULE, sys.modules[__name__])


def load_values(frames: Frames, *, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Unpickle frames written by :func:`dump_values` (values versions 1 to 3). Only call after
    the checksum verified."""
    stream = frames.pickle.reader() if isinstance(frames.pickle, Spool) else io.BytesIO(frames.pickle)
    legacy = frames.version < _HEADER_VERSION
    unpickler = _ValuesUnpickler(stream, namespace, frames.buffers, legacy=legacy)
    with _collector_paused():
        if not legacy and unpickler.load() is not None:  # the header: the referenced objects into the memo
            raise CorruptEntryError("values blob does not start with a references header")
        values = unpickler.load()
    if stream.read(1):
        raise CorruptEntryError("values blob has trailing bytes after its pickle")
    if not isinstance(values, dict):
        raise CorruptEntryError("values blob does not hold a mapping of names")
    return values
