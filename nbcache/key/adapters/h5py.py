"""h5py: the HDF5 files opened with ``h5py.File`` (the HDF5 C library opens them).

``h5py.File(name, mode)`` with mode ``"r"`` (the default) reads ``name``; any other mode may read
and write it. Not seen: files given as file objects (Python's ``open`` is seen anyway), external
links and virtual datasets pointing into other files, and ``h5py.h5f`` low-level calls.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..deps import note_read, note_write
from .wrap import argument, patch_init, paths

__all__ = ["install"]


def _opened(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    mode = argument(args, kwargs, 2, "mode") or "r"
    for path in paths(argument(args, kwargs, 1, "name")):
        if mode == "r":
            note_read(path)
        else:
            note_write(path, reads=True)


def install(h5py: ModuleType) -> None:
    """Wrap ``h5py.File.__init__``."""
    patch_init(h5py.File, _opened)
