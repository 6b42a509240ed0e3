"""polars: the files its readers, scanners, writers and sinks are handed (Rust opens them).

Wrapped: every module-level ``polars.read_*`` and ``polars.scan_*`` whose first parameter is a
path (``source``; ``read_database``'s query is SQL text), every ``DataFrame.write_*`` and
``LazyFrame.sink_*`` whose first parameter is one (``file``, ``path``, ``target``,
``workbook``). The functions are found by name and signature, so those of a newer polars are
wrapped too.

Not seen: ``read_clipboard``, ``read_database_uri`` (a URI, the database is elsewhere),
``write_database`` and ``sink_batches``; cloud URLs; and a lazy scan collected in a later cell
(the path is noted in the cell that made the ``LazyFrame``).
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

from .wrap import patch, reads, sql, writes

__all__ = ["install"]

_PATHS = frozenset({"source", "file", "path", "target", "workbook"})


def _first(function: Any, method: bool) -> str | None:
    try:
        names = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return None
    names = names[1:] if method else names
    return names[0] if names and names[0] in _PATHS else None


def install(pl: ModuleType) -> None:
    """Wrap polars' readers and scanners, and the writers of its frames."""
    for name in dir(pl):
        if name.startswith(("read_", "scan_")) and name != "read_database_uri":
            if name == "read_database":
                patch(pl, name, sql(0, "query"))
            elif (param := _first(getattr(pl, name), method=False)) is not None:
                patch(pl, name, reads(0, param))
    for cls, prefix in ((pl.DataFrame, "write_"), (pl.LazyFrame, "sink_")):
        for name in [n for n in vars(cls) if n.startswith(prefix)]:
            if (param := _first(vars(cls)[name], method=True)) is not None:
                patch(cls, name, writes(1, param))
