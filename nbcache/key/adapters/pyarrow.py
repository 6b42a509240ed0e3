"""pyarrow: the files its readers and writers are handed by path (C++ opens them).

Wrapped per submodule, each when it is imported: ``pyarrow.parquet`` (``read_table``,
``ParquetFile``, ``ParquetDataset``, ``write_table``, ``write_to_dataset``, ``ParquetWriter``),
``pyarrow.dataset`` (``dataset``, ``write_dataset``), ``pyarrow.feather``, ``pyarrow.orc``,
``pyarrow.csv`` and ``pyarrow.json`` (readers and writers), ``pyarrow.ipc`` (``open_file``,
``open_stream``, ``new_file``, ``new_stream`` given a path), and ``pyarrow`` itself
(``OSFile``, ``memory_map``, ``input_stream``, ``output_stream``: pandas' ``to_parquet`` opens
its file with ``pa.OSFile``). ``pyarrow.OSFile`` becomes a subclass that notes its path; it
passes ``isinstance`` and ``issubclass`` checks both ways with ``pyarrow.lib.OSFile``.

Not seen: files opened through a ``pyarrow.fs`` filesystem object (a path given with
``filesystem=`` is not noted), the files a dataset discovers
inside a folder it was given (the folder is noted, which covers them), and ``CSVWriter`` (a
Cython class, whose ``__init__`` cannot be replaced; ``pyarrow.csv.write_csv`` is wrapped).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..deps import note_read, note_write
from .wrap import MARK, Note, argument, patch, patch_init, paths, reads, writes

__all__ = ["install"]


def _opened(position: int, *names: str, default: str = "r") -> Note:
    """A file opened with a mode: 'r' reads, 'a' and '+' write what they read, others write."""

    def note(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mode = argument(args, kwargs, position + 1, "mode") or default
        for path in paths(argument(args, kwargs, position, *names)):
            if mode in ("r", "rb"):
                note_read(path)
            else:
                note_write(path, reads="a" in mode or "+" in mode)

    return note


def _osfile(lib: Any) -> type:
    class _Same(type):
        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, lib.OSFile)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, lib.OSFile)

    note = _opened(0, "path")

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        try:
            note(args, kwargs)
        except Exception:  # noqa: BLE001
            pass
        return lib.OSFile.__new__(cls, *args, **kwargs)

    body = {"__new__": __new__, "__module__": "pyarrow", "__qualname__": "OSFile", "__doc__": lib.OSFile.__doc__, MARK: True}
    return _Same("OSFile", (lib.OSFile,), body)


def _local(note: Note) -> Note:
    """``note``, unless a ``filesystem`` object is given: the path is then no local path."""

    def local(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if kwargs.get("filesystem") is None:
            note(args, kwargs)

    return local


def _core(pa: ModuleType) -> None:
    if not getattr(pa.OSFile, MARK, False):
        setattr(pa, "OSFile", _osfile(pa.lib))
    patch(pa, "memory_map", _opened(0, "path"))
    patch(pa, "input_stream", reads(0, "source"))
    patch(pa, "output_stream", writes(0, "source"))


def _parquet(pq: ModuleType) -> None:
    patch(pq, "read_table", _local(reads(0, "source")))
    patch_init(pq.ParquetFile, _local(reads(1, "source")))
    patch_init(pq.ParquetDataset, _local(reads(1, "path_or_paths")))
    patch(pq, "write_table", _local(writes(1, "where")))
    patch(pq, "write_to_dataset", _local(writes(1, "root_path")))
    patch_init(pq.ParquetWriter, _local(writes(1, "where")))


def _orc(orc: ModuleType) -> None:
    patch(orc, "read_table", _local(reads(0, "source")))
    patch_init(orc.ORCFile, _local(reads(1, "source")))
    patch(orc, "write_table", _local(writes(1, "where")))
    patch_init(orc.ORCWriter, _local(writes(1, "where")))


_SUBMODULES = {
    "pyarrow": _core,
    "pyarrow.parquet": _parquet,
    "pyarrow.orc": _orc,
    "pyarrow.dataset": lambda m: (patch(m, "dataset", _local(reads(0, "source"))), patch(m, "write_dataset", _local(writes(1, "base_dir")))),
    "pyarrow.feather": lambda m: (patch(m, ("read_table", "read_feather"), reads(0, "source")), patch(m, "write_feather", writes(1, "dest"))),
    "pyarrow.csv": lambda m: (patch(m, ("read_csv", "open_csv"), reads(0, "input_file")), patch(m, "write_csv", writes(1, "output_file"))),
    "pyarrow.json": lambda m: patch(m, ("read_json", "open_json"), reads(0, "input_file")),
    "pyarrow.ipc": lambda m: (patch(m, ("open_file", "open_stream"), reads(0, "source")), patch(m, ("new_file", "new_stream"), writes(0, "sink"))),
}


def install(module: ModuleType) -> None:
    """Wrap the entry points of ``module`` (``pyarrow`` or one of its submodules)."""
    _SUBMODULES[module.__name__](module)
