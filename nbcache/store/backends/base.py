"""The store interface: a small key-value API over bytes, and the registry of backends.

A store only moves bytes. It knows nothing of pickles, manifests or keys; names are relative
POSIX paths such as ``manifests/ab12.json``. Every backend must make ``put`` atomic: a reader
sees either nothing or the complete object under a name, never a part of it.
"""

from __future__ import annotations

import abc
import time
from typing import Any, BinaryIO, Callable, Iterable, Iterator

__all__ = ["BlobStore", "register_backend", "backend_for", "remove_stale"]


class BlobStore(abc.ABC):
    """Bytes under names. Backends: a local folder (default), fsspec URLs (shared)."""

    url: str
    shared = False
    """Whether other machines use this store too (an object store): its entries are the team's, so
    one machine's finding that an entry does not pay there removes nothing (nbcache.run.pays)."""

    @abc.abstractmethod
    def put(self, name: str, chunks: Iterable[Any]) -> None:
        """Write the concatenation of ``chunks`` (bytes-like, iterated once: it may be a generator
        that reads or compresses as it goes) under ``name``, atomically."""

    @abc.abstractmethod
    def open(self, name: str) -> BinaryIO:
        """Open ``name`` for reading; :class:`FileNotFoundError` when it does not exist."""

    def get(self, name: str, limit: int | None = None) -> bytes:
        """The bytes of ``name`` (at most ``limit`` of them: a reader bounded by what it expects)."""
        with self.open(name) as fh:
            return fh.read() if limit is None else fh.read(limit)

    def list_stamps(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Names under ``prefix`` with a stamp that changes whenever the object is written again
        (size and modification time, or the server's tag): what an incremental sync compares.
        Backends override this with one listing; this fallback asks for each name."""
        for name in self.list(prefix):
            try:
                yield name, f"{self.size(name)}:{self.modified(name)}"
            except FileNotFoundError:
                continue

    @abc.abstractmethod
    def contains(self, name: str) -> bool:
        """Whether ``name`` exists."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove ``name``; no error when it is already gone."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Names under the folder ``prefix`` (recursively), in no particular order."""

    @abc.abstractmethod
    def size(self, name: str) -> int:
        """Size in bytes of ``name``."""

    def modified(self, name: str) -> float:
        """When ``name`` was written (a POSIX timestamp). A backend that cannot tell says
        "now", so nothing is ever taken for a stale leftover by mistake."""
        return time.time()

    def folder_stamp(self, prefix: str) -> str | None:
        """A stamp of the folder ``prefix`` that changes whenever a name in it is added, removed
        or replaced (None: the backend cannot tell, so every sync lists the folder)."""
        return None

    def sweep(self, older_than: float) -> int:
        """Remove leftovers of writers that died (temporary files); returns how many."""
        return 0


def remove_stale(store: BlobStore, names: Iterable[str], older_than: float) -> int:
    """Delete those of ``names`` written more than ``older_than`` seconds ago; returns how many.
    A name that vanishes or cannot be removed meanwhile is skipped: another process sweeps too."""
    removed = 0
    cutoff = time.time() - older_than
    for name in names:
        try:
            if store.modified(name) < cutoff:
                store.delete(name)
                removed += 1
        except OSError:
            continue
    return removed


_BACKENDS: dict[str, Callable[[str], BlobStore]] = {}


def register_backend(scheme: str, factory: Callable[[str], BlobStore]) -> None:
    """Make URLs with ``scheme`` (``file``, ``s3``...) open with ``factory(url)``."""
    _BACKENDS[scheme] = factory


def backend_for(url: str) -> BlobStore:
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    factory = _BACKENDS.get(scheme) or _BACKENDS.get("*")
    if factory is None:
        raise ValueError(f"nbcache: no store backend for {url!r}")
    return factory(url)
