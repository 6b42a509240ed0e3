"""The default store: a folder on the local disk.

Writes go to ``tmp/`` under a unique name and are renamed into place, so a crash at any moment
leaves either the old state or the complete new object, plus perhaps a stray temporary file that
:meth:`LocalFolderStore.sweep` removes later.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from .base import BlobStore

__all__ = ["LocalFolderStore"]

# Temporary files older than this belong to writers that died; younger ones may be in use.
_STALE_TMP_SECONDS = 3600.0
# Some file systems keep modification times to the second (or two): only older ones are trusted.
_COARSE_CLOCK_NS = 2_000_000_000


class LocalFolderStore(BlobStore):
    def __init__(self, root: str):
        if root.startswith("file://"):
            root = root[len("file://"):]
        self.root = os.path.abspath(os.path.expanduser(root))
        self.url = self.root
        self._tmp = os.path.join(self.root, "tmp")

    def _path(self, name: str) -> str:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"nbcache: invalid store name {name!r}")
        return os.path.join(self.root, *name.split("/"))

    def put(self, name: str, chunks: Iterable[Any]) -> None:
        self.put_then_name(chunks, lambda: name)

    def put_then_name(self, chunks: Iterable[Any], name: Callable[[], str | None]) -> None:
        """Write ``chunks``, then put them in place under ``name()``, asked once they are all
        written (a blob named after its digest is hashed as it is written); None: drop them."""
        os.makedirs(self._tmp, exist_ok=True)
        tmp = os.path.join(self._tmp, f"{uuid.uuid4().hex}.part")
        try:
            with open(tmp, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            final = name()
            if final is None:
                os.unlink(tmp)
                return
            path = self._path(final)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def local_path(self, name: str) -> str:
        """Where ``name`` is on the local disk (the cache maps large blobs instead of reading them)."""
        return self._path(name)

    def open(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def get(self, name: str, limit: int | None = None) -> bytes:
        """With the OS's calls alone (no buffered file: its fstat and isatty cost a hit more
        calls, each of which lets the kernel's other threads in)."""
        fd = os.open(self._path(name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        try:
            if limit is None:
                limit = os.fstat(fd).st_size + 1
            chunks, got = [], 0
            while got < limit:
                chunk = os.read(fd, limit - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        finally:
            os.close(fd)

    def contains(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            pass

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        for folder, _dirs, files in os.walk(base):
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            for file in files:
                yield file if rel == "." else f"{rel}/{file}"

    def list_stamps(self, prefix: str) -> Iterator[tuple[str, str]]:
        """One flat folder (``manifests``) is listed with scandir: its stat comes with the entry."""
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        stack = [base]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            for item in entries:
                if item.is_dir(follow_symlinks=False):
                    stack.append(item.path)
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield (item.name if rel == "." else f"{rel}/{item.name}"), f"{st.st_size}:{st.st_mtime_ns}"

    def folder_stamp(self, prefix: str) -> str | None:
        """The folder's inode and modification time: every name written (renamed into place),
        replaced or removed in it changes them. None while the time is too recent to trust on a
        file system with coarse timestamps (a change later in the same tick would not show)."""
        try:
            st = os.stat(self._path(prefix))
        except FileNotFoundError:
            return None
        if time.time_ns() - st.st_mtime_ns < _COARSE_CLOCK_NS:
            return None
        return f"{st.st_ino}:{st.st_mtime_ns}"

    def size(self, name: str) -> int:
        return os.path.getsize(self._path(name))

    def modified(self, name: str) -> float:
        return os.path.getmtime(self._path(name))

    def sweep(self, older_than: float = _STALE_TMP_SECONDS) -> int:
        """Remove temporary files left by writers that died; returns how many."""
        removed = 0
        cutoff = time.time() - older_than
        try:
            names = os.listdir(self._tmp)
        except FileNotFoundError:
            return 0
        for file in names:
            path = os.path.join(self._tmp, file)
            try:
                if os.path.getmtime(path) < cutoff:
                    os.unlink(path)
                    removed += 1
            except OSError:
                continue
        return removed
