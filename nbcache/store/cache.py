"""Entries on top of a store: the :class:`Cache` that writes, finds, lists and removes them.

Layout inside a store (``STORE_FORMAT`` = 3; format-2 stores have the same layout)::

    nbcache-store.json          {"format": 3}: refuse to mix layouts
    .gitignore                  "*": a cache folder inside a repository stays out of git
    manifests/<key>.json        one per entry, signed, written last: the entry exists once it exists
                                (its blobs of up to 4 kB held in it too, for a hit to read one file)
    blobs/<id[:2]>/<id>         content-addressed (BLAKE3-256), stored as is
    blobs/<id[:2]>/<id>.zst     content-addressed, stored zstd-compressed
    checkpoints/<name>          signed checkpoints, see :mod:`nbcache.jupyter.checkpoints`
    index-<key>.sqlite          (local stores only) the index of one key, see :mod:`nbcache.store.index`

Each part has its module: manifests and their signatures in :mod:`~nbcache.store.manifest`, blobs
and their checksums in :mod:`~nbcache.store.blobs`, eviction and maintenance in
:mod:`~nbcache.store.upkeep`, a store that fails in :mod:`~nbcache.store.outage`.

**Atomicity.** Every ``put`` of a store is atomic, blobs are written before the manifest, and a
manifest is the only thing that makes an entry visible: a writer killed at any moment leaves no
visible partial entry, only orphan blobs (and, locally, temporary files) that :meth:`Cache.sweep`
collects. Two writers of the same key each write complete blobs and a complete manifest; the last
manifest wins and both are valid.

**The index** is bookkeeping: an error in it (sqlite, a full disk) never fails a cell, since the
index can be rebuilt from the manifests. A lookup never waits for it (a hit reads one manifest);
listings sync it incrementally first (see :mod:`~nbcache.store.sync`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence

from . import changes, later, signing, sync as syncing, upkeep
from .backends import BlobStore
from .blobs import Blobs
from .compression import Compression
from .frames import Frames
from .index import Index, IndexRow, born, index_file, remote_index_path
from .manifest import (
    FILES_FORMAT, INLINE_MAX, LAYOUT_FORMATS, STORE_FORMAT, BlobRef, Entry, blob_names, manifest_keys, manifest_name,
    package_versions, parse_manifest, sign_manifest,
)
from .outage import Outage
from .upkeep import Problem, Progress
from .usage import EntryStats, ListingRow, Totals
from ..errors import CorruptEntryError, StoreFormatError

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "STORE_FORMAT",
    "BlobRef",
    "Cache",
    "Entry",
    "EntryStats",
    "Problem",
    "Totals",
]

_FORMAT_FILE = "nbcache-store.json"
DEFAULT_SIZE_LIMIT = 10 * 1000**3


class Cache:
    """Reads and writes entries in a :class:`~nbcache.store.backends.BlobStore`.

    ``key`` signs and verifies manifests (default: :func:`nbcache.store.signing.load_key`);
    ``size_limit`` is enforced after every write by evicting the least recently used entries
    (``None``: no limit); ``compression`` is ``auto``, ``zstd`` or ``none``; ``index_path``
    places the SQLite index (default: in a local store's folder, else under ``~/.cache``).
    """

    def __init__(
        self,
        store: BlobStore,
        *,
        key: str | bytes | None = None,
        size_limit: int | None = DEFAULT_SIZE_LIMIT,
        compression: Compression = "auto",
        index_path: str | None = None,
    ):
        self.store = store
        self.size_limit = size_limit
        self.compression: Compression = compression
        self.outage = Outage(store.url)
        self.blobs = Blobs(store, self.outage, count_miss=self._count_miss)
        self._key = key
        self._secret: bytes | None = None
        self._index_path = index_path
        self._index: Index | None = None
        self._synced = False
        self._clock: float | None = None  # store_clock()
        self._checked = False

    # -- configuration ---------------------------------------------------------------------------
    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = signing.load_key(self._key)
        return self._secret

    @property
    def index(self) -> Index:
        if self._index is None:
            path = self._index_path
            if path is None:
                root = getattr(self.store, "root", None)
                signer = signing.fingerprint(self.secret)
                path = os.path.join(root, index_file(signer)) if isinstance(root, str) else remote_index_path(self.store.url, signer)
            self._index = Index(path)
        return self._index

    @property
    def remote(self) -> bool:
        """Whether the store is not on the local disk (each read is a request)."""
        return getattr(self.store, "local_path", None) is None

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    # -- layout --------------------------------------------------------------------------------
    def ensure_layout(self) -> None:
        """Create the layout files, or check that an existing store has our format."""
        if self._checked:
            return
        self.outage.guard("read")
        try:
            try:
                raw = self.store.get(_FORMAT_FILE)
            except FileNotFoundError:
                raw = None
        except OSError as exc:
            raise self.outage.fail("read", exc) from exc
        if raw is None:
            try:
                self.store.put(_FORMAT_FILE, [json.dumps({"format": STORE_FORMAT}).encode()])
                if not self.store.contains(".gitignore"):
                    self.store.put(".gitignore", [b"# written by nbcache: a cache is not source\n*\n"])
            except OSError as exc:
                # A read-only store without a format file is empty anyway: nothing to read.
                raise self.outage.fail("write", exc) from exc
        else:
            try:
                found = json.loads(raw).get("format")
            except ValueError:
                found = None
            if found not in LAYOUT_FORMATS:
                raise StoreFormatError(
                    f"the cache at {self.store.url} has format {found!r}; this nbcache uses {STORE_FORMAT}. "
                    "Point NBCACHE_DIR elsewhere or clear it."
                )
            # An older format's folder is kept as it is (its entries are misses, and an older
            # nbcache sharing the store still opens it); entries written here are format 3.
        self.outage.ok("read")
        self._checked = True

    manifest_name = staticmethod(manifest_name)  # where the store keeps the manifest of a key

    def read_manifest(self, key: str) -> Entry:
        """The entry ``key``, signature checked; FileNotFoundError when there is none."""
        return parse_manifest(self.store.get(manifest_name(key)), key, self.secret)

    def _safely(self, action: Callable[[], Any]) -> Any:
        """Index bookkeeping: never a reason for a cell to fail (the index can be rebuilt)."""
        try:
            return action()
        except Exception:  # noqa: BLE001 - sqlite errors, a full disk...
            return None

    def _count_miss(self, key: str) -> None:
        """A read of the entry ``key`` failed (damaged, badly signed); unlike :meth:`record_miss`
        the entry stays in the index, its manifest being still there."""
        self._safely(lambda: self.index.record_miss(key))

    # -- reading -------------------------------------------------------------------------------
    def lookup(self, key: str, *, count_miss: bool = True) -> Entry | None:
        """The entry for ``key``, None when there is none (counted as a miss unless
        ``count_miss`` is false: a probe for an optional variant). Raises CorruptEntryError (a bad
        signature is a :class:`SignatureError`) and StoreError."""
        self.ensure_layout()
        kept = self._kept_manifest(key)
        if kept is not None:
            return kept
        self.outage.guard("read")
        try:
            raw = self.store.get(manifest_name(key))
        except FileNotFoundError:
            self.outage.ok("read")
            if count_miss:
                self.record_miss(key)
            return None
        except OSError as exc:
            raise self.outage.fail("read", exc) from exc
        self.outage.ok("read")
        try:
            entry = parse_manifest(raw, key, self.secret)
        except CorruptEntryError:
            self._count_miss(key)
            raise
        self._safely(lambda: self._index_seen(entry, raw))
        return entry

    def _kept_manifest(self, key: str) -> Entry | None:
        """A remote store's entry from the manifest the index keeps, verified again (None: ask
        the store; a kept manifest that no longer verifies is dropped)."""
        if not self.remote:
            return None
        raw = self._safely(lambda: self.index.manifest(key))
        if raw is None:
            return None
        try:
            return parse_manifest(raw, key, self.secret)
        except CorruptEntryError:
            self._safely(lambda: self.index.remove([key]))
            return None

    def _index_seen(self, entry: Entry, raw: bytes) -> None:
        # A lookup is on the path of every cell: write to the index only when it lacks the entry
        # (or, for a remote store, its manifest: this lookup asked the store, the next need not).
        # A local store's: soon, with the other bookkeeping of hits (see Index.defer_hit).
        if not self.remote:
            now = time.time()
            self.index.defer_seen(entry.key, lambda synced: IndexRow.from_entry(entry, born=born(entry.created, now, synced)))
            return
        row = self.index.row(entry.key)
        if row is None:
            when = born(entry.created, time.time(), syncing.synced_at(self))
            self.index.upsert([IndexRow.from_entry(entry, manifest=raw if self.remote else None, born=when)])
        elif self.remote and row.manifest is None:
            self.index.upsert([dataclasses.replace(row, manifest=raw)])

    def record_miss(self, key: str) -> None:
        """A lookup of ``key`` found no entry (for callers that probed with ``count_miss=False``)."""

        def forget() -> None:
            self.index.remove([key])
            self.index.record_miss(key)

        self._safely(forget)

    def record_hit(self, entry: Entry, restore_time: float) -> None:
        """Count a restore of ``entry`` that took ``restore_time`` seconds."""
        saved = max(0.0, entry.runtime - restore_time)
        self._safely(lambda: self.index.defer_hit(entry.key, time.time(), restore_time, saved))

    def read_output_bytes(self, entry: Entry) -> bytes:
        """The entry's encoded outputs, checked against their id (see :mod:`nbcache.run.capture`)."""
        return self.blobs.read_bytes(entry.outputs, owner=entry.key, inline=entry.inline.get(entry.outputs.id))

    def remember_stamps(self, stamps: Iterable[tuple[str, int, int, str]]) -> None:
        """Files known to have these contents at these sizes and mtimes (see Index.file_stamp)."""
        self._safely(lambda: self.index.remember_stamps(stamps))

    def copy_blob(self, entry: Entry, ref: BlobRef, path: str) -> None:
        """Write the content of ``entry``'s blob ``ref`` to the new file ``path``, checked
        against its id as it goes (a damaged blob is removed and raises CorruptEntryError)."""
        if ref not in entry.blobs:
            raise CorruptEntryError(f"entry {entry.key[:12]} does not own blob {ref.id}")
        self.blobs.copy_to(ref, path, owner=entry.key)

    def read_frames(self, entry: Entry, repair: bool = True) -> Frames:
        """The entry's values blob, checked against its id before anything may unpickle it."""
        return self.blobs.read_frames(entry.values, owner=entry.key if repair else None, inline=entry.inline.get(entry.values.id))

    def entries(self, cell: str | None = None) -> Iterator[Entry]:
        """Every readable, correctly signed entry in the store (others are skipped); with
        ``cell``, only that cell's entries, found through the index (one read each)."""
        self.ensure_layout()
        if cell is not None:
            self.ensure_synced()
            keys = self.index.keys_of_cell(cell)
        else:
            keys = manifest_keys(self.store)
        for key in keys:
            try:
                yield self.read_manifest(key)
            except (CorruptEntryError, FileNotFoundError):
                continue

    # -- the index -----------------------------------------------------------------------------
    def sync(self, progress: Progress | None = None, *, full: bool = False) -> syncing.SyncReport:
        """Bring the index up to date with the manifests in the store: one listing, and a read of
        each manifest that is new or changed (see :mod:`~nbcache.store.sync`; ``full``: list
        even a folder whose stamp says nothing changed)."""
        self.ensure_layout()
        return syncing.sync(self, progress, full=full)

    def ensure_synced(self) -> None:
        """Sync the index with the store, once in the life of this object (for a remote store,
        unless the index was synced moments ago: see :mod:`~nbcache.store.sync`; the store is then
        not touched at all, so ``nbcache ls`` right after a sync needs no connection)."""
        if not self._synced:
            self.sync_if_stale()

    def sync_if_stale(self) -> None:
        """Sync, unless the store is remote and its index was synced less than
        ``REMOTE_SYNC_MAX_AGE`` seconds ago (by this process or another, which checked the
        store's format then)."""
        if self.remote and syncing.synced_within(self, syncing.REMOTE_SYNC_MAX_AGE):
            self._synced = True
            return
        self.sync()

    def stats(self) -> list[EntryStats]:
        """Every entry with its usage on this machine, oldest first."""
        self.ensure_synced()
        return self.index.stats()

    def listing(self, sync: bool | Literal["if stale"] = False, key: str | None = None) -> list[ListingRow]:
        """Every entry for the JupyterLab panel, newest first, from the index (``sync`` first
        picks up what other kernels and machines wrote: one listing of the store; ``"if stale"``
        only when :meth:`sync_if_stale` would). With ``key``, that entry only (if indexed)."""
        if sync == "if stale":
            self.sync_if_stale()
        elif sync:
            self.sync()
        return [
            ListingRow(k, label, cell, source, size, runtime, created, tuple(json.loads(names)), hits, restore)
            for k, label, cell, source, size, runtime, created, names, hits, restore in self.index.listing(key)
        ]

    def totals(self) -> Totals:
        self.ensure_synced()
        hits, misses, saved = self.index.usage_totals()
        return Totals(
            entries=self.index.count(),
            size=self.index.stored_bytes(),
            size_limit=self.size_limit,
            hits=hits,
            misses=misses,
            time_saved=saved,
        )

    def resolve(self, prefix: str) -> list[str]:
        """Keys that start with ``prefix`` (a whole key, or enough of one)."""
        self.ensure_synced()
        return self.index.match(prefix)

    # -- writing -------------------------------------------------------------------------------
    def put_blob(self, chunks: Sequence[Any] | Callable[[], Iterable[Any]], size: int | None = None) -> BlobRef:
        """Store the concatenation of ``chunks`` as a content-addressed blob: a list of bytes-like
        objects, or a function that returns a new pass over them, with ``size`` their total (see
        :meth:`Blobs.put`)."""
        return self.blobs.put(chunks, self.compression, size)

    def write(self, fields: Mapping[str, Any], frames: Frames, outputs: bytes, files: Sequence[BlobRef] = ()) -> Entry:
        """Write blobs, then the manifest. ``fields`` are the Entry fields other than blobs;
        ``files`` the blobs of the files the run wrote, already put (:meth:`put_blob`)."""
        self.ensure_layout()
        self.outage.guard("write")
        fields = dict(fields)
        fields.setdefault("packages", package_versions())
        try:
            # Blobs of up to INLINE_MAX bytes are held in the manifest too, so a hit reads one file.
            values = b"".join(bytes(chunk) for chunk in frames.chunks()) if frames.size <= INLINE_MAX else None
            values_ref, compress_later = self.blobs.put_values(
                frames.chunks if values is None else lambda: [values], self.compression, frames.size
            )
            outputs_ref = self.put_blob([outputs])
            held = [(values_ref, values), (outputs_ref, outputs if len(outputs) <= INLINE_MAX else None)]
            more: dict[str, Any] = {"blobs": tuple(files), "format": FILES_FORMAT} if files else {}
            more["inline"] = {ref.id: base64.b64encode(content).decode() for ref, content in held if content is not None}
            entry = Entry(values=values_ref, outputs=outputs_ref, **fields, **more)
            manifest = sign_manifest(entry, self.secret)
            self.store.put(manifest_name(entry.key), [manifest])
        except OSError as exc:
            raise self.outage.fail("write", exc) from exc
        self.outage.ok("write")
        self.log_change("put", [entry.key], manifest)
        # last_used is max(created, last restore): the write itself counts as a use.
        written = born(entry.created, time.time(), None)  # our clock wrote ``created``: at most now
        self._safely(
            lambda: self.index.upsert([IndexRow.from_entry(entry, manifest=manifest if self.remote else None, born=written)])
        )
        if compress_later:
            name = values_ref.name
            self.blobs.compress_later(values_ref, lambda stored: self._safely(lambda: self.index.set_stored(name, stored)))
        self.enforce_limit(keep=entry.key)
        return entry

    def delete(self, key: str) -> None:
        """Remove an entry, and the blobs no other entry uses."""
        row = self.index.row(key)
        names: list[str] = []
        if row is not None:
            names = [row.values_blob, row.outputs_blob, *(name for name, _ in row.blobs)]
        else:
            try:
                names = blob_names(self.store.get(manifest_name(key)))
            except FileNotFoundError:
                pass
        self.store.delete(manifest_name(key))
        self.log_change("del", [key])
        self.index.remove([key])
        self.drop_unused(names)

    def log_change(self, op: str, keys: Sequence[str], manifest: bytes | None = None) -> None:
        """Tell other machines' syncs that manifests were put or removed (a remote store's change
        log: :mod:`~nbcache.store.changes`). A record that cannot be written costs nothing but
        time: those machines see the change at their next full listing."""
        if self.remote:
            try:
                changes.record(self.store, op, keys, manifest, offset=self.store_clock())
            except Exception:  # noqa: BLE001 - the manifest itself was written or removed
                pass

    def store_clock(self) -> float:
        """Seconds the store's clock is ahead of this machine's (:func:`changes.measure_offset`),
        measured once a day and kept in the index."""
        if self._clock is not None:
            return self._clock
        now = time.time()
        try:
            offset, measured = (float(part) for part in (self.index.meta("store_clock") or "").split())
            if 0 <= now - measured < changes.CLOCK_MAX_AGE:
                self._clock = offset
                return offset
        except Exception:  # noqa: BLE001 - none yet, or an unreadable index
            pass
        try:
            self._clock = changes.measure_offset(self.store)
        except Exception:  # noqa: BLE001 - a store this machine may not write to: take the clocks as one
            self._clock = 0.0
            return self._clock
        self._safely(lambda: self.index.set_meta("store_clock", f"{self._clock!r} {now!r}"))
        return self._clock

    def drop_unused(self, names: Iterable[str]) -> None:
        """Delete the blobs among ``names`` that no indexed entry names, in either of the forms a
        blob may have (compressed later or not: see :mod:`nbcache.store.later`)."""
        for blob in set(names):
            other = later.other_name(blob)
            if self.index.blob_users(blob) == 0 and self.index.blob_users(other) == 0:
                self.store.delete(blob)
                self.store.delete(other)

    # -- upkeep: functions of a Cache, offered as its methods ---------------------------------
    clear = upkeep.clear
    clear_foreign = upkeep.clear_foreign
    enforce_limit = upkeep.enforce_limit
    sweep = upkeep.sweep
    verify = upkeep.verify
