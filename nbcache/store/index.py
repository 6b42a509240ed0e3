"""The local index: an SQLite database (WAL mode) of the store's entries and their usage.

The manifests in the store are the truth; the index is a local copy of what they say, so that
listing, statistics and eviction do not read thousands of manifests, plus the usage counters
(hits, misses, last use, restore time) that only this machine sees. It is rebuilt from the
manifests whenever it is missing, and :meth:`Cache.sync` reconciles it with the store.

It also keeps the verdicts of the "does this cache pay?" rule (:mod:`nbcache.run.pays`): keys
whose entry restored no faster than the cell runs, so the next run just runs. Restore times are
this machine's, so the verdicts are too.

A store on the local disk keeps it at ``<root>/index.sqlite``; a remote store keeps it under
``$XDG_CACHE_HOME/nbcache/<hash of the url>/`` (``~/.cache`` by default). When the database
cannot be opened or written (a read-only folder, a full disk) nbcache carries on with an index
in memory: the index is never a reason for a cell to fail.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import xxhash

__all__ = ["INDEX_FILE", "EntryStats", "Index", "IndexRow", "Verdict", "remote_index_path"]

INDEX_FILE = "index.sqlite"
# Bump when the tables change: an index of another version is dropped and rebuilt.
# 2: the verdicts table.
INDEX_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    label TEXT,
    cell TEXT NOT NULL,
    source TEXT NOT NULL,
    size INTEGER NOT NULL,
    stored INTEGER NOT NULL,
    values_blob TEXT NOT NULL,
    values_stored INTEGER NOT NULL,
    outputs_blob TEXT NOT NULL,
    outputs_stored INTEGER NOT NULL,
    created REAL NOT NULL,
    runtime REAL NOT NULL,
    format INTEGER NOT NULL,
    python TEXT NOT NULL,
    packages TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_label ON entries(label);
CREATE TABLE IF NOT EXISTS usage (
    key TEXT PRIMARY KEY,
    hits INTEGER NOT NULL DEFAULT 0,
    misses INTEGER NOT NULL DEFAULT 0,
    last_used REAL,
    restore_time REAL NOT NULL DEFAULT 0,
    time_saved REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    label TEXT,
    cell TEXT NOT NULL,
    runtime REAL NOT NULL,
    restore_time REAL NOT NULL,
    decided REAL NOT NULL,
    told INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class IndexRow:
    """What the index keeps of one manifest."""

    key: str
    label: str | None
    cell: str
    source: str
    size: int
    """Bytes of content (values and outputs, uncompressed)."""
    stored: int
    """Bytes the entry's blobs take in the store."""
    values_blob: str
    values_stored: int
    outputs_blob: str
    outputs_stored: int
    created: float
    runtime: float
    format: int
    python: str
    packages: Mapping[str, str]


@dataclass(frozen=True)
class EntryStats:
    """One entry as the CLI and the dashboard show it."""

    key: str
    label: str | None
    cell: str
    size: int
    """Bytes the entry takes in the store."""
    hits: int
    misses: int
    runtime: float
    """Seconds the cell took when it ran."""
    restore_time: float
    """Seconds the last restore took (0 when never restored here)."""
    created: float
    last_used: float
    """When it was last written or restored (on this machine)."""


@dataclass(frozen=True)
class Verdict:
    """A key whose entry was not kept: its first restore was not clearly faster than its run."""

    key: str
    label: str | None
    cell: str
    runtime: float
    """Seconds the cell took when it ran."""
    restore_time: float
    """Seconds its first restore took."""
    decided: float
    told: bool
    """Whether the user was told that the cell now runs without being stored."""


def remote_index_path(url: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nbcache", xxhash.xxh3_64_hexdigest(url.encode()), INDEX_FILE)


class Index:
    def __init__(self, path: str | None):
        self.path = path
        self.fresh = False
        """True when the database was just created (it must be rebuilt from the manifests)."""
        self.error: str | None = None
        """Why the index lives in memory, when it does."""
        self._lock = threading.Lock()
        self._db = self._connect(path)

    def _connect(self, path: str | None) -> sqlite3.Connection:
        if path is not None:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                existed = os.path.exists(path)
                db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                # WAL with NORMAL sync: a crash may lose the last counters, never corrupt the file;
                # and the index can always be rebuilt from the manifests anyway.
                db.execute("PRAGMA synchronous=NORMAL")
                self._init(db)
                self.fresh = not existed or self.fresh
                return db
            except (sqlite3.Error, OSError) as exc:
                self.error = str(exc)
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._init(db)
        self.fresh = True
        return db

    def _init(self, db: sqlite3.Connection) -> None:
        version = None
        try:
            row = db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
            version = row[0] if row else None
        except sqlite3.Error:
            pass
        if version is not None and version != str(INDEX_VERSION):
            db.executescript(
                "DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS usage; DROP TABLE IF EXISTS verdicts; "
                "DROP TABLE IF EXISTS meta;"
            )
            self.fresh = True
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (str(INDEX_VERSION),))

    def close(self) -> None:
        self._db.close()

    # -- writing ---------------------------------------------------------------------------------
    def _write(self, sql: str, params: Iterable[Any] = ()) -> None:
        with self._lock:
            self._db.execute(sql, tuple(params))

    def upsert(self, rows: Iterable[IndexRow]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        (
                            r.key, r.label, r.cell, r.source, r.size, r.stored, r.values_blob, r.values_stored,
                            r.outputs_blob, r.outputs_stored, r.created, r.runtime, r.format, r.python,
                            json.dumps(dict(r.packages), sort_keys=True),
                        )
                        for r in rows
                    ),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def remove(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM entries WHERE key = ?", ((k,) for k in keys))

    def record_hit(self, key: str, now: float, restore_time: float, saved: float) -> None:
        self._write(
            "INSERT INTO usage (key, hits, last_used, restore_time, time_saved) VALUES (?, 1, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET hits = hits + 1, last_used = excluded.last_used, "
            "restore_time = excluded.restore_time, time_saved = time_saved + excluded.time_saved",
            (key, now, restore_time, saved),
        )

    def record_miss(self, key: str) -> None:
        self._write(
            "INSERT INTO usage (key, misses) VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET misses = misses + 1",
            (key,),
        )

    def record_verdict(self, verdict: Verdict) -> None:
        self._write(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (verdict.key, verdict.label, verdict.cell, verdict.runtime, verdict.restore_time, verdict.decided, int(verdict.told)),
        )

    def mark_told(self, key: str) -> None:
        self._write("UPDATE verdicts SET told = 1 WHERE key = ?", (key,))

    def forget_verdicts(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM verdicts WHERE key = ?", ((k,) for k in keys))

    # -- reading ---------------------------------------------------------------------------------
    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def keys(self) -> set[str]:
        return {k for (k,) in self._read("SELECT key FROM entries")}

    def row(self, key: str) -> IndexRow | None:
        rows = self._read("SELECT * FROM entries WHERE key = ?", (key,))
        return _row(rows[0]) if rows else None

    def match(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return [k for (k,) in self._read("SELECT key FROM entries WHERE key LIKE ? ESCAPE '\\'", (escaped + "%",))]

    _STATS = (
        "SELECT e.key, e.label, e.cell, e.stored, COALESCE(u.hits, 0), COALESCE(u.misses, 0), e.runtime, "
        "COALESCE(u.restore_time, 0), e.created, MAX(e.created, COALESCE(u.last_used, 0)) "
        "FROM entries e LEFT JOIN usage u ON u.key = e.key"
    )

    def stats(self, order: str = "e.created") -> list[EntryStats]:
        return [EntryStats(*r) for r in self._read(f"{self._STATS} ORDER BY {order}")]

    def lru(self) -> list[EntryStats]:
        """Entries, least recently used first."""
        return self.stats(order="MAX(e.created, COALESCE(u.last_used, 0)), e.key")

    def stored_bytes(self) -> int:
        """Bytes the indexed entries take, counting blobs they share once."""
        (total,) = self._read(
            "SELECT COALESCE(SUM(n), 0) FROM (SELECT values_blob AS b, values_stored AS n FROM entries "
            "UNION SELECT outputs_blob, outputs_stored FROM entries)"
        )[0]
        return int(total)

    def stored_upper_bound(self) -> int:
        """Bytes the entries take if they shared no blob (quick: no de-duplication)."""
        (total,) = self._read("SELECT COALESCE(SUM(stored), 0) FROM entries")[0]
        return int(total)

    def restored_since(self, key: str, since: float) -> bool:
        """Whether ``key`` was restored here at ``since`` or later (its entry's creation: whether
        a hit is the entry's first)."""
        rows = self._read("SELECT last_used FROM usage WHERE key = ? AND last_used >= ?", (key, since))
        return bool(rows)

    def verdict(self, key: str) -> Verdict | None:
        rows = self._read("SELECT * FROM verdicts WHERE key = ?", (key,))
        return _verdict(rows[0]) if rows else None

    def verdicts(self) -> list[Verdict]:
        return [_verdict(r) for r in self._read("SELECT * FROM verdicts ORDER BY decided")]

    def usage_of(self, key: str) -> tuple[int, int]:
        """Hits and misses of ``key`` on this machine."""
        rows = self._read("SELECT hits, misses FROM usage WHERE key = ?", (key,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def usage_totals(self) -> tuple[int, int, float]:
        hits, misses, saved = self._read(
            "SELECT COALESCE(SUM(hits), 0), COALESCE(SUM(misses), 0), COALESCE(SUM(time_saved), 0) FROM usage"
        )[0]
        return int(hits), int(misses), float(saved)

    def blob_users(self, blob: str) -> int:
        (count,) = self._read(
            "SELECT COUNT(*) FROM entries WHERE values_blob = ? OR outputs_blob = ?", (blob, blob)
        )[0]
        return int(count)


def _verdict(r: Any) -> Verdict:
    key, label, cell, runtime, restore_time, decided, told = r
    return Verdict(key, label, cell, float(runtime), float(restore_time), float(decided), bool(told))


def _row(r: Any) -> IndexRow:
    values = list(r)
    values[-1] = json.loads(values[-1])
    return IndexRow(*values)
