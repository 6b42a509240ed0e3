"""Syncing the local index with the store: one listing, then only the manifests that changed.

A store's listing of ``manifests/`` gives each manifest a *stamp* (its size and modification time,
or the server's tag) at no extra cost. The index keeps the stamp of every manifest it read, so a
sync reads only the manifests that are new or whose stamp changed, forgets those that are gone,
and records those this cache cannot use (signed with another key, of an older store format,
unreadable) as *foreign*, so that they are listed (``nbcache ls --all``), cleared
(``clear --foreign``) and not read again. A row indexed by a write or a lookup on this machine
has no stamp yet: the next sync adopts the listed one without reading the manifest (the row came
from those very bytes, or from a later write of the same key, which holds the same inputs).

A local store's folder of manifests has a stamp of its own (inode and modification time, which
every manifest written, replaced or removed changes): when it is what the last sync saw, the
sync is over without a listing. A machine whose index was never synced first loads the store's snapshot of the index, when
there is one (:mod:`~nbcache.store.catalog`): one read instead of one per manifest. Lookups never sync: a hit reads its one manifest, whatever the size of the store (for a remote
store the index keeps the signed manifests it saw, so a hit there needs no request for it; the
signature is checked again each time). Listings, statistics and eviction sync first, once in the
life of a :class:`Cache`; for a remote store, whose listing costs a request per 1,000 entries,
not when any process synced that index less than ``REMOTE_SYNC_MAX_AGE`` seconds ago (the
dashboard's Refresh button, the panel's refresh and the CLI's maintenance commands always sync).

A remote index that had a full listing less than ``FULL_MAX_AGE`` ago syncs from the store's
change log instead (:mod:`~nbcache.store.changes`): the records of the hours since its previous
sync, a request or two whatever the size of the store. A remote index never synced starts from
the store's snapshot and the log since the snapshot's listing, when the snapshot is recent enough.
``full`` (``nbcache doctor``, ``gc``, ``clear --all``) lists every manifest.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..errors import CorruptEntryError, OutdatedEntryError, SignatureError
from . import catalog
from . import changes as change_log
from .changes import Change
from .index import ForeignRow, IndexRow, born
from .manifest import manifest_name, parse_manifest, peek

if TYPE_CHECKING:
    from .backends import BlobStore
    from .cache import Cache

__all__ = ["REMOTE_SYNC_MAX_AGE", "SyncReport", "manifest_stamps", "read_row", "sync", "synced_at", "synced_within"]

REMOTE_SYNC_MAX_AGE = 60.0

# Manifests read at once from a remote store (each is a request).
_REMOTE_READERS = 16


@dataclass(frozen=True)
class SyncReport:
    listed: int
    """Manifests in the store's listing (-1: not listed, the folder being unchanged)."""
    read: int
    """Manifests read (new or changed since the last sync)."""
    removed: int
    foreign: int
    """Manifests, among those read, that this cache cannot use."""
    from_snapshot: int = 0
    """Rows a fresh index took from the store's snapshot (see :mod:`~nbcache.store.catalog`)."""
    changes: int = -1
    """Records of the store's change log read instead of a listing (-1: not read; see
    :mod:`~nbcache.store.changes`)."""


def manifest_stamps(store: BlobStore) -> dict[str, str]:
    """Every manifest's key and stamp, from one listing."""
    found = {}
    for name, stamp in store.list_stamps("manifests"):
        rest = name[len("manifests/") :]
        if name.startswith("manifests/") and rest.endswith(".json") and "/" not in rest:
            found[rest[: -len(".json")]] = stamp
    return found


def read_row(
    store: BlobStore, secret: bytes, key: str, stamp: str, *, keep: bool = False, seen: float | None = None,
    previous_sync: float | None = None,
) -> IndexRow | ForeignRow | None:
    """The index's row for the manifest ``key`` (None when it is gone meanwhile); ``keep`` keeps
    the signed manifest in the row (remote stores); ``seen`` and ``previous_sync`` bound when it
    came to be on this machine's clock (:func:`~nbcache.store.index.born`)."""
    try:
        raw = store.get(manifest_name(key))
    except FileNotFoundError:
        return None
    try:
        entry = parse_manifest(raw, key, secret)
        when = born(entry.created, time.time() if seen is None else seen, previous_sync)
        return IndexRow.from_entry(entry, stamp, raw if keep else None, when)
    except SignatureError:
        reason = "signed with another key"
    except OutdatedEntryError:
        claims = peek(raw)
        reason = f"store format {claims['format'] if claims else '?'}"
    except CorruptEntryError:
        reason = "unreadable"
    claims = peek(raw) or {"label": None, "cell": "", "created": 0.0, "size": 0, "blobs": []}
    return ForeignRow(
        key, reason, claims["label"], claims["cell"], claims["created"], claims["size"], tuple(claims["blobs"]), stamp
    )


def sync(cache: Cache, progress: Callable[[int, int], None] | None = None, *, full: bool = False) -> SyncReport:
    """Bring the index of ``cache`` up to date with the manifests in its store (``full``: list
    them even when the folder's stamp says nothing changed)."""
    index = cache.index
    started = time.time()
    previous = synced_at(cache)
    folder = cache.store.folder_stamp("manifests")
    if not full and folder is not None and previous is not None and folder == cache._safely(lambda: index.meta("manifests_folder")):
        # Nothing was added, replaced or removed in manifests/ since the last sync: no listing.
        cache._synced = True
        return SyncReport(listed=-1, read=0, removed=0, foreign=0)
    if cache.remote and not full and previous is not None and _log_covers(cache, started):
        return _sync_from_log(cache, previous, started, progress)
    from_snapshot = 0
    snapshot_first = cache.remote and not full and previous is None
    if snapshot_first:
        # Never synced: the store's snapshot of the index, then the change log since its listing.
        from_snapshot, listed = cache._safely(lambda: catalog.load_listed(cache, born=started)) or (0, None)
        offset = cache.store_clock() if listed is not None else 0.0
        if listed is not None and 0 <= started + offset - listed < change_log.FULL_MAX_AGE:
            since = listed - offset  # on this machine's clock
            cache._safely(lambda: index.set_meta("listed_at", repr(since)))
            return dataclasses.replace(_sync_from_log(cache, since, started, progress), from_snapshot=from_snapshot)
    listing = manifest_stamps(cache.store)
    if previous is None and not snapshot_first and len(listing) >= catalog.MIN_READS:
        # Never synced: start from the store's snapshot of the index, if one verifies.
        from_snapshot = cache._safely(lambda: catalog.load(cache, born=started)) or 0
    known = index.stamps()
    gone = known.keys() - listing.keys()
    if gone:
        cache._safely(lambda: index.remove(gone))
    unstamped = {key: listing[key] for key, stamp in known.items() if _unlisted(stamp) and key in listing}
    if unstamped:
        cache._safely(lambda: index.adopt_stamps(unstamped))
    todo = sorted(key for key, stamp in listing.items() if not _unlisted(known.get(key, stamp)) and known.get(key) != stamp)
    rows, foreign = _read_rows(cache, todo, listing, started, previous, progress)
    cache._safely(lambda: index.upsert(rows))
    cache._safely(lambda: index.upsert_foreign(foreign))
    cache._safely(lambda: index.set_meta("synced_at", repr(started)))
    cache._safely(lambda: index.set_meta("manifests_folder", folder or ""))  # as it was before the listing
    cache._safely(lambda: index.set_meta("listed_at", repr(started)))
    cache._synced = True
    if len(todo) >= catalog.MIN_READS or (cache.remote and len(listing) >= catalog.MIN_READS and _snapshot_stale(cache)):
        listed = started + cache.store_clock() if cache.remote else None
        cache._safely(lambda: catalog.write(cache, listed))  # the next machine with no index reads that
    return SyncReport(
        listed=len(listing), read=len(todo), removed=len(gone), foreign=len(foreign), from_snapshot=from_snapshot
    )


# The stamp of a row read on the change log's word: no listing gave it one yet.
_LOGGED = "~"


def _unlisted(stamp: str) -> bool:
    """A row that no listing stamped (written or looked up here, or read through the change log):
    the next listing adopts its stamp without reading the manifest (the same key holds the same
    inputs)."""
    return stamp == "" or stamp.startswith(_LOGGED)


def _snapshot_stale(cache: Cache) -> bool:
    """Whether the store's snapshot is too old for a fresh remote index to start from it and the
    change log (or there is none): a full listing then leaves a new one."""
    age = cache._safely(lambda: catalog.newest_age(cache))
    return age is None or age > change_log.FULL_MAX_AGE / 2


def _log_covers(cache: Cache, now: float) -> bool:
    """Whether the change log holds every record since this index's last full listing."""
    try:
        listed = cache.index.meta("listed_at")
        return listed is not None and 0 <= now - float(listed) < change_log.FULL_MAX_AGE
    except Exception:  # noqa: BLE001 - an unreadable index: list in full
        return False


def _sync_from_log(cache: Cache, previous: float, started: float, progress: Callable[[int, int], None] | None) -> SyncReport:
    """The sync of a remote index from the store's change log: the hour folders since the previous
    sync instead of a listing of every manifest; each manifest put under a key the index does not
    know is read, and the keys removed are forgotten."""
    index = cache.index
    offset = cache.store_clock()  # the records are named on the store's clock
    found = change_log.read(cache.store, previous + offset, started + offset)
    last = change_log.latest(found)
    known = index.stamps()
    gone = {key for key, change in last.items() if change.op == "del" and key in known}
    if gone:
        cache._safely(lambda: index.remove(gone))

    def new(change: Change) -> bool:
        stamp = known.get(change.key)
        if stamp is None:
            return True
        if stamp.startswith(_LOGGED):
            return stamp != _LOGGED + change.digest
        held = index.manifest(change.key)  # None: a row from a listing, from the snapshot
        return held is None or change_log.digest(held) != change.digest

    todo = sorted(key for key, change in last.items() if change.op == "put" and new(change))
    rows, foreign = _read_rows(cache, todo, {key: _LOGGED + last[key].digest for key in todo}, started, previous, progress)
    cache._safely(lambda: index.upsert(rows))
    cache._safely(lambda: index.upsert_foreign(foreign))
    cache._safely(lambda: index.set_meta("synced_at", repr(started)))
    cache._synced = True
    return SyncReport(listed=-1, read=len(todo), removed=len(gone), foreign=len(foreign), changes=len(found))


def _read_rows(
    cache: Cache, todo: list[str], stamps: dict[str, str], started: float, previous: float | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[IndexRow], list[ForeignRow]]:
    """The index rows of the manifests ``todo`` (with their ``stamps``), usable and foreign."""
    secret = cache.secret
    rows: list[IndexRow] = []
    foreign: list[ForeignRow] = []
    remote = cache.remote

    def read(key: str) -> IndexRow | ForeignRow | None:
        return read_row(cache.store, secret, key, stamps[key], keep=remote, seen=started, previous_sync=previous)

    # Remote reads wait on the network: many at once. Local ones are mostly Python: threads
    # would only contend for the interpreter.
    with concurrent.futures.ThreadPoolExecutor(max_workers=_REMOTE_READERS if remote else 1) as pool:
        found = pool.map(read, todo) if remote else map(read, todo)
        for i, row in enumerate(found):
            if isinstance(row, IndexRow):
                rows.append(row)
            elif isinstance(row, ForeignRow):
                foreign.append(row)
            if progress is not None:
                progress(i + 1, len(todo))
    return rows, foreign


def synced_within(cache: Cache, seconds: float) -> bool:
    """Whether any process synced the index of ``cache`` less than ``seconds`` ago."""
    when = synced_at(cache)
    return when is not None and 0 <= time.time() - when < seconds


def synced_at(cache: Cache) -> float | None:
    """When the index of ``cache`` was last synced (this machine's clock), None if never."""
    try:
        when = cache.index.meta("synced_at")
        return None if when is None else float(when)
    except Exception:  # noqa: BLE001 - an unreadable index: as if never synced
        return None
