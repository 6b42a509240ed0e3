"""duckdb: SQL text, the files its readers and writers are handed, and database files.

Wrapped, at module level and as methods of ``DuckDBPyConnection`` (duckdb 2 sets Python
functions on that nanobind class, and lets any attribute be set): ``sql``, ``query``,
``from_query``, ``execute``, ``executemany`` (the paths quoted in the SQL text: ``COPY t TO
'out.parquet'``, ``from 'data/*.csv'``), ``read_csv``, ``from_csv_auto``, ``read_json``,
``read_parquet``, ``from_parquet``; ``duckdb.write_csv``; ``DuckDBPyRelation.write_csv``,
``to_csv``, ``write_parquet``, ``to_parquet``; and ``duckdb.connect``: a database file is read and
written (only read with ``read_only=True``), ``:memory:`` is nothing.

Not seen: paths built inside SQL (``'data/' || name``), tables ``ATTACH``-ed by a name that is not
quoted, prepared statements' parameters, and the default connection's ``.duckdb`` settings.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from ..deps import note_read, note_write
from .wrap import Note, argument, patch, paths, reads, sql, writes

__all__ = ["install"]


def _database(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for path in paths(argument(args, kwargs, 0, "database")):
        if os.fsdecode(path).startswith(":memory:"):
            continue
        if argument(args, kwargs, 1, "read_only"):
            note_read(path)
        else:
            note_write(path, reads=True)


def _entries(shift: int) -> list[tuple[tuple[str, ...], Note]]:
    return [
        (("sql", "query", "from_query", "execute", "executemany"), sql(shift, "query")),
        (("read_csv", "from_csv_auto", "read_json", "read_parquet", "from_parquet"), reads(shift, "path_or_buffer")),
    ]


def install(duckdb: ModuleType) -> None:
    """Wrap duckdb's functions and its connections' and relations' methods."""
    for names, note in _entries(0):
        patch(duckdb, names, note)
    patch(duckdb, "write_csv", writes(1, "filename"))
    patch(duckdb, "connect", _database)
    for names, note in _entries(1):
        patch(duckdb.DuckDBPyConnection, names, note)
    patch(duckdb.DuckDBPyRelation, ("write_csv", "to_csv", "write_parquet", "to_parquet"), writes(1, "file_name"))
