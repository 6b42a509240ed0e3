"""PyTables: the HDF5 files opened with ``tables.open_file`` (``pd.read_hdf`` and ``HDFStore``
go through it; the HDF5 C library opens them).

Mode ``"r"`` (the default) reads the file; ``"w"`` replaces it whole; ``"a"`` and ``"r+"`` may
read and write it. Not seen: external links into other files.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..deps import note_read, note_write
from .wrap import argument, patch, paths

__all__ = ["install"]


def _opened(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    mode = argument(args, kwargs, 1, "mode") or "r"
    for path in paths(argument(args, kwargs, 0, "filename")):
        if mode == "r":
            note_read(path)
        else:
            note_write(path, reads=mode != "w")


def install(tables: ModuleType) -> None:
    """Wrap ``tables.open_file``."""
    patch(tables, "open_file", _opened)
