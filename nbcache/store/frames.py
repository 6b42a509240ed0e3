"""The values blob's layout: one pickle and its out-of-band buffers, framed.

Pickling is :mod:`nbcache.run.serialize`'s job; this module only frames the bytes, so the store
can write, map and verify a values blob without knowing what is inside.

The frame layout (all integers little-endian)::

    b"NBCV" | u32 version | u32 buffer count | u64 pickle length | u64 length per buffer
    | pickle bytes | buffer 0 | buffer 1 | ...

On a miss the pickle is not held in memory: the pickler writes it into a :class:`Spool` (memory
up to a few MB, then an unnamed temporary file) and the store reads it back in chunks, so storing
never needs a second full copy of the values. The header needs the pickle's length, which is
known only once pickling ends: that is why the pickle is spooled rather than written straight
into the blob.
"""

from __future__ import annotations

import io
import struct
import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

from ..errors import CorruptEntryError

__all__ = ["CHUNK", "Frames", "Spool", "VALUES_VERSION", "frames_from_buffer", "read_frames"]

# 2: the pickle bytes are two pickles, the references' header then the values (see
# nbcache.run.serialize); version 1 blobs held persistent ids instead.
VALUES_VERSION = 2
# Chunks a spooled pickle is read back in: large enough that the per-chunk cost vanishes, small
# enough to be nothing next to the values.
CHUNK = 1 << 20
# A pickle up to this size stays in memory: a temporary file costs more than it saves there.
SPOOL_MEMORY = 4 << 20
_MAGIC = b"NBCV"
_HEAD = struct.Struct("<4sIIQ")
_LEN = struct.Struct("<Q")
# Refuse absurd headers from corrupt files before allocating anything.
_MAX_BUFFERS = 1 << 20


class Spool:
    """A file-like sink for a pickle being written: in memory up to ``memory_limit`` bytes, then
    in an unnamed temporary file in ``directory`` (the cache's own disk, rather than a ``/tmp``
    that may live in memory), read back in chunks of :data:`CHUNK` bytes."""

    def __init__(self, directory: str | None = None, memory_limit: int = SPOOL_MEMORY):
        self._memory: io.BytesIO | None = io.BytesIO()
        self._file: BinaryIO | None = None
        self._directory = directory
        self._limit = memory_limit
        self.nbytes = 0

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        if self._file is None and self.nbytes + n > self._limit:
            self._file = _temporary_file(self._directory)
            assert self._memory is not None
            with self._memory.getbuffer() as view:
                self._file.write(view)
            self._memory = None
        sink = self._file if self._file is not None else self._memory
        assert sink is not None
        sink.write(data)
        self.nbytes += n
        return n

    @property
    def spilled(self) -> bool:
        """Whether the bytes went to a temporary file."""
        return self._file is not None

    def chunks(self) -> Iterator[bytes]:
        """The bytes written, from the start, in chunks (each call is a new pass)."""
        if self._memory is not None:
            if self.nbytes:
                yield self._memory.getvalue()
            return
        assert self._file is not None
        self._file.seek(0)
        while True:
            data = self._file.read(CHUNK)
            if not data:
                return
            yield data

    def reader(self) -> BinaryIO:
        """A stream over the bytes written, from the start."""
        if self._memory is not None:
            return io.BytesIO(self._memory.getvalue())
        assert self._file is not None
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._memory = io.BytesIO() if self._memory is not None else None


def _temporary_file(directory: str | None) -> BinaryIO:
    try:
        return tempfile.TemporaryFile(dir=directory)
    except OSError:
        if directory is None:
            raise
        return tempfile.TemporaryFile()  # a read-only cache folder: the write fails later, clearly


@dataclass(frozen=True)
class Frames:
    """A values blob split into its pickle and its out-of-band buffers.

    Frames from :func:`dump_values` hold their pickle in a :class:`Spool`: close them (or use
    them in a ``with`` block) once written. Frames read from a blob hold bytes."""

    pickle: bytes | bytearray | memoryview | Spool
    buffers: list[Any]

    def chunks(self) -> Iterator[Any]:
        """The blob as byte chunks in order, ready to be written or hashed (each call is a new
        pass; a spooled pickle is read back in chunks)."""
        head = _HEAD.pack(_MAGIC, VALUES_VERSION, len(self.buffers), _nbytes(self.pickle))
        yield head + b"".join(_LEN.pack(_nbytes(b)) for b in self.buffers)
        if isinstance(self.pickle, Spool):
            yield from self.pickle.chunks()
        else:
            yield self.pickle
        yield from self.buffers

    @property
    def size(self) -> int:
        head = _HEAD.size + _LEN.size * len(self.buffers)
        return head + _nbytes(self.pickle) + sum(_nbytes(b) for b in self.buffers)

    def close(self) -> None:
        if isinstance(self.pickle, Spool):
            self.pickle.close()

    def __enter__(self) -> Frames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _nbytes(chunk: Any) -> int:
    if isinstance(chunk, Spool):
        return chunk.nbytes
    return chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)


def read_frames(stream: Any, *, hasher: Any = None) -> Frames:
    """Read a values blob into memory, feeding every byte read to ``hasher`` (if given).

    Buffers are read with ``readinto`` into the bytearrays that the unpickled arrays will use.
    """

    readinto: Any = getattr(stream, "readinto")

    def exact(n: int) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = readinto(view[got:])
            if not k:
                raise CorruptEntryError(f"values blob is truncated ({got} of {n} bytes)")
            got += k
        if hasher is not None:
            hasher.update(buf)
        return buf

    head = exact(_HEAD.size)
    magic, version, count, pickle_len = _HEAD.unpack(head)
    if magic != _MAGIC:
        raise CorruptEntryError("values blob does not start with the nbcache marker")
    if version != VALUES_VERSION:
        raise CorruptEntryError(f"values blob has version {version}; this nbcache reads {VALUES_VERSION}")
    if count > _MAX_BUFFERS:
        raise CorruptEntryError(f"values blob claims {count} buffers")
    lengths = [_LEN.unpack_from(exact(_LEN.size))[0] for _ in range(count)]
    body = exact(pickle_len)
    buffers = [exact(n) for n in lengths]
    return Frames(body, buffers)


def frames_from_buffer(buffer: memoryview, *, hasher: Any = None) -> Frames:
    """Split a values blob that is already in memory (a copy-on-write mapping of the file)
    into frames without copying: the pickle and the buffers are slices of ``buffer``."""
    if hasher is not None:
        hasher.update(buffer)
    if buffer.nbytes < _HEAD.size:
        raise CorruptEntryError("values blob is truncated")
    magic, version, count, pickle_len = _HEAD.unpack_from(buffer)
    if magic != _MAGIC:
        raise CorruptEntryError("values blob does not start with the nbcache marker")
    if version != VALUES_VERSION:
        raise CorruptEntryError(f"values blob has version {version}; this nbcache reads {VALUES_VERSION}")
    if count > _MAX_BUFFERS or _HEAD.size + count * _LEN.size > buffer.nbytes:
        raise CorruptEntryError(f"values blob claims {count} buffers")
    offset = _HEAD.size
    lengths = []
    for _ in range(count):
        lengths.append(_LEN.unpack_from(buffer, offset)[0])
        offset += _LEN.size
    if offset + pickle_len + sum(lengths) != buffer.nbytes:
        raise CorruptEntryError("values blob has the wrong length")
    body = buffer[offset : offset + pickle_len]
    offset += pickle_len
    buffers = []
    for n in lengths:
        buffers.append(buffer[offset : offset + n])
        offset += n
    return Frames(body, buffers)
