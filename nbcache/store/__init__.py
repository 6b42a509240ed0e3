"""Stores: where entries' bytes live. ``open_store(url)`` picks the backend by URL scheme."""

from __future__ import annotations

from .base import BlobStore, backend_for, register_backend
from .local import LocalFolderStore

__all__ = ["BlobStore", "LocalFolderStore", "open_store", "register_backend"]

register_backend("file", LocalFolderStore)


def open_store(url: str) -> BlobStore:
    """The store for ``url``: a local path (the default) or a URL of a registered backend."""
    return backend_for(url)
