"""The values blob's layout: one pickle and its out-of-band buffers, framed.

Pickling is :mod:`nbcache.run.serialize`'s job; this module only frames the bytes, so the store
can write, map and verify a values blob without knowing what is inside.

The frame layout (all integers little-endian)::

    b"NBCV" | u32 version | u32 buffer count | u64 pickle length | u64 length per buffer
    | pickle bytes | padding | buffer 0 | padding | buffer 1 | ...

Version 2 pads with zeros so that every buffer starts at a multiple of 64 bytes from the start of
the blob: a blob mapped from its file (page-aligned) gives arrays and tensors memory as aligned as
an allocation's (torch's kernels assume their elements' natural alignment). Version 1, which
packed the buffers back to back, is still read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..errors import CorruptEntryError

__all__ = ["Frames", "VALUES_VERSION", "frames_from_buffer", "read_frames"]

VALUES_VERSION = 2
_READS = (1, 2)
_ALIGN = 64  # from version 2: where each buffer starts
_MAGIC = b"NBCV"
_HEAD = struct.Struct("<4sIIQ")
_LEN = struct.Struct("<Q")
# Refuse absurd headers from corrupt files before allocating anything.
_MAX_BUFFERS = 1 << 20


@dataclass(frozen=True)
class Frames:
    """A values blob split into its pickle and its out-of-band buffers."""

    pickle: bytes | bytearray | memoryview
    buffers: list[Any]

    def chunks(self) -> list[Any]:
        """The blob as a list of byte chunks, ready to be written or hashed in order."""
        head = _HEAD.pack(_MAGIC, VALUES_VERSION, len(self.buffers), _nbytes(self.pickle))
        lengths = b"".join(_LEN.pack(_nbytes(b)) for b in self.buffers)
        out: list[Any] = [head + lengths, self.pickle]
        at = len(head) + len(lengths) + _nbytes(self.pickle)
        for buffer in self.buffers:
            pad = _pad(at, VALUES_VERSION)
            if pad:
                out.append(bytes(pad))
            out.append(buffer)
            at += pad + _nbytes(buffer)
        return out

    @property
    def size(self) -> int:
        return sum(_nbytes(c) for c in self.chunks())


def _nbytes(chunk: Any) -> int:
    return chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)


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
    return Frames(body, buffers)


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
    return Frames(body, buffers)
