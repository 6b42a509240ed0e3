"""The values blob's layout: one pickle and its out-of-band buffers, framed.

Pickling is :mod:`nbcache.run.serialize`'s job; this module only frames the bytes, so the store
can write, map and verify a values blob without knowing what is inside.

The frame layout (all integers little-endian)::

    b"NBCV" | u32 version | u32 buffer count | u64 pickle length | u64 length per buffer
    | pickle bytes | padding | buffer 0 | padding | buffer 1 | ...

From version 2 the padding (zeros) makes every buffer start at a multiple of 64 bytes from the
start of the blob: a blob mapped from its file (page-aligned) gives arrays and tensors memory as
aligned as an allocation's (torch's kernels assume their elements' natural alignment). Version 1
packed the buffers back to back.

Version 3 changed the pickle bytes, not the framing: they are two pickles, a header that binds
the names the values refer to, then the values (see :mod:`nbcache.run.serialize`); versions 1 and
2 held one pickle with persistent ids instead. All three are read; :attr:`Frames.version` tells
the unpickler which kind of pickle it has.

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

# 2: buffers aligned to 64 bytes. 3: the pickle bytes are two pickles, the references' header
# then the values (see nbcache.run.serialize); versions 1 and 2 held persistent ids instead.
VALUES_VERSION = 3
_READS = (1, 2, 3)
_ALIGN = 64  # from version 2: where each buffer starts
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

    def __len__(self) -> int:
        return self.nbytes

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
    version: int = VALUES_VERSION
    """The layout's version: how the buffers are padded and what kind of pickle this is."""

    def chunks(self) -> Iterator[Any]:
        """The blob as byte chunks in order, ready to be written or hashed (each call is a new
        pass; a spooled pickle is read back in chunks)."""
        head = _HEAD.pack(_MAGIC, self.version, len(self.buffers), _nbytes(self.pickle))
        lengths = [_nbytes(b) for b in self.buffers]
        yield head + b"".join(_LEN.pack(n) for n in lengths)
        if isinstance(self.pickle, Spool):
            yield from self.pickle.chunks()
        else:
            yield self.pickle
        at = _HEAD.size + _LEN.size * len(lengths) + _nbytes(self.pickle)
        for buffer, n in zip(self.buffers, lengths):
            pad = _pad(at, self.version)
            if pad:
                yield bytes(pad)
            yield buffer
            at += pad + n

    @property
    def size(self) -> int:
        head = _HEAD.size + _LEN.size * len(self.buffers)
        return _laid_out(head + _nbytes(self.pickle), [_nbytes(b) for b in self.buffers], self.version)

    def close(self) -> None:
        if isinstance(self.pickle, Spool):
            self.pickle.close()

    def __enter__(self) -> Frames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _nbytes(chunk: Any) -> int:
    return chunk.nbytes if isinstance(chunk, (memoryview, Spool)) else len(chunk)


def _pad(at: int, version: int) -> int:
    """The padding before a buffer that would start at offset ``at``."""
    return -at % _ALIGN if version >= 2 else 0


def read_frames(stream: Any, *, hasher: Any = None, size: int | None = None) -> Frames:
    """Read a values blob into memory, feeding every byte read to ``hasher`` (if given).

    Buffers are read with ``readinto`` into the bytearrays that the unpickled arrays will use.
    ``size`` is the blob's size as its signed manifest records it: lengths in the header that do
    not add up to it fail before anything is allocated for them.
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
    _check(magic, version)
    if count > _MAX_BUFFERS or (size is not None and _HEAD.size + count * _LEN.size > size):
        raise CorruptEntryError(f"values blob claims {count} buffers")
    lengths = [_LEN.unpack_from(exact(_LEN.size))[0] for _ in range(count)]
    if size is not None and _laid_out(_HEAD.size + count * _LEN.size + pickle_len, lengths, version) != size:
        raise CorruptEntryError(f"values blob's frames do not add up to the {size} bytes its manifest says")
    body = exact(pickle_len)
    at = _HEAD.size + count * _LEN.size + pickle_len
    buffers = []
    for n in lengths:
        pad = _pad(at, version)
        if pad:
            exact(pad)
        buffers.append(exact(n))
        at += pad + n
    return Frames(body, buffers, version)


def _laid_out(at: int, lengths: list[int], version: int) -> int:
    """Where the blob ends: its buffers of ``lengths`` laid out from offset ``at``."""
    for n in lengths:
        at += _pad(at, version) + n
    return at


def _check(magic: bytes, version: int) -> None:
    if magic != _MAGIC:
        raise CorruptEntryError("values blob does not start with the nbcache marker")
    if version not in _READS:
        raise CorruptEntryError(f"values blob has version {version}; this nbcache reads versions {', '.join(map(str, _READS))}")


def frames_from_buffer(buffer: memoryview, *, hasher: Any = None, size: int | None = None) -> Frames:
    """Split a values blob that is already in memory (a copy-on-write mapping of the file)
    into frames without copying: the pickle and the buffers are slices of ``buffer``."""
    if size is not None and buffer.nbytes != size:
        raise CorruptEntryError(f"values blob has {buffer.nbytes} bytes, its manifest says {size}")
    if hasher is not None:
        hasher.update(buffer)
    if buffer.nbytes < _HEAD.size:
        raise CorruptEntryError("values blob is truncated")
    magic, version, count, pickle_len = _HEAD.unpack_from(buffer)
    _check(magic, version)
    if count > _MAX_BUFFERS or _HEAD.size + count * _LEN.size > buffer.nbytes:
        raise CorruptEntryError(f"values blob claims {count} buffers")
    offset = _HEAD.size
    lengths = []
    for _ in range(count):
        lengths.append(_LEN.unpack_from(buffer, offset)[0])
        offset += _LEN.size
    starts = []
    at = offset + pickle_len
    for n in lengths:
        at += _pad(at, version)
        starts.append(at)
        at += n
    if at != buffer.nbytes:
        raise CorruptEntryError("values blob has the wrong length")
    body = buffer[offset : offset + pickle_len]
    buffers = [buffer[start : start + n] for start, n in zip(starts, lengths)]
    return Frames(body, buffers, version)
