"""A store at any fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``memory://...``): shared caches.

On object stores (S3 and the like) a PUT of a whole object is atomic, and so is a multipart
upload, which becomes visible only when it completes: ``put`` writes the object directly, and on
any error aborts the upload instead of closing the file (closing would publish the part written
so far). On other filesystems ``put`` writes a temporary name and moves it into place.

S3-compatible servers: the endpoint comes from ``AWS_ENDPOINT_URL`` (the variable the AWS tools
read) or from ``storage_options`` (``%config NbCache.storage_options = {"endpoint_url": ...}``);
credentials come the usual way (``AWS_ACCESS_KEY_ID``, profiles...). Errors of the underlying
client that are not already an :class:`OSError` become :class:`~nbcache.errors.StoreError`, so
the cache treats a network failure like a full disk: the cell runs anyway.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
import time
import uuid
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, TypeVar

from ...errors import StoreError
from .base import BlobStore, remove_stale

__all__ = ["FsspecStore", "default_storage_options"]

_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "r2"}
_T = TypeVar("_T")


def default_storage_options(url: str) -> dict[str, Any]:
    """Options nbcache passes unless the user gives their own."""
    scheme = url.split("://", 1)[0]
    options: dict[str, Any] = {}
    if scheme in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        # Fail fast when the server is away: a cell should not wait minutes for its cache.
        options["config_kwargs"] = {"connect_timeout": 3, "read_timeout": 20, "retries": {"max_attempts": 2}}
        # Another machine may write at any moment: never answer from a cached listing.
        options["use_listings_cache"] = False
    return options


def _wrapped(method: Callable[..., _T]) -> Callable[..., _T]:
    @functools.wraps(method)
    def call(self: FsspecStore, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore, aiohttp...: all mean "the store failed"
            raise StoreError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    return call


class _Reading:
    """A remote file open for reading whose client errors become :class:`StoreError`."""

    def __init__(self, fh: Any, url: str):
        self._fh = fh
        self._url = url

    def _call(self, method: Callable[..., _T], *args: Any) -> _T:
        try:
            return method(*args)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore, aiohttp...: the store failed
            raise StoreError(f"{self._url}: {type(exc).__name__}: {exc}") from exc

    def read(self, size: int = -1) -> bytes:
        return self._call(self._fh.read, size)

    def readinto(self, buffer: Any) -> int:
        return self._call(self._fh.readinto, buffer)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _Reading:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FsspecStore(BlobStore):
    """The filesystem is made on first use: a command that answers from the index alone (``nbcache
    ls`` moments after a sync) never imports the client (s3fs and aiobotocore: most of a second).
    A missing client package is still an error at once."""

    shared = True

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None):
        try:
            import fsspec  # noqa: F401
        except ImportError as exc:  # pragma: no cover - fsspec comes with the s3 extra
            raise StoreError(f"{url}: the fsspec package is needed for remote caches (pip install 'nbcache[s3]')") from exc
        self.url = url.rstrip("/")
        self._options = default_storage_options(url)
        self._options.update(storage_options or {})
        self._missing_client(self.url)
        self._fs: Any = None
        self._base = ""
        self._atomic = False
        self._connecting = threading.Lock()

    @staticmethod
    def _missing_client(url: str) -> None:
        """Raise now when the package of ``url``'s filesystem is not installed (cheap: no import)."""
        from fsspec.registry import known_implementations, registry

        scheme = url.split("::")[-1].split("://", 1)[0] if "://" in url else "file"
        known = known_implementations.get(scheme)
        if scheme in registry or known is None:
            return  # registered in this process, or unknown to fsspec: url_to_fs says what is wrong
        module = known["class"].rsplit(".", 1)[0]
        try:
            found = importlib.util.find_spec(module.split(".")[0]) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise StoreError(f"{url}: {known.get('err') or f'{module} is not installed'} (for s3:// URLs: pip install 'nbcache[s3]')")

    def _connect(self) -> None:
        import fsspec

        with self._connecting:
            if self._fs is not None:
                return
            try:
                fs, base = fsspec.core.url_to_fs(self.url, **self._options)
            except ImportError as exc:
                raise StoreError(f"{self.url}: {exc} (for s3:// URLs: pip install 'nbcache[s3]')") from exc
            except Exception as exc:  # noqa: BLE001
                raise StoreError(f"{self.url}: cannot open the store: {exc}") from exc
            protocol = fs.protocol
            protocols = {protocol} if isinstance(protocol, str) else set(protocol)
            self._base = base.rstrip("/")
            self._atomic = bool(protocols & _OBJECT_STORES)
            self._fs = fs

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._connect()
        return self._fs

    @property
    def base(self) -> str:
        if self._fs is None:
            self._connect()
        return self._base

    @property
    def _atomic_objects(self) -> bool:
        """Whether a PUT of a whole object is atomic (object stores): no temporary name needed."""
        if self._fs is None:
            self._connect()
        return self._atomic

    def _path(self, name: str) -> str:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"nbcache: invalid store name {name!r}")
        return f"{self.base}/{name}"

    @_wrapped
    def put(self, name: str, chunks: Iterable[Any]) -> None:
        path = self._path(name)
        if self._atomic_objects:
            self._write(path, chunks)
        else:
            tmp = self._path(f"tmp/{uuid.uuid4().hex}.part")
            try:
                self._write(tmp, chunks)
                self.fs.mv(tmp, path)
            except BaseException:
                try:
                    self.fs.rm(tmp)
                except Exception:  # noqa: BLE001
                    pass
                raise

    def _write(self, path: str, chunks: Iterable[Any]) -> None:
        parent = path.rsplit("/", 1)[0]
        if not self._atomic_objects:
            self.fs.makedirs(parent, exist_ok=True)
        fh = self.fs.open(path, "wb")
        try:
            for chunk in chunks:
                fh.write(memoryview(chunk).cast("B"))
        except BaseException:
            # Never close a half-written object: closing would publish it.
            try:
                fh.discard()
            finally:
                fh.closed = True
            raise
        fh.close()

    @_wrapped
    def open(self, name: str) -> BinaryIO:
        # fsspec reads lazily, so a server that goes away mid-download fails in read(), not here:
        # those errors are the store's failure too (never "damage", which would remove the blob).
        return _Reading(self.fs.open(self._path(name), "rb"), self.url)  # type: ignore[return-value]

    @_wrapped
    def get(self, name: str, limit: int | None = None) -> bytes:
        # A bounded read is one ranged GET: nothing past ``limit`` is fetched.
        if limit is None:
            return bytes(self.fs.cat_file(self._path(name)))
        return bytes(self.fs.cat_file(self._path(name), start=0, end=limit))

    @_wrapped
    def contains(self, name: str) -> bool:
        return bool(self.fs.exists(self._path(name)))

    @_wrapped
    def delete(self, name: str) -> None:
        try:
            self.fs.rm_file(self._path(name))
        except FileNotFoundError:
            pass

    @_wrapped
    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.base
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return iter(())
        start = len(self.base) + 1
        names = []
        for path in found:
            path = path.rstrip("/")
            if path.startswith(self.base + "/"):
                names.append(path[start:])
        return iter(names)

    @_wrapped
    def list_stamps(self, prefix: str) -> Iterator[tuple[str, str]]:
        """One listing (1,000 names a request on S3) gives each object's size and tag."""
        base = self._path(prefix.rstrip("/")) if prefix else self.base
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return iter(())
        start = len(self.base) + 1
        stamps = []
        for path, info in found.items():
            path = path.rstrip("/")
            if not path.startswith(self.base + "/") or info.get("type") == "directory":
                continue
            tag = info.get("ETag") or info.get("LastModified") or info.get("mtime") or info.get("created") or ""
            stamps.append((path[start:], f"{info.get('size')}:{tag}"))
        return iter(stamps)

    @_wrapped
    def size(self, name: str) -> int:
        return int(self.fs.size(self._path(name)))

    @_wrapped
    def modified(self, name: str) -> float:
        try:
            return float(self.fs.modified(self._path(name)).timestamp())
        except NotImplementedError:
            return time.time()

    @_wrapped
    def sweep(self, older_than: float) -> int:
        if self._atomic_objects:
            return 0  # aborted uploads are never visible; the bucket's lifecycle rules collect them
        return remove_stale(self, self.list("tmp"), older_than)
