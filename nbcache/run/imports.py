"""A hit imports again what the run imported, so what importing did is done again.

``from preamble import *`` runs ``preamble.py``, which may set rcParams, numpy print options or
the inline backend's figure formats: a hit that only binds the names the cell bound would leave
none of that behind. The entry lists the modules the run loaded, in the order it loaded them;
a hit imports those not loaded now, in that order, before the values are unpickled (unpickling
imports modules too, in an order of its own). What an import prints is not shown again: the
cell's recorded outputs, replayed after, already hold it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from typing import Iterable

__all__ = ["reimport"]


def reimport(names: Iterable[str]) -> list[str]:
    """Import the modules of ``names`` not loaded now, in order; returns those that failed."""
    pending = [name for name in names if name not in sys.modules]
    if not pending:
        return []
    failed = []
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for name in pending:
            if name in sys.modules:  # imported by an earlier one
                continue
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a module that only imports as part of another, or no longer
                failed.append(name)
    return failed
