"""The change log of a shared store: what a sync of a remote index reads instead of a full listing.

A remote store's listing of ``manifests/`` costs a request per 1,000 entries: with 100,000 entries,
tens of seconds. So every write and removal of a manifest also puts an empty object under
``changes/<hour>/``, named after the writer's clock, the operation and the key::

    changes/00493128/1774627200123456789-put-<key>-<digest of the manifest>
    changes/00493128/1774627215000000000-del-<key>

A sync of an index that had a full listing not long ago lists only the hour folders since its
previous sync (a request each, at the same time), reads the manifests put under keys it does not
know or whose manifest is not the one it holds (a cell run again and stored anew), and forgets
the keys removed: its cost no longer grows with the store.

Records are named on the *store's* clock, not the machine's: each machine measures how far its
clock is from the server's (it writes a probe object and reads back its modification time, once a
day: :func:`measure_offset`), so a machine whose clock is a day off writes its records where the
others look. ``MARGIN`` covers what that measure cannot (the server's one-second resolution, the
time a write takes to be listed).

A machine with no index starts from the store's snapshot of the index
(:mod:`~nbcache.store.catalog`), which says when its rows were listed, and reads the records since.

What the log cannot tell (a store written by an older nbcache, an object removed by hand, a writer
that died between the manifest and its record) is caught by the next full listing: after
``FULL_MAX_AGE``, on the maintenance commands (``gc``, ``clear --all``) and in ``nbcache doctor``.
None of it can give a stale hit: a lookup reads the entry's own signed manifest, which holds the
key of its inputs.

Records are kept ``KEEP`` seconds; ``nbcache gc`` removes older hour folders.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from .backends import BlobStore

__all__ = [
    "CLOCK_MAX_AGE", "FOLDER", "FULL_MAX_AGE", "KEEP", "MARGIN", "Change", "digest", "expire", "hours", "latest",
    "measure_offset", "read", "record",
]

FOLDER = "changes"
HOUR = 3600
MARGIN = 300.0
"""Seconds listed before the previous sync: what the measure of the store's clock may be off by,
and how long a write may take to show in a listing."""
CLOCK_MAX_AGE = 86400.0
"""How long a measure of the store's clock is trusted (:func:`measure_offset`)."""
KEEP = 8 * 86400.0
"""How long records are kept (``nbcache gc`` removes older ones)."""
FULL_MAX_AGE = 6 * 86400.0
"""After this long without a full listing, the next sync lists every manifest again (and an index
last synced longer ago than this cannot rely on the records, some of which may be gone)."""

_LISTERS = 16  # hour folders listed at once (each is a request)
_OPS = ("put", "del")


@dataclass(frozen=True, order=True)
class Change:
    when_ns: int
    op: str
    key: str
    digest: str = ""
    """Of the manifest put (:func:`digest`); empty for a removal."""


def digest(manifest: bytes) -> str:
    """What a put record says of the manifest it put: enough to tell it from another write."""
    return hashlib.blake2b(manifest, digest_size=8).hexdigest()


def _name(change: Change) -> str:
    tail = f"-{change.digest}" if change.digest else ""
    return f"{FOLDER}/{change.when_ns // 1_000_000_000 // HOUR:08d}/{change.when_ns:019d}-{change.op}-{change.key}{tail}"


def _parse(name: str) -> Change | None:
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != FOLDER:
        return None
    fields = parts[2].split("-")
    if len(fields) not in (3, 4) or not fields[0].isdigit() or fields[1] not in _OPS:
        return None
    if not all(field.isalnum() for field in fields[2:]):
        return None
    return Change(int(fields[0]), fields[1], fields[2], fields[3] if len(fields) == 4 else "")


def record(store: BlobStore, op: str, keys: Iterable[str], manifest: bytes | None = None, *, offset: float = 0.0, now: float | None = None) -> None:
    """Put the records of ``op`` ("put" of ``manifest``, or "del") on ``keys``, named at ``now``
    (this machine's clock by default) plus ``offset`` (to the store's clock: :func:`measure_offset`)."""
    when = (time.time_ns() if now is None else int(now * 1e9)) + int(offset * 1e9)
    said = digest(manifest) if manifest is not None else ""
    for key in keys:
        store.put(_name(Change(when, op, key, said)), [b""])


def measure_offset(store: BlobStore) -> float:
    """How many seconds the store's clock is ahead of this machine's: a probe object is written,
    and its modification time (the server's clock) read back. About 0.5 when the store cannot tell
    (its ``modified`` then says "now"): well within ``MARGIN``."""
    probe = f"{FOLDER}/clock/{uuid.uuid4().hex}"
    before = time.time()
    store.put(probe, [b""])
    after = time.time()
    try:
        stamped = store.modified(probe)
    finally:
        store.delete(probe)
    # The server's stamp is whole seconds, rounded down: half a second later on average.
    return stamped + 0.5 - (before + after) / 2


def hours(since: float, until: float) -> list[int]:
    """The hour folders that may hold records written from ``since`` to ``until`` (the store's
    clock), with ``MARGIN`` before and after."""
    return list(range(int((since - MARGIN) // HOUR), int((until + MARGIN) // HOUR) + 1))


def read(store: BlobStore, since: float, until: float) -> list[Change]:
    """The records written from ``MARGIN`` before ``since``, in the hour folders up to ``MARGIN``
    after ``until`` (the store's clock), oldest first."""
    floor = int((since - MARGIN) * 1e9)

    def folder(hour: int) -> list[Change]:
        found = (_parse(name) for name in store.list(f"{FOLDER}/{hour:08d}"))
        return [change for change in found if change is not None and change.when_ns >= floor]

    with concurrent.futures.ThreadPoolExecutor(max_workers=_LISTERS) as pool:
        return sorted(change for changes in pool.map(folder, hours(since, until)) for change in changes)


def latest(changes: Iterable[Change]) -> dict[str, Change]:
    """Each key's last record."""
    return {change.key: change for change in sorted(changes)}


def expire(store: BlobStore, now: float | None = None) -> int:
    """Remove the records older than ``KEEP``; returns how many."""
    cutoff = ((time.time() if now is None else now) - KEEP) // HOUR
    old = []
    for name in store.list(FOLDER):
        change = _parse(name)
        if change is not None and change.when_ns // 1_000_000_000 // HOUR < cutoff:
            old.append(name)
    for name in old:
        store.delete(name)
    return len(old)
