"""Blobs: content-addressed bytes, written once and read back only once their checksum matches.

A blob is ``blobs/<id[:2]>/<id>`` (stored as is) or ``blobs/<id[:2]>/<id>.zst`` (stored
zstd-compressed, see :mod:`nbcache.store.compression`).

**Digests.** A blob's ``<id>`` is the BLAKE3-256 of its *content* (the bytes before compression,
see :mod:`nbcache.store.digest`), not of the stored bytes. So identical values written by two
cells, two machines or with two compression settings share an id; the name's suffix says how the
bytes are stored. A reader decompresses, hashes what comes out, and compares with the id before
anything is unpickled: a flipped bit is caught by zstd or by the digest, and a blob swapped for
other bytes (another entry's blob copied under this name) by the digest, which nobody can match
with other bytes. The id and the size sit in the signed manifest, and every read is bounded by
that size: a blob that claims a larger frame, or a longer file, fails before anything that large
is allocated.

**Repair.** A blob that fails its checksum is removed (and the read counts as a miss of its entry),
so that the next write of the same content stores it again instead of reusing the damaged copy.
A read that fails (EIO, ENOMEM, an unreachable server) is a store problem, not damage: the blob
stays.
"""

from __future__ import annotations

import base64
import io
import os
import queue
import threading
from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import digest, later
from .backends import BlobStore
from .compression import Compression, Sampler, compress_stream, decompress, open_reader
from .frames import CHUNK, Frames, frames_from_buffer, read_frames
from .manifest import INLINE_MAX, BlobRef
from .outage import Outage
from ..errors import CorruptEntryError, StoreError

__all__ = ["Blobs"]

# Below this, reading a blob is as cheap as mapping it.
_MAP_MIN_BYTES = 1 << 20
# Contents of blobs up to this size that were read and checked are kept, up to this many of them.
_SMALL = 4096
# Values blobs up to this size are read whole, in one call.
_READ_WHOLE = 1 << 16
_SMALL_COUNT = 256
# Chunks of a file copied out of a blob: large enough for BLAKE3 to use every core.
_COPY_CHUNK = 16 << 20
# Values blobs of a local store from this size on are compressed after their entry is written,
# not on the cell's time (see nbcache.store.later).
LATER_MIN = 8 << 20


def _read_into(reader: Any, view: memoryview) -> int:
    chunk = reader.read(len(view))
    view[: len(chunk)] = chunk
    return len(chunk)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


class _Counted:
    """The chunks of an iterable, counting their bytes as a store writes them."""

    def __init__(self, chunks: Iterable[Any]):
        self._chunks = chunks
        self.nbytes = 0

    def __iter__(self) -> Iterator[Any]:
        for chunk in self._chunks:
            self.nbytes += memoryview(chunk).nbytes
            yield chunk


class _Hashing:
    """A BLAKE3 digest taken on a thread of its own, of the chunks fed to it in order (BLAKE3 and
    file writes both let go of the GIL: a blob is hashed while it is written)."""

    # Chunks waiting to be hashed, at most: a spooled pickle's chunks are fresh bytes, and a hash
    # that falls behind the write must not hold a copy of the whole pickle.
    _WAITING = 8

    def __init__(self) -> None:
        self._hasher = digest.hasher()
        self._queue: queue.Queue[Any] = queue.Queue(self._WAITING)
        self._failed: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="nbcache-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failed: Exception | None = None
        while (chunk := self._queue.get()) is not None:  # drained to the end: a writer never waits forever
            if failed is None:
                try:
                    self._hasher.update(chunk)
                except Exception as exc:  # noqa: BLE001 - told to the writer (hexdigest)
                    failed = exc
        self._failed = failed

    def feed(self, chunk: Any) -> None:
        self._queue.put(chunk)

    def hexdigest(self) -> str:
        self.close()
        if self._failed is not None:
            raise OSError(f"the blob's digest failed ({self._failed})")
        return str(self._hasher.hexdigest())

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class Blobs:
    """Writes and verified reads of the blobs in ``store``.

    ``count_miss(key)`` is told when a blob of the entry ``key`` is damaged or missing; it must not
    raise. A read passes ``owner=None`` to only report damage (``verify``), never repair it.
    """

    def __init__(self, store: BlobStore, outage: Outage, count_miss: Callable[[str], None]):
        self.store = store
        self._outage = outage
        self._count_miss = count_miss
        self._small: dict[str, bytes] = {}

    def put(
        self, chunks: Sequence[Any] | Callable[[], Iterable[Any]], compression: Compression, size: int | None = None
    ) -> BlobRef:
        """Store the concatenation of ``chunks`` unless a blob with its content is there already.
        ``chunks`` is a list of bytes-like objects, or a function that returns a new pass over them
        (with ``size``, their total): a spooled pickle is then read in chunks, never held whole,
        once for the digest and the compression samples and once more to write it."""
        return self._put(chunks, compression, size, False)[0]

    def put_values(self, chunks: Callable[[], Iterable[Any]], compression: Compression, size: int) -> tuple[BlobRef, bool]:
        """:meth:`put` for a values blob, and whether to :meth:`compress_later`: a large blob that
        compresses well goes to a local store as it is, and is compressed once its entry is
        written (see :mod:`nbcache.store.later`)."""
        return self._put(chunks, compression, size, True)

    def _put(
        self, chunks: Sequence[Any] | Callable[[], Iterable[Any]], compression: Compression, size: int | None, deferrable: bool
    ) -> tuple[BlobRef, bool]:
        passes: Callable[[], Iterable[Any]] = chunks if callable(chunks) else lambda: chunks
        if size is None:
            size = sum(memoryview(c).nbytes for c in passes())
        if deferrable and size >= LATER_MIN and hasattr(self.store, "put_then_name"):
            return self._put_raw(passes, compression, size)
        hasher, sampler = digest.hasher(), Sampler(size)
        for chunk in passes():
            hasher.update(chunk)
            sampler.feed(chunk)
        blob_id, codec = str(hasher.hexdigest()), sampler.codec(compression)
        ref = BlobRef(blob_id, size, codec, size if codec == "none" else -1)
        if self.store.contains(ref.name):
            stored = size if codec == "none" else self.store.size(ref.name)
        else:
            counted = _Counted(passes() if codec == "none" else compress_stream(passes(), size))
            self.store.put(ref.name, counted)
            stored = counted.nbytes
        return BlobRef(blob_id, size, codec, stored), False

    def _put_raw(self, passes: Callable[[], Iterable[Any]], compression: Compression, size: int) -> tuple[BlobRef, bool]:
        """A large values blob of a local store: written as it is, in one pass, hashed on another
        thread as it goes (the write and the digest each take a core) and named after its digest
        once written; compressed later when its samples shrink (see :mod:`nbcache.store.later`).
        Content stored already is not stored again (its copy just written is dropped)."""
        sampler, hashing = Sampler(size), _Hashing()
        found: list[tuple[BlobRef, bool]] = []

        def chunks() -> Iterator[Any]:
            for chunk in passes():
                hashing.feed(chunk)
                sampler.feed(chunk)
                yield chunk

        def name() -> str | None:
            blob_id, codec = hashing.hexdigest(), sampler.codec(compression)
            packed = BlobRef(blob_id, size, "zstd", -1)
            if codec == "zstd" and self.store.contains(packed.name):  # compressed already, by an earlier write
                found.append((BlobRef(blob_id, size, "zstd", self.store.size(packed.name)), False))
                return None
            raw = BlobRef(blob_id, size, "none", size)
            found.append((raw, codec == "zstd"))
            return None if self.store.contains(raw.name) else raw.name

        try:
            self.store.put_then_name(chunks(), name)  # type: ignore[attr-defined]
        finally:
            hashing.close()
        return found[0]

    def compress_later(self, ref: BlobRef, done: Callable[[int], None]) -> None:
        """Compress the raw values blob ``ref`` of a local store on the compression thread:
        ``<id>.zst`` is written, then ``<id>`` removed, and ``done(stored bytes)`` told."""
        later.submit(lambda: self._compress(ref, done))

    def _compress(self, ref: BlobRef, done: Callable[[int], None]) -> None:
        packed = replace(ref, codec="zstd", stored=-1)
        path = self.store.local_path(ref.name)  # type: ignore[attr-defined]
        hasher = digest.hasher()
        try:
            with open(path, "rb") as fh:

                def chunks() -> Iterator[bytes]:
                    while chunk := fh.read(CHUNK):
                        hasher.update(chunk)
                        yield chunk

                counted = _Counted(compress_stream(chunks(), ref.size))
                self.store.put(packed.name, counted)
        except FileNotFoundError:
            return  # removed meanwhile: its entry went
        if hasher.hexdigest() != ref.id:  # not the content it was written with: leave it to readers
            self.store.delete(packed.name)
            return
        if not os.path.exists(path):  # its entry went while it was compressed
            self.store.delete(packed.name)
            return
        os.unlink(path)
        done(counted.nbytes)

    def read_bytes(self, ref: BlobRef, owner: str | None, inline: str | None = None) -> bytes:
        """The content of ``ref``, checked against its id. Small contents already checked are
        kept by id (cells of a notebook share the same few outputs blobs: an empty one, say):
        the id is the content's BLAKE3, so what is kept is what the blob holds. ``inline``: the
        content as its manifest holds it (base64), used when it checks, else the blob is read."""
        if owner is not None and ref.id in self._small:
            return self._small[ref.id]
        held = _held(ref, inline)
        raw = held if held is not None else self._read_bytes(ref, owner)
        if owner is not None and ref.size <= _SMALL:
            if len(self._small) >= _SMALL_COUNT:
                self._small.clear()
            self._small[ref.id] = raw
        return raw

    def _read_bytes(self, ref: BlobRef, owner: str | None) -> bytes:
        try:
            # One byte past what the manifest says: enough to tell a longer blob, never more.
            raw = self.store.get(ref.name, limit=ref.stored_size + 1)
            if ref.codec == "none" and len(raw) != ref.size:
                raise CorruptEntryError(f"blob {ref.id} does not have the {ref.size} bytes its manifest says")
            if ref.codec != "none":
                raw = decompress(raw, ref.size)
        except CorruptEntryError:
            self._damaged(ref, owner)
            raise
        except FileNotFoundError:
            raise CorruptEntryError(f"blob {ref.id} is missing") from None
        except (StoreError, OSError) as exc:  # a read that failed (EIO, ENOMEM...) is no damage
            raise self._outage.fail("read", exc) from exc
        except Exception as exc:  # noqa: BLE001 - zstd errors on a damaged frame
            self._damaged(ref, owner)
            raise CorruptEntryError(f"blob {ref.id} is damaged ({exc})") from exc
        if digest.hexdigest([raw]) != ref.id:
            self._damaged(ref, owner)
            raise CorruptEntryError(f"blob {ref.id} fails its checksum")
        return raw

    def read_frames(self, ref: BlobRef, owner: str | None, inline: str | None = None) -> Frames:
        """The values blob ``ref`` as frames, hashed while read and checked against its id.
        ``inline``: its content as its manifest holds it (base64), used when it checks."""
        held = _held(ref, inline)
        if held is not None:
            try:
                return read_frames(io.BytesIO(held), size=ref.size)
            except Exception:  # noqa: BLE001 - framed wrong for all its right digest: read the blob
                pass
        hasher = digest.hasher()
        try:
            mapped = self._map(ref)
            if mapped is not None:
                frames = frames_from_buffer(mapped, hasher=hasher, size=ref.size)
            else:
                # A small blob in one read (a trivial cell's hit: each read of a file is a call
                # that lets the kernel's other threads in), then framed from memory.
                # (Uncompressed only: its size is exact; a compressed blob another writer stored
                # may be longer than this manifest says, and is read as a stream.)
                small = ref.codec == "none" and 0 <= ref.stored_size <= _READ_WHOLE
                with io.BytesIO(self.store.get(ref.name, limit=ref.stored_size + 1)) if small else self.store.open(ref.name) as fh:
                    reader = open_reader(fh, ref.codec, ref.size)
                    frames = read_frames(reader, hasher=hasher, size=ref.size)
                    if reader.read(1):
                        raise CorruptEntryError("values blob has trailing bytes")
        except FileNotFoundError:
            if ref.codec == "none" and self.store.contains(later.other_name(ref.name)):  # compressed later
                return self.read_frames(replace(ref, codec="zstd", stored=-1), owner)
            if owner is not None:
                self._count_miss(owner)
            raise CorruptEntryError(f"values blob {ref.id} is missing") from None
        except CorruptEntryError as exc:
            self._damaged(ref, owner)
            raise CorruptEntryError(f"values blob {ref.id}: {exc}") from exc
        except (StoreError, OSError) as exc:  # a read that failed (EIO, ENOMEM...) is no damage
            raise self._outage.fail("read", exc) from exc
        except Exception as exc:  # noqa: BLE001 - zstd errors on a damaged frame, short reads...
            self._damaged(ref, owner)
            raise CorruptEntryError(f"values blob {ref.id} is damaged ({exc})") from exc
        if hasher.hexdigest() != ref.id:
            self._damaged(ref, owner)
            raise CorruptEntryError(f"values blob {ref.id} fails its checksum")
        return frames

    def copy_to(self, ref: BlobRef, path: str, owner: str | None) -> None:
        """Write the content of ``ref`` to the new file ``path``, hashed as it goes; raises
        CorruptEntryError (and removes what it wrote) when it does not match its id."""
        hasher, written = digest.hasher(), 0
        try:
            with self.store.open(ref.name) as fh, open(path, "xb") as out:
                reader = open_reader(fh, ref.codec, ref.size)
                buffer = bytearray(_COPY_CHUNK)
                view = memoryview(buffer)
                while written <= ref.size:
                    n = reader.readinto(view) if hasattr(reader, "readinto") else _read_into(reader, view)
                    if not n:
                        break
                    hasher.update(view[:n])
                    out.write(view[:n])
                    written += n
            if written != ref.size or hasher.hexdigest() != ref.id:
                raise CorruptEntryError(f"blob {ref.id} fails its checksum")
        except FileNotFoundError as exc:
            _remove(path)
            if exc.filename == path:
                raise
            raise CorruptEntryError(f"blob {ref.id} is missing") from None
        except CorruptEntryError:
            _remove(path)
            self._damaged(ref, owner)
            raise
        except (StoreError, OSError):
            _remove(path)
            raise
        except Exception as exc:  # noqa: BLE001 - zstd errors on a damaged frame
            _remove(path)
            self._damaged(ref, owner)
            raise CorruptEntryError(f"blob {ref.id} is damaged ({exc})") from exc

    def check(self, ref: BlobRef) -> None:
        """Read ``ref`` through and compare it with its id, holding one chunk at a time."""
        hasher, size = digest.hasher(), 0
        try:
            with self.store.open(ref.name) as fh:
                reader = open_reader(fh, ref.codec, ref.size)
                while chunk := reader.read(_COPY_CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    if size > ref.size:
                        break
        except FileNotFoundError:
            raise CorruptEntryError(f"blob {ref.id} is missing") from None
        if size != ref.size or hasher.hexdigest() != ref.id:
            raise CorruptEntryError(f"blob {ref.id} fails its checksum")

    def _map(self, ref: BlobRef) -> memoryview | None:
        """An uncompressed blob of a local store, mapped copy-on-write: a restore costs a checksum
        pass over the page cache, and arrays use the mapping as their memory (a write copies only
        the page it touches; blobs are never modified in place, only replaced or removed)."""
        local = getattr(self.store, "local_path", None)
        if ref.codec != "none" or local is None or ref.size < _MAP_MIN_BYTES:
            return None
        import mmap

        # No MAP_POPULATE: on a private writable mapping it prefaults every page for writing, which
        # copies the whole file into fresh memory (a read of it, and twice the memory). The checksum
        # pass faults the pages in for reading, from the page cache, without a copy.
        with open(local(ref.name), "rb") as fh:
            found = os.fstat(fh.fileno()).st_size
            if found != ref.size:  # never map more than the manifest says
                raise CorruptEntryError(f"values blob has {found} bytes, its manifest says {ref.size}")
            return memoryview(mmap.mmap(fh.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE))

    def _damaged(self, ref: BlobRef, owner: str | None) -> None:
        """``ref`` failed its checksum: count the miss and remove the blob (see Repair above)."""
        if owner is None:
            return
        self._count_miss(owner)
        try:
            self.store.delete(ref.name)
        except Exception:  # noqa: BLE001 - repair is a nicety: the read already failed cleanly
            pass


def _held(ref: BlobRef, inline: str | None) -> bytes | None:
    """The content of ``ref`` that its manifest holds, if it is that content (its BLAKE3 is the
    id the signature covers); None: read the blob."""
    if inline is None or ref.size > INLINE_MAX or len(inline) > 4 * (ref.size + 2) // 3 + 4:
        return None
    try:
        raw = base64.b64decode(inline, validate=True)
    except ValueError:
        return None
    return raw if len(raw) == ref.size and digest.hexdigest([raw]) == ref.id else None
