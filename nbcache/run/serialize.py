"""Values to bytes and back: what a cell bound, in one pickle, with large buffers out of band.

All of a cell's values go into *one* pickle, so objects they share stay shared after a restore
(``a = b = []`` gives ``a is b`` again). Three things make a restored namespace behave like the
one the cell left behind:

- **References to what was already there.** An object that existed in the namespace before the
  cell ran (``view = base``; an instance whose class was defined two cells up) is written as a
  reference to that name, and resolved against the live namespace on load, so identity
  (``view is base``, ``isinstance(p, P)``) survives. The key guarantees that those names hold the
  same values on a hit as when the entry was written.
- **Functions see the live namespace.** A function defined in the notebook is pickled by value
  (cloudpickle), but re-created with the live namespace as its globals, so it sees later changes
  to the globals it uses, exactly like the function the cell defined.
- **Buffers out of band.** Pickle protocol 5 hands large buffers (numpy arrays, pandas blocks,
  Arrow data; torch tensors and polars frames through :mod:`.reducers`) to nbcache instead of
  copying them into the pickle. They are written straight to the file and
  read back with ``readinto`` into the memory the arrays will use: no extra copy either way.

The frames (pickle + buffers) are laid out by :mod:`nbcache.store.frames`.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from typing import Any, BinaryIO, Iterable, Mapping

import cloudpickle
from cloudpickle import cloudpickle as _cp

from ..errors import CorruptEntryError, UnpicklableError
from ..store.frames import Frames
from .reducers import REDUCERS
from .views import Anchors, array_view

__all__ = ["dump_values", "load_values"]


class _NamespaceRef:
    """Persistent id for an object found under a name in the namespace before the cell ran."""


class _ValuesPickler(cloudpickle.Pickler):
    def __init__(self, file: BinaryIO, namespace: Mapping[str, Any], refs: Mapping[int, str], buffers: list[Any]):
        super().__init__(file, protocol=5, buffer_callback=self._take_buffer)
        self._namespace = namespace
        self._refs = refs
        self._buffers = buffers
        self._stored_arrays: set[int] = set()
        self._anchors = Anchors((), ())
        # Libraries' objects written out of band (torch tensors, polars frames) and live objects
        # (widgets, figures): see .reducers.
        self._reduce = REDUCERS.session()
        # Functions whose globals are the namespace get the namespace itself as their globals
        # (a persistent reference), not cloudpickle's copy of the few globals they use.
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

    def persistent_id(self, obj: Any) -> Any:
        if obj is self._namespace:
            return ("namespace",)
        name = self._refs.get(id(obj))
        if name is not None:
            return ("name", name)
        return None

    def reducer_override(self, obj: Any) -> Any:
        reduced = self._reduce(obj)
        if reduced is not None:
            return reduced
        if type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray" and self._anchors:
            # A view of an array stored here or referred to by name stays a view of it (views.py).
            reduced = self._view_reduce(obj) if obj.base is not None else self._root_reduce(obj)
            if reduced is not None:
                return reduced
        if isinstance(obj, types.FunctionType) and obj.__globals__ is self._namespace:
            newargs = self._function_getnewargs(obj)
            state, slotstate = _cp._function_getstate(obj)
            # Restoring must not write the function's globals back into the namespace: they are
            # the user's variables, which may have changed since the entry was written.
            slotstate["__globals__"] = {}
            return (_cp._make_function, newargs, (state, slotstate), None, None, _set_function_state)
        return super().reducer_override(obj)


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
    def __init__(self, file: BinaryIO, namespace: Mapping[str, Any], buffers: Iterable[Any]):
        super().__init__(file, buffers=buffers)
        self._namespace = namespace

    def persistent_load(self, pid: Any) -> Any:
        if pid == ("namespace",):
            return self._namespace
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "name":
            try:
                return self._namespace[pid[1]]
            except KeyError:
                raise CorruptEntryError(
                    f"the entry refers to the variable {pid[1]!r}, which is no longer defined"
                ) from None
        raise CorruptEntryError(f"unknown reference in entry: {pid!r}")


def dump_values(values: Mapping[str, Any], *, namespace: Mapping[str, Any], refs: Mapping[int, str]) -> Frames:
    """Pickle ``values`` (name -> object) into frames.

    ``refs`` maps ``id(obj)`` to a namespace name for objects to store as references; the caller
    keeps those objects alive while this runs. Raises :class:`UnpicklableError` naming the first
    value that cannot be pickled.
    """
    buffers: list[Any] = []
    out = io.BytesIO()
    try:
        pickler = _ValuesPickler(out, namespace, refs, buffers)
        stored = [v for v in values.values() if type(v).__name__ == "ndarray" and v.base is None]
        pickler._stored_arrays = {id(v) for v in stored}
        pickler._anchors = Anchors(stored, (namespace[n] for n in set(refs.values()) if n in namespace))
        pickler.dump(dict(values))
    except Exception as exc:
        name, culprit = _find_unpicklable(values, namespace, refs)
        type_name = type(culprit).__qualname__
        raise UnpicklableError(
            f"variable {name!r} ({type_name}) cannot be pickled: {exc}", name=name, type_name=type_name
        ) from exc
    return Frames(out.getbuffer(), buffers)


def _find_unpicklable(values: Mapping[str, Any], namespace: Mapping[str, Any], refs: Mapping[int, str]) -> tuple[str, Any]:
    for name, value in values.items():
        try:
            _ValuesPickler(io.BytesIO(), namespace, refs, []).dump(value)
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
    """Unpickle frames written by :func:`dump_values`. Only call after the checksum verified."""
    stream = io.BytesIO(frames.pickle)
    values = _ValuesUnpickler(stream, namespace, frames.buffers).load()
    if not isinstance(values, dict):
        raise CorruptEntryError("values blob does not hold a mapping of names")
    return values
