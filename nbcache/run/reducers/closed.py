"""Closed files: ``with open(path) as fh:`` leaves ``fh`` bound to a closed file, which pickle
refuses. A closed file can do nothing but say what it was, so it is stored as its class, name and
mode, and restored as a closed file of the same class with the same ``name`` and ``mode`` (opened
on the null device, then closed). An open file still cannot be stored: the cell runs uncached.

The same for what a cell closes after reading a database or an HDF5 file (``con.close()``,
``with h5py.File(...) as f:``): a closed ``sqlite3.Connection`` comes back as a closed connection
(any use raises ``ProgrammingError`` as before), a closed ``h5py.File`` as a closed file.
"""

from __future__ import annotations

import io
import os
from typing import Any

from . import REDUCERS

__all__: list[str] = []  # reducers registered with REDUCERS; nothing to import from here

_CLASSES: dict[type, str] = {io.TextIOWrapper: "t", io.BufferedReader: "b", io.BufferedWriter: "b", io.BufferedRandom: "b", io.FileIO: "raw"}


def _reduce(fh: Any, memo: dict[Any, Any]) -> Any:
    if not fh.closed:
        return None  # pickle's own refusal, with its message
    try:
        name = fh.name
    except Exception:  # noqa: BLE001 - a wrapper of something without a name
        return None
    mode = getattr(fh, "mode", "r")
    return _closed_file, (_CLASSES[type(fh)], name if isinstance(name, (str, bytes, int)) else str(name), str(mode))


def _closed_file(kind: str, name: Any, mode: str) -> Any:
    binary = "" if kind == "t" else "b"
    writes = any(c in mode for c in "wax+")
    opened: Any = open(os.devnull, ("r+" if "+" in mode else "w" if writes else "r") + binary, buffering=0 if kind == "raw" else -1)
    raw = opened if kind == "raw" else opened.buffer.raw if kind == "t" else opened.raw
    raw.name = name
    if kind == "t":
        opened.mode = mode
    opened.close()
    return opened


for _cls in _CLASSES:
    REDUCERS.register(_cls, _reduce)


# -- closed connections and HDF5 files, asked only once their library is imported -----------------
def _reduce_connection(con: Any, memo: dict[Any, Any]) -> Any:
    import sqlite3

    try:
        con.total_changes
    except sqlite3.ProgrammingError:  # closed: it can only say so
        return _closed_connection, ()
    return None  # an open connection: pickle's own refusal


def _closed_connection() -> Any:
    import sqlite3

    con = sqlite3.connect(":memory:")
    con.close()
    return con


def _reduce_h5py_file(f: Any, memo: dict[Any, Any]) -> Any:
    if bool(f):
        return None  # open: pickle's (h5py's) own refusal
    return _closed_h5py_file, ()


def _closed_h5py_file() -> Any:
    import uuid

    import h5py

    f = h5py.File(f"nbcache-closed-{uuid.uuid4().hex}", "w", driver="core", backing_store=False)
    f.close()
    return f


REDUCERS.register_base("sqlite3", "Connection", _reduce_connection)
REDUCERS.register_base("h5py", "File", _reduce_h5py_file)
