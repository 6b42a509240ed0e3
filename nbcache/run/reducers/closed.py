"""Closed files: ``with open(path) as fh:`` leaves ``fh`` bound to a closed file, which pickle
refuses. A closed file can do nothing but say what it was, so it is stored as its class, name and
mode, and restored as a closed file of the same class with the same ``name`` and ``mode`` (opened
on the null device, then closed). An open file still cannot be stored: the cell runs uncached.
"""

from __future__ import annotations

import io
import os
from typing import Any

from . import REDUCERS

__all__: list[str] = []  # reducers registered with REDUCERS; nothing to import from here

_CLASSES = {io.TextIOWrapper: "t", io.BufferedReader: "b", io.BufferedWriter: "b", io.BufferedRandom: "b", io.FileIO: "raw"}


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
