"""numpy views in stored values: stored as views of an array they look into, when that array
is itself stored or was already in the namespace.

numpy pickles a view as a copy of its data, so ``x2_sub = x2[:2, :2]`` restored by a hit would no
longer share memory with ``x2``, and a later ``x2_sub[0, 0] = 99`` would not reach ``x2`` as it
does in a plain run. An *anchor* of a view is an array the entry stores, or refers to by name (an
input, which the key guarantees to hold the same values on a hit), that shares the view's memory
(the same owner at the end of their ``base`` chains: numpy points a view of a view at the owner,
so ``x2_sub.base`` is the array ``x2`` itself views) and whose bytes contain the view's. The view
is stored as the anchor plus dtype, shape, byte offset and strides, and rebuilt over the anchor's
memory. An anchor referred to by name must be laid out in memory as it was (shape, strides,
dtype) for the offset to mean the same: when it is not, the entry cannot be restored (a miss that
says so), never a view into the wrong bytes.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..errors import CorruptEntryError

__all__ = ["Anchors", "array_view"]


def _is_ndarray(obj: Any) -> bool:
    return type(obj).__name__ == "ndarray" and type(obj).__module__ == "numpy"


def _owner(array: Any) -> Any:
    while _is_ndarray(array.base):
        array = array.base
    return array


def _bounds(array: Any) -> tuple[int, int]:
    from numpy.lib.array_utils import byte_bounds

    low, high = byte_bounds(array)
    return int(low), int(high)


class Anchors:
    """The arrays views may be stored over: the entry's own (first), then those it refers to."""

    def __init__(self, stored: Iterable[Any], referenced: Iterable[Any]):
        self._candidates = [(a, False) for a in stored if _is_ndarray(a)]
        self._candidates += [(a, True) for a in referenced if _is_ndarray(a)]

    def __bool__(self) -> bool:
        return bool(self._candidates)

    def view_args(self, view: Any) -> tuple[Any, ...] | None:
        """The arguments of :func:`array_view` that rebuild ``view`` over an anchor, or None
        (numpy's pickle: a copy). The layout is there only for an anchor referred to by name, so a
        view of a stored array pickles as it did before anchors referred to by name existed."""
        owner = _owner(view)
        low, high = _bounds(view)
        for anchor, referenced in self._candidates:
            if anchor is view or _owner(anchor) is not owner:
                continue
            a_low, a_high = _bounds(anchor)
            if not (a_low <= low and high <= a_high):
                continue
            offset = view.__array_interface__["data"][0] - anchor.__array_interface__["data"][0]
            args = (anchor, view.dtype, view.shape, offset, view.strides)
            return args + ((anchor.shape, anchor.strides, anchor.dtype.str),) if referenced else args
        return None


def array_view(anchor: Any, dtype: Any, shape: tuple[int, ...], offset: int, strides: tuple[int, ...], layout: Any = None) -> Any:
    import numpy as np

    if layout is not None and (anchor.shape, anchor.strides, anchor.dtype.str) != (tuple(layout[0]), tuple(layout[1]), layout[2]):
        raise CorruptEntryError(
            "a stored numpy view cannot be restored as a view: the array it looks into is laid out "
            f"differently now (shape {anchor.shape}, strides {anchor.strides}, not {layout[0]}, {layout[1]})"
        )
    if offset >= 0 and (anchor.flags.c_contiguous or anchor.flags.f_contiguous):
        return np.ndarray(shape, dtype, buffer=anchor, offset=offset, strides=strides)
    # An anchor that exposes no buffer (not contiguous): address its memory directly. The layout
    # check above guarantees the view lies within it, as it did when stored.
    start = anchor.__array_interface__["data"][0] + offset
    interface = {"data": (start, not anchor.flags.writeable), "shape": shape, "typestr": dtype.str, "strides": strides, "version": 3}
    if dtype.fields is not None:
        interface["descr"] = dtype.descr
    return np.asarray(_Memory(interface, anchor))


class _Memory:
    """Exposes a window of an array's memory to numpy, keeping the array alive."""

    def __init__(self, interface: dict[str, Any], owner: Any):
        self.__array_interface__ = interface
        self.base = owner
