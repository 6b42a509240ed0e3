"""Snapshots of the index in the store: a machine with no index reads one object, not every manifest.

A fresh index would otherwise read every manifest of the store once (100,000 manifests are
100,000 reads; on object storage, as many requests). So a sync that had to read many manifests
leaves what it learnt in the store, ``catalog/<key>/<time>-<id>.nbcat`` (``<key>``: the signing
key's fingerprint, so that people sharing a store with different keys keep their own)::

    b"NBCI" | version (1 byte) | 64 hex digits of a keyed BLAKE3 of the rest | zstd(JSON)

with the JSON ``{"columns": [...], "rows": [[...], ...], "listed": ...}``: the shared columns of the index
(:data:`~nbcache.store.index.SHARED_COLUMNS`, each row with the stamp of the manifest it was
read from). A fresh index loads the newest snapshot that verifies with its key, then syncs as
usual: the listing's stamps tell which rows still hold (same stamp), which manifests are new
or changed (read) and which are gone (dropped). A snapshot is only ever a shortcut to what the
manifests say: lookups read (and verify) the manifest itself, a snapshot signed with another key
or damaged is ignored, and an old or replayed one costs only the reads it fails to save.
Each snapshot replaces the older ones, which its writer removes.

On a remote store ``listed`` is when the listing the snapshot holds was made, on the store's clock
(:mod:`~nbcache.store.changes`): a fresh index then needs no listing at all, only the change log's
records since then (an old or replayed snapshot says when it was made too, under its MAC).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING

from . import digest, signing
from .index import SHARED_COLUMNS

if TYPE_CHECKING:
    from .cache import Cache

__all__ = ["MIN_READS", "load", "load_listed", "newest_age", "write"]

_PREFIX = "catalog/"
_SUFFIX = ".nbcat"
_MAGIC = b"NBCI"
_VERSION = b"\x01"
_HEAD = len(_MAGIC) + len(_VERSION) + 64
# A sync that read at least this many manifests writes a snapshot (fewer: reading them again
# on a new machine costs less than the snapshot).
MIN_READS = 1000


def _folder(cache: Cache) -> str:
    return f"{_PREFIX}{signing.fingerprint(cache.secret)}"


def _names(cache: Cache) -> list[str]:
    folder = _folder(cache)
    return sorted(name for name in cache.store.list(folder) if name.startswith(folder + "/") and name.endswith(_SUFFIX))


def write(cache: Cache, listed: float | None = None) -> str | None:
    """Write a snapshot of the index of ``cache`` and remove the older ones; its name, or None
    when there is nothing worth writing. ``listed``: when its rows were listed (the store's clock)."""
    import zstandard

    rows = cache.index.export_shared()
    if len(rows) < MIN_READS:
        return None
    body = zstandard.ZstdCompressor(level=3).compress(json.dumps({"columns": SHARED_COLUMNS, "rows": rows, "listed": listed}).encode())
    mac = digest.mac(cache.secret, "catalog", [body])
    older = _names(cache)
    name = f"{_folder(cache)}/{time.time_ns():020d}-{uuid.uuid4().hex[:8]}{_SUFFIX}"
    cache.store.put(name, [_MAGIC + _VERSION + mac.encode("ascii"), body])
    for old in older:
        cache.store.delete(old)
    return name


def newest_age(cache: Cache) -> float | None:
    """Seconds since the newest snapshot was written (by its writer's clock; None: there is none)."""
    names = _names(cache)
    if not names:
        return None
    try:
        return time.time() - int(names[-1].rsplit("/", 1)[1].split("-")[0]) / 1e9
    except ValueError:
        return None


def load(cache: Cache, born: float) -> int:
    """Fill a fresh index from the newest snapshot that verifies; returns the rows loaded."""
    return load_listed(cache, born)[0]


def load_listed(cache: Cache, born: float) -> tuple[int, float | None]:
    """:func:`load`, and when the snapshot's rows were listed (the store's clock; None: unknown)."""
    import zstandard

    for name in reversed(_names(cache)):
        try:
            raw = cache.store.get(name)
        except FileNotFoundError:
            continue  # replaced meanwhile
        body = memoryview(raw)[_HEAD:]
        if raw[: len(_MAGIC) + 1] != _MAGIC + _VERSION or not digest.mac_matches(
            cache.secret, "catalog", [body], raw[len(_MAGIC) + 1 : _HEAD].decode("ascii", "replace")
        ):
            continue  # another key's, or damaged: the manifests are read instead
        try:
            data = json.loads(zstandard.ZstdDecompressor().decompress(body))
            listed = data.get("listed")
            count = cache.index.import_shared(data["columns"], data["rows"], born)
            return count, float(listed) if isinstance(listed, (int, float)) else None
        except (ValueError, KeyError, TypeError, AttributeError, zstandard.ZstdError):
            continue
    return 0, None
