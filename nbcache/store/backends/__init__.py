"""Stores: where entries' bytes live. ``open_store(url)`` picks the backend by URL scheme.

A plain path (or ``file://``) is a :class:`LocalFolderStore`; any other scheme (``s3://``,
``gs://``, ``memory://``...) is an :class:`~nbcache.store.backends.remote.FsspecStore`.
"""

from __future__ import annotations

from typing import Any, Mapping

from .base import BlobStore, backend_for, register_backend
from .local import LocalFolderStore

__all__ = ["BlobStore", "LocalFolderStore", "open_store", "register_backend"]


def _fsspec_store(url: str, storage_options: Mapping[str, Any] | None = None) -> BlobStore:
    from .remote import FsspecStore

    return FsspecStore(url, storage_options)


register_backend("file", LocalFolderStore)
register_backend("*", _fsspec_store)


def open_store(url: str, storage_options: Mapping[str, Any] | None = None) -> BlobStore:
    """The store for ``url``: a local path (the default) or a URL of a registered backend.
    ``storage_options`` go to fsspec for remote URLs."""
    if storage_options and "://" in url and not url.startswith("file://"):
        return _fsspec_store(url, storage_options)
    return backend_for(url)
