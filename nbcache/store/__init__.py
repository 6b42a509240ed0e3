"""The store: entries as signed manifests over content-addressed blobs, in a folder or a bucket.

A :class:`Cache` over a :class:`BlobStore` (``open_store(url)``) writes, finds, lists and removes
entries; it never unpickles anything (values come back as verified :class:`Frames`, see
:mod:`nbcache.run.serialize`). The modules, along the path of an entry's bytes:

- :mod:`.cache`: the :class:`Cache`, the layout of a store and its format file;
- :mod:`.manifest`: :class:`Entry` and :class:`BlobRef`, the manifest's JSON and its signature
  (keys in :mod:`.signing`, BLAKE3 digests and MACs in :mod:`.digest`);
- :mod:`.blobs`: content-addressed blobs, digests, bounded reads, copy-on-write mapping, repair
  (framing of the values blob in :mod:`.frames`, zstd in :mod:`.compression`);
- :mod:`.index`: the local SQLite index of entries and their usage, kept up to date by
  :mod:`.sync` (incremental) from :mod:`.catalog` snapshots and the manifests; :mod:`.usage`
  the records and derived numbers the CLI and the dashboard show;
- :mod:`.upkeep`: eviction, clearing, sweeping, verifying; :mod:`.doctor`: ``nbcache doctor``'s
  checks; :mod:`.outage`: a failing store is told once and waited out;
- :mod:`.backends`: where the bytes live (a local folder, fsspec URLs).

Importing this package stays light: no pandas, numpy or zstandard until they are needed.
"""

from __future__ import annotations

from .backends import BlobStore, LocalFolderStore, open_store, register_backend
from .cache import DEFAULT_SIZE_LIMIT, Cache
from .frames import Frames
from .manifest import STORE_FORMAT, BlobRef, Entry
from .upkeep import Problem, Progress
from .usage import EntryStats, Totals

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "STORE_FORMAT",
    "BlobRef",
    "BlobStore",
    "Cache",
    "Entry",
    "EntryStats",
    "Frames",
    "LocalFolderStore",
    "Problem",
    "Progress",
    "Totals",
    "open_store",
    "register_backend",
]
