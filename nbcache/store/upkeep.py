"""Upkeep of a store: eviction to the size limit, clearing, sweeping orphans and verifying.

These are what ``nbcache clear``, ``gc`` and ``verify`` do, and what a write does after it is
done (eviction); :class:`~nbcache.store.cache.Cache` offers each as a method.

**Eviction and sharing.** Evicting an entry deletes its manifest, then the blobs that no other
indexed entry names. On a store shared by several machines a blob that another machine reuses
at that very moment (same content, written moments before) can go with it; that entry then
fails its checksum on read, which is a miss with a warning, and the next write repairs it.

**Orphans.** A writer killed between its blobs and its manifest leaves blobs that no manifest
names; :func:`sweep` removes them once they are older than a writer could take to finish.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from . import changes, later
from ..errors import CorruptEntryError
from .backends.base import remove_stale
from .manifest import blob_names, manifest_keys, manifest_name

if TYPE_CHECKING:
    from .cache import Cache

__all__ = [
    "ORPHAN_GRACE_SECONDS", "Problem", "Progress", "clear", "clear_foreign", "enforce_limit", "sweep", "verify",
]

# Blobs younger than this that no manifest names may belong to an entry being written now.
ORPHAN_GRACE_SECONDS = 3600.0

Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as a long operation goes."""


@dataclass(frozen=True)
class Problem:
    """An entry (or a manifest that is not one) that fails verification."""

    key: str
    problem: str


def clear(
    cache: Cache,
    keys: Iterable[str] = (),
    *,
    label: str | None = None,
    older_than: float | None = None,
    everything: bool = False,
    progress: Progress | None = None,
) -> list[str]:
    """Delete entries: those named, with ``label``, not used for ``older_than`` seconds, or
    all. Returns the keys deleted."""
    if everything:
        cache.sync(full=True)  # every manifest there is, whatever the index or a change log knows
    else:
        cache.ensure_synced()
    stats = cache.index.stats()
    chosen: set[str] = set(keys)
    if everything:
        chosen |= {s.key for s in stats}
    if label is not None:
        chosen |= {s.key for s in stats if s.label == label}
    if older_than is not None:
        cutoff = time.time() - older_than
        chosen |= {s.key for s in stats if s.last_used < cutoff}
    done = sorted(chosen)
    for i, key in enumerate(done):
        cache.delete(key)
        if progress is not None:
            progress(i + 1, len(done))
    return done


def clear_foreign(cache: Cache, progress: Progress | None = None) -> list[str]:
    """Delete the manifests this cache cannot use (signed with another key, of an older store
    format, unreadable) and the blobs that no other entry names. Returns the keys deleted."""
    cache.sync()
    rows = cache.index.foreign()
    for i, row in enumerate(rows):
        cache.store.delete(manifest_name(row.key))
        cache.log_change("del", [row.key])
        cache.index.remove([row.key])
        cache.drop_unused(row.blobs)
        if progress is not None:
            progress(i + 1, len(rows))
    return [row.key for row in rows]


def enforce_limit(cache: Cache, keep: str | None = None) -> list[str]:
    """Evict least recently used entries until the store fits ``cache.size_limit``; never ``keep``."""
    limit = cache.size_limit
    if limit is None or limit <= 0:
        return []
    evicted: list[str] = []
    try:
        cache.ensure_synced()
        index = cache.index
        if index.stored_upper_bound() <= limit:
            return []  # cheap check first: the exact total counts shared blobs once
        total = index.stored_bytes()
        if total <= limit:
            return []
        for stats in index.lru():
            if total <= limit:
                break
            if stats.key == keep:
                continue
            cache.delete(stats.key)
            evicted.append(stats.key)
            total = index.stored_bytes()
    except Exception:  # noqa: BLE001 - eviction is housekeeping: the write itself succeeded
        pass
    return evicted


def sweep(cache: Cache, older_than: float = ORPHAN_GRACE_SECONDS) -> int:
    """Remove blobs that no manifest names and stray temporary files; returns how many."""
    cache.ensure_layout()
    store = cache.store
    used = set()
    for key in manifest_keys(store):
        try:
            # Unverified on purpose: an entry signed with another key still owns its blobs.
            used.update(blob_names(store.get(manifest_name(key))))
        except FileNotFoundError:
            continue
    used.update([later.other_name(name) for name in used if not later.compressed(name)])  # compressed later
    # A blob written recently may belong to a manifest being written now: only old ones go.
    orphans = [name for name in store.list("blobs") if name not in used]
    expired = changes.expire(store) if cache.remote else 0  # the change log's old records
    return remove_stale(store, orphans, older_than) + store.sweep(older_than) + expired


def verify(cache: Cache, progress: Progress | None = None) -> list[Problem]:
    """Check every manifest's signature and every blob's checksum (nothing is unpickled)."""
    cache.ensure_layout()
    problems: list[Problem] = []
    keys = manifest_keys(cache.store)
    for i, key in enumerate(keys):
        try:
            entry = cache.read_manifest(key)
            cache.blobs.read_frames(entry.values, owner=None)
            cache.blobs.read_bytes(entry.outputs, owner=None)
            for ref in entry.blobs:
                cache.blobs.check(ref)
        except FileNotFoundError:
            pass  # deleted while we looked
        except CorruptEntryError as exc:
            problems.append(Problem(key, str(exc)))
        if progress is not None:
            progress(i + 1, len(keys))
    return problems
