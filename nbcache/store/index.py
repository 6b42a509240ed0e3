"""The local index: an SQLite database (WAL mode) of the store's entries and their usage.

The manifests in the store are the truth; the index is a local copy of what they say, so that
listing, statistics and eviction do not read thousands of manifests, plus the usage counters
(hits, misses, last use, restore time) that only this machine sees. It is rebuilt from the
manifests whenever it is missing, and :meth:`Cache.sync` reconciles it with the store.

A store on the local disk keeps it at ``<root>/index-<key>.sqlite``; a remote store keeps it under
``$XDG_CACHE_HOME/nbcache/<hash of the url>/`` (``~/.cache`` by default). ``<key>`` is a
fingerprint of the signing key (:func:`nbcache.store.signing.fingerprint`, which reveals
nothing of the key): people who share a folder with different keys each keep their own index, so
an entry one of them wrote is never listed as usable by another.

What a hit writes (its counter, and the entry itself when the index lacks it) waits in memory
and goes in one transaction with the others (:meth:`Index.defer_hit`): a hit is on the path of
every cell of a Restart & Run All, where one write each would cost more than the rest of the
hit. It is written before anything in this process reads or writes the same database, at most
``DEFER_SECONDS`` later (another process, ``nbcache ls`` say, sees it then), at ``DEFER_COUNT``
pending hits, on :meth:`Index.close` and at exit. A crash may lose
those last counters, as WAL's NORMAL sync may; the entries are in the manifests anyway.

It also keeps the verdicts of the "does this cache pay?" rule (:mod:`nbcache.run.pays`): keys
whose entry restored no faster than the cell runs, so the next run just runs. Restore times are
this machine's, so the verdicts are too.

When the database
cannot be opened or written (a read-only folder, a full disk) nbcache carries on with an index
in memory: the index is never a reason for a cell to fail.
"""

from __future__ import annotations

import atexit
import json
import os
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import xxhash

from .usage import EntryStats

if TYPE_CHECKING:
    from .manifest import Entry

__all__ = [
    "SHARED_COLUMNS", "EntryStats", "ForeignRow", "Index", "IndexRow", "Verdict", "born", "index_file", "remote_index_path",
]

# Bump when the tables change: an index of another version is dropped and rebuilt.
# 2: entries.names, entries.stamp (incremental sync) and entries.manifest (lookups of a remote
#    store answered here), entries.born (ages on this machine's clock), the foreign table,
#    meta.synced_at.
# 3: the verdicts table.
# 4: entries.blobs (the blobs of the files a run wrote), the file_stamps table.
INDEX_VERSION = 4

# Deferred bookkeeping (see the module's docstring).
DEFER_COUNT = 64
DEFER_SECONDS = 0.05
_deferring: weakref.WeakSet[Index] = weakref.WeakSet()
_deferring_lock = threading.Lock()


def _deferred() -> list[Index]:
    with _deferring_lock:
        return list(_deferring)

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
    packages TEXT NOT NULL,
    names TEXT NOT NULL DEFAULT '[]',
    stamp TEXT NOT NULL DEFAULT '',
    manifest BLOB,
    born REAL,
    blobs TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS entries_label ON entries(label);
CREATE INDEX IF NOT EXISTS entries_cell ON entries(cell);
CREATE INDEX IF NOT EXISTS entries_values_blob ON entries(values_blob);
CREATE INDEX IF NOT EXISTS entries_outputs_blob ON entries(outputs_blob);
CREATE TABLE IF NOT EXISTS foreign_entries (
    key TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    label TEXT,
    cell TEXT NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    blobs TEXT NOT NULL,
    stamp TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    key TEXT PRIMARY KEY,
    hits INTEGER NOT NULL DEFAULT 0,
    misses INTEGER NOT NULL DEFAULT 0,
    last_used REAL,
    restore_time REAL NOT NULL DEFAULT 0,
    time_saved REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS file_stamps (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL
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
    names: tuple[str, ...] = ()
    """The variables the entry restores (the frontend's entry list shows them)."""
    stamp: str = ""
    """The manifest's stamp in the store's listing when the row was read from it ("" when the
    row came from a write or a lookup here: the next sync adopts the listed stamp unread)."""
    manifest: bytes | None = None
    """The signed manifest itself, kept for remote stores: a lookup verifies it again and needs
    no request (None for local stores, where reading the manifest costs less than a query)."""
    born: float | None = None
    """When the entry came to be, on *this* machine's clock (None: ``created``): ages, LRU and
    ``--older-than`` use it, so that a writer whose clock is off cannot make an entry look
    newer or older than it is. See :func:`born`."""
    blobs: tuple[tuple[str, int], ...] = ()
    """``(name, stored bytes)`` of the entry's other blobs: the files its run wrote."""

    @classmethod
    def from_entry(
        cls, entry: Entry, stamp: str = "", manifest: bytes | None = None, born: float | None = None
    ) -> IndexRow:
        return cls(
            key=entry.key,
            label=entry.label,
            cell=entry.cell,
            source=entry.source,
            size=entry.size,
            stored=entry.stored,
            values_blob=entry.values.name,
            values_stored=entry.values.stored_size,
            outputs_blob=entry.outputs.name,
            outputs_stored=entry.outputs.stored_size,
            created=entry.created,
            runtime=entry.runtime,
            format=entry.format,
            python=entry.python,
            packages=dict(entry.packages),
            names=tuple(entry.names),
            stamp=stamp,
            manifest=manifest,
            born=born,
            blobs=tuple((b.name, b.stored_size) for b in entry.blobs),
        )


def born(created: float, seen: float, previous_sync: float | None) -> float:
    """When an entry whose writer says ``created`` came to be, on this machine's clock.

    It was not in the store at the ``previous_sync`` (None: this machine never looked) and it is
    at ``seen``: it came to be in between, whatever the writer's clock says. A writer a day ahead
    would otherwise make its entries the most recently used for a day (never evicted, never
    cleared by ``--older-than``); a day behind, the oldest (evicted first, cleared too soon).
    """
    low = float("-inf") if previous_sync is None else previous_sync
    return min(max(created, low), seen)


@dataclass(frozen=True)
class ForeignRow:
    """A manifest this cache cannot use: signed with another key, of another store format, or
    unreadable. What it claims (label, cell, size, blobs) is unverified: for listing and
    clearing only."""

    key: str
    reason: str
    label: str | None
    cell: str
    created: float
    size: int
    blobs: tuple[str, ...]
    stamp: str


def index_file(key_fingerprint: str) -> str:
    """The index's file name for the signing key with ``key_fingerprint``."""
    return f"index-{key_fingerprint}.sqlite"


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


def remote_index_path(url: str, key_fingerprint: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nbcache", xxhash.xxh3_64_hexdigest(url.encode()), index_file(key_fingerprint))


class Index:
    def __init__(self, path: str | None):
        self.path = path
        self.fresh = False
        """True when the database was just created (it must be rebuilt from the manifests)."""
        self.error: str | None = None
        """Why the index lives in memory, when it does."""
        self._lock = threading.Lock()
        self._db = self._connect(path)
        self._hits: list[tuple[str, float, float, float]] = []
        self._seen: dict[str, Callable[[float | None], IndexRow]] = {}
        self._verdict_keys: set[str] | None = None
        """Keys with a verdict, read once: a lookup of any other key asks the database nothing."""

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
                "DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS usage; DROP TABLE IF EXISTS meta; "
                "DROP TABLE IF EXISTS foreign_entries; DROP TABLE IF EXISTS verdicts; DROP TABLE IF EXISTS file_stamps;"
            )
            self.fresh = True
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (str(INDEX_VERSION),))

    def close(self) -> None:
        self.flush()
        self._db.close()

    # -- deferred bookkeeping ----------------------------------------------------------------------
    def defer_hit(self, key: str, now: float, restore_time: float, saved: float) -> None:
        """Count a hit of ``key`` soon (see the module's docstring)."""
        with self._lock:
            self._hits.append((key, now, restore_time, saved))
            pending = len(self._hits) + len(self._seen)
        self._schedule(pending)

    def defer_seen(self, key: str, row: Callable[[float | None], IndexRow]) -> None:
        """Add the entry ``key`` soon, unless the index has it by then: ``row(synced_at)`` makes
        its row, given when the index was last synced (see :func:`born`)."""
        with self._lock:
            self._seen[key] = row
            pending = len(self._hits) + len(self._seen)
        self._schedule(pending)

    def _schedule(self, pending: int) -> None:
        if pending >= DEFER_COUNT:
            self.flush()
        else:
            _flusher.wake(self)

    def flush(self) -> None:
        """Write what waits, in one transaction (a failure drops it: counters only)."""
        with self._lock:
            self._flush_locked()

    def _settle(self) -> None:
        """What other Index objects of this process defer for the same database, written first."""
        if self.path is None:
            return
        for other in _deferred():
            if other is not self and other.path == self.path and (other._hits or other._seen):
                other.flush()

    def _flush_locked(self) -> None:
        hits, seen = self._hits, self._seen
        if not hits and not seen:
            return
        self._hits, self._seen = [], {}
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(_HIT, hits)
                keys = list(seen)
                known = {k for (k,) in db.execute(f"SELECT key FROM entries WHERE key IN ({', '.join('?' * len(keys))})", keys)} if keys else set()
                missing = [k for k in keys if k not in known]
                synced = db.execute("SELECT value FROM meta WHERE name = 'synced_at'").fetchall() if missing else []
                rows = [seen[k](float(synced[0][0]) if synced else None) for k in missing]
                if rows:
                    db.executemany(_UPSERT, (_params(r) for r in rows))
                    db.executemany("DELETE FROM foreign_entries WHERE key = ?", ((r.key,) for r in rows))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except Exception:  # noqa: BLE001 - bookkeeping: the index can be rebuilt
            pass

    # -- writing ---------------------------------------------------------------------------------
    def _write(self, sql: str, params: Iterable[Any] = ()) -> None:
        self._settle()
        with self._lock:
            self._flush_locked()
            self._db.execute(sql, tuple(params))

    def _many(self, sql: str, params: Iterable[tuple[Any, ...]]) -> None:
        self._settle()
        with self._lock:
            self._flush_locked()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def upsert(self, rows: Iterable[IndexRow]) -> None:
        """Add or replace entries (a key that was foreign is no longer)."""
        rows = list(rows)
        self._many(_UPSERT, (_params(r) for r in rows))
        self._many("DELETE FROM foreign_entries WHERE key = ?", ((r.key,) for r in rows))

    def upsert_foreign(self, rows: Iterable[ForeignRow]) -> None:
        """Add or replace manifests this cache cannot use (a key that was an entry is no longer)."""
        rows = list(rows)
        self._many(
            "INSERT OR REPLACE INTO foreign_entries VALUES (?,?,?,?,?,?,?,?)",
            (
                (r.key, r.reason, r.label, r.cell, r.created, r.size, json.dumps(list(r.blobs)), r.stamp)
                for r in rows
            ),
        )
        self._many("DELETE FROM entries WHERE key = ?", ((r.key,) for r in rows))

    def export_shared(self) -> list[tuple[Any, ...]]:
        """Every stamped entry's :data:`SHARED_COLUMNS`, as stored (JSON columns as text)."""
        return self._read(f"SELECT {', '.join(SHARED_COLUMNS)} FROM entries WHERE stamp != ''")

    def import_shared(self, columns: Iterable[str], rows: Iterable[Sequence[Any]], born: float) -> int:
        """Add rows exported by :meth:`export_shared` (perhaps on another machine) whose keys
        the index lacks; ``born`` bounds their ``born`` from above. Returns how many."""
        columns = tuple(columns)
        if not set(columns) <= set(_COLUMNS) or "key" not in columns or "created" not in columns:
            raise ValueError("a snapshot of the index with unknown columns")
        created = columns.index("created")
        batch = [(*row, min(float(row[created]), born)) for row in rows]
        before = self.count()
        self._many(
            f"INSERT OR IGNORE INTO entries ({', '.join(columns)}, born) VALUES ({', '.join('?' * (len(columns) + 1))})",
            batch,
        )
        return self.count() - before

    def adopt_stamps(self, stamps: Mapping[str, str]) -> None:
        """Record the listed stamps of entries indexed without one (see :attr:`IndexRow.stamp`)."""
        self._many("UPDATE entries SET stamp = ? WHERE key = ? AND stamp = ''", ((v, k) for k, v in stamps.items()))

    def set_stored(self, values_blob: str, stored: int) -> None:
        """The values blob ``values_blob`` now takes ``stored`` bytes (it was compressed later)."""
        # (The right-hand sides read the row as it was.)
        self._write(
            "UPDATE entries SET stored = stored - values_stored + ?, values_stored = ? WHERE values_blob = ?",
            (stored, stored, values_blob),
        )

    def remove(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self._settle()
        with self._lock:
            self._flush_locked()
            self._db.executemany("DELETE FROM entries WHERE key = ?", ((k,) for k in keys))
            self._db.executemany("DELETE FROM foreign_entries WHERE key = ?", ((k,) for k in keys))

    def record_hit(self, key: str, now: float, restore_time: float, saved: float) -> None:
        self._write(_HIT, (key, now, restore_time, saved))

    def record_miss(self, key: str) -> None:
        self._write(
            "INSERT INTO usage (key, misses) VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET misses = misses + 1",
            (key,),
        )

    def record_verdict(self, verdict: Verdict) -> None:
        if self._verdict_keys is not None:
            self._verdict_keys.add(verdict.key)
        self._write(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (verdict.key, verdict.label, verdict.cell, verdict.runtime, verdict.restore_time, verdict.decided, int(verdict.told)),
        )

    def mark_told(self, key: str) -> None:
        self._write("UPDATE verdicts SET told = 1 WHERE key = ?", (key,))

    def forget_verdicts(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if self._verdict_keys is not None:
            self._verdict_keys.difference_update(keys)
        self._many("DELETE FROM verdicts WHERE key = ?", ((k,) for k in keys))

    # -- reading ---------------------------------------------------------------------------------
    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        self._settle()
        with self._lock:
            self._flush_locked()
            return self._db.execute(sql, tuple(params)).fetchall()

    def keys(self) -> set[str]:
        return {k for (k,) in self._read("SELECT key FROM entries")}

    def manifest(self, key: str) -> bytes | None:
        """The signed manifest of ``key`` kept here, if any (see :attr:`IndexRow.manifest`)."""
        rows = self._read("SELECT manifest FROM entries WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def meta(self, name: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def keys_of_cell(self, cell: str) -> list[str]:
        return [k for (k,) in self._read("SELECT key FROM entries WHERE cell = ? ORDER BY created", (cell,))]

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM entries")[0][0])

    def stamps(self) -> dict[str, str]:
        """The stamp of every manifest the index knows, usable or foreign."""
        found = dict(self._read("SELECT key, stamp FROM foreign_entries"))
        found.update(self._read("SELECT key, stamp FROM entries"))
        return found

    def row(self, key: str) -> IndexRow | None:
        rows = self._read(f"SELECT {', '.join(_COLUMNS)} FROM entries WHERE key = ?", (key,))
        return _row(rows[0]) if rows else None

    def foreign(self) -> list[ForeignRow]:
        """Manifests this cache cannot use, oldest first."""
        return [
            ForeignRow(key, reason, label, cell, created, size, tuple(json.loads(blobs)), stamp)
            for key, reason, label, cell, created, size, blobs, stamp in self._read(
                "SELECT key, reason, label, cell, created, size, blobs, stamp FROM foreign_entries ORDER BY created"
            )
        ]

    def listing(self, key: str | None = None) -> list[tuple[Any, ...]]:
        """What the frontend's entry list shows, newest first, in one query: key, label, cell,
        source, size, runtime, created, names (JSON), hits, restore_time (None until a hit).
        With ``key``, that entry's row only."""
        where, params = ("WHERE e.key = ? ", (key,)) if key is not None else ("", ())
        return self._read(
            "SELECT e.key, e.label, e.cell, e.source, e.size, e.runtime, e.created, e.names, "
            "COALESCE(u.hits, 0), CASE WHEN u.hits > 0 THEN NULLIF(u.restore_time, 0) END "
            f"FROM entries e LEFT JOIN usage u ON u.key = e.key {where}ORDER BY e.created DESC",
            params,
        )

    def match(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return [k for (k,) in self._read("SELECT key FROM entries WHERE key LIKE ? ESCAPE '\\'", (escaped + "%",))]

    # usage.restore_time is 0 until the first hit (a miss creates the row); EntryStats says None.
    _STATS = (
        "SELECT e.key, e.label, e.cell, e.stored, COALESCE(u.hits, 0), COALESCE(u.misses, 0), e.runtime, "
        "CASE WHEN u.hits > 0 THEN NULLIF(u.restore_time, 0) END, e.created, "
        "MAX(COALESCE(e.born, e.created), COALESCE(u.last_used, 0)) "
        "FROM entries e LEFT JOIN usage u ON u.key = e.key"
    )

    def stats(self, order: str = "e.created") -> list[EntryStats]:
        return [EntryStats(*r) for r in self._read(f"{self._STATS} ORDER BY {order}")]

    def lru(self) -> list[EntryStats]:
        """Entries, least recently used first."""
        return self.stats(order="MAX(COALESCE(e.born, e.created), COALESCE(u.last_used, 0)), e.key")

    def stored_bytes(self) -> int:
        """Bytes the indexed entries take, counting blobs they share once."""
        (total,) = self._read(
            "SELECT COALESCE(SUM(n), 0) FROM (SELECT values_blob AS b, values_stored AS n FROM entries "
            "UNION SELECT outputs_blob, outputs_stored FROM entries "
            "UNION SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') FROM entries, json_each(entries.blobs) j)"
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
        """The verdict on ``key``. The keys that have one are read once: a verdict another
        process records later is not seen here (that entry is only stored and judged again)."""
        if self._verdict_keys is None:
            self._verdict_keys = {k for (k,) in self._read("SELECT key FROM verdicts")}
        if key not in self._verdict_keys:
            return None
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

    def blobs_of_entries(self) -> list[tuple[str, str, str]]:
        """Every entry's key, values blob and outputs blob."""
        return [(str(k), str(v), str(o)) for k, v, o in self._read("SELECT key, values_blob, outputs_blob FROM entries")]

    def other_blobs(self, key: str) -> list[str]:
        """The names of ``key``'s other blobs (the files its run wrote)."""
        rows = self._read("SELECT blobs FROM entries WHERE key = ?", (key,))
        return [str(name) for name, _ in json.loads(rows[0][0])] if rows else []

    def file_stamp(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The content digest ``path`` had when it last had this size and mtime here (written by a
        run or a restore), or None."""
        rows = self._read("SELECT digest FROM file_stamps WHERE path = ? AND size = ? AND mtime_ns = ?", (path, size, mtime_ns))
        return str(rows[0][0]) if rows else None

    def remember_stamps(self, stamps: Iterable[tuple[str, int, int, str]]) -> None:
        self._many("INSERT OR REPLACE INTO file_stamps VALUES (?, ?, ?, ?)", list(stamps))

    def health(self) -> str:
        """SQLite's quick check of the database: "ok", or what is wrong."""
        try:
            return str(self._read("PRAGMA quick_check")[0][0])
        except sqlite3.Error as exc:
            return str(exc)

    def blob_users(self, blob: str) -> int:
        """How many entries, usable or foreign, name ``blob``."""
        (count,) = self._read(
            "SELECT COUNT(*) FROM entries WHERE values_blob = ? OR outputs_blob = ?", (blob, blob)
        )[0]
        (files,) = self._read(
            "SELECT COUNT(*) FROM entries, json_each(entries.blobs) j WHERE json_extract(j.value, '$[0]') = ?", (blob,)
        )[0]
        count += files
        (foreign,) = self._read(
            "SELECT COUNT(*) FROM foreign_entries, json_each(foreign_entries.blobs) WHERE json_each.value = ?", (blob,)
        )[0]
        return int(count) + int(foreign)


# Columns of ``entries`` by name, in IndexRow's order: a column added later is one field more.
_COLUMNS = tuple(f.name for f in fields(IndexRow))
_UPSERT = f"INSERT OR REPLACE INTO entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_HIT = (
    "INSERT INTO usage (key, hits, last_used, restore_time, time_saved) VALUES (?, 1, ?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET hits = hits + 1, last_used = excluded.last_used, "
    "restore_time = excluded.restore_time, time_saved = time_saved + excluded.time_saved"
)


class _Flusher:
    """One thread per process writes what indexes deferred, ``DEFER_SECONDS`` after the first
    of it (waking it costs a hit nothing; starting a thread for each batch cost more than the
    writes it saved)."""

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def wake(self, index: Index) -> None:
        with _deferring_lock:
            _deferring.add(index)
        if self._wanted.is_set():
            return
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="nbcache-index", daemon=True)
                    self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            time.sleep(DEFER_SECONDS)
            self._wanted.clear()
            try:
                flush_all()
            except Exception:  # noqa: BLE001 - the thread must live on: the next batch comes
                pass


_flusher = _Flusher()


@atexit.register
def flush_all() -> None:
    """Write what every index of this process deferred."""
    for index in _deferred():
        try:
            index.flush()
        except Exception:  # noqa: BLE001 - a closed database: nothing to write to
            pass


def _forked() -> None:
    """In a forked child, the parent's deferred bookkeeping is the parent's to write (else it
    would count twice), and its locks and thread are not the child's."""
    global _deferring_lock, _flusher
    _deferring_lock = threading.Lock()
    for index in list(_deferring):
        index._hits, index._seen, index._lock = [], {}, threading.Lock()
    _deferring.clear()
    _flusher = _Flusher()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _pairs(value: Any) -> tuple[tuple[str, int], ...]:
    return tuple((str(name), int(size)) for name, size in value)


_JSON_COLUMNS: dict[str, Callable[[Any], Any]] = {"packages": dict, "names": tuple, "blobs": _pairs}


_ENCODERS = tuple(
    (lambda v: json.dumps([list(p) for p in v])) if name == "blobs" else
    (lambda v: json.dumps(list(v))) if name == "names" else (lambda v: json.dumps(dict(v), sort_keys=True))
    if name in _JSON_COLUMNS else None
    for name in _COLUMNS
)
# Columns a snapshot of the index carries (see nbcache.store.catalog): what every machine may
# share, not what is this machine's own (the kept manifest, the local clock's ``born``).
SHARED_COLUMNS = tuple(name for name in _COLUMNS if name not in ("manifest", "born"))


def _params(r: IndexRow) -> tuple[Any, ...]:
    values = _values(r)
    return tuple(v if encode is None else encode(v) for v, encode in zip(values, _ENCODERS))


def _values(r: IndexRow) -> tuple[Any, ...]:
    return tuple(getattr(r, name) for name in _COLUMNS)


def _verdict(r: Any) -> Verdict:
    key, label, cell, runtime, restore_time, decided, told = r
    return Verdict(key, label, cell, float(runtime), float(restore_time), float(decided), bool(told))


def _row(r: Any) -> IndexRow:
    values = {name: r[i] for i, name in enumerate(_COLUMNS)}
    for name, kind in _JSON_COLUMNS.items():
        values[name] = kind(json.loads(values[name]))
    return IndexRow(**values)
