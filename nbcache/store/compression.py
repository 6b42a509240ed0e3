"""Compression of blobs: zstd at a low level where data compresses, nothing where it does not.

Pickled objects, text and outputs usually shrink a lot; buffers of floats from measurements or
random numbers barely shrink, and compressing them only costs time. ``auto`` compresses a few
samples of a blob and keeps zstd when they shrink by at least 40%: zstd runs at a few hundred
MB/s per core, several times slower than writing raw bytes, so a small saving is not worth it.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Iterator, Literal, Sequence

__all__ = ["CODECS", "BoundExceeded", "Codec", "Compression", "choose", "compress_chunks", "decompress", "open_reader"]

Compression = Literal["auto", "zstd", "none"]
Codec = Literal["zstd", "none"]
CODECS: tuple[Codec, ...] = ("zstd", "none")

# Level 1 compresses at several hundred MB/s per core; higher levels cost far more than they save
# on a cache that is read back on the same or a nearby machine.
_LEVEL = 1
_SAMPLE = 64 * 1024
_SAMPLES = 4
_MIN_SIZE = 512  # tiny blobs: the frame overhead beats the gain
_GOOD_RATIO = 0.6


def _zstd() -> Any:
    import zstandard

    return zstandard


def choose(chunks: Sequence[Any], compression: Compression) -> Codec:
    """The codec for a blob made of ``chunks`` under the ``compression`` setting."""
    if compression == "none":
        return "none"
    total = sum(memoryview(c).nbytes for c in chunks)
    if total < _MIN_SIZE:
        return "none"
    if compression == "zstd":
        return "zstd"
    samples = list(_samples(chunks, total))
    raw = sum(len(s) for s in samples)
    packed = len(_zstd().ZstdCompressor(level=_LEVEL).compress(b"".join(samples)))
    return "zstd" if packed <= raw * _GOOD_RATIO else "none"


def _samples(chunks: Sequence[Any], total: int) -> Iterator[bytes]:
    """Up to ``_SAMPLES`` slices spread over the blob (the pickle head and the buffers)."""
    views = [memoryview(c).cast("B") for c in chunks]
    if total <= _SAMPLE * _SAMPLES:
        for view in views:
            yield bytes(view)
        return
    step = total // _SAMPLES
    for i in range(_SAMPLES):
        start = i * step
        offset = 0
        for view in views:
            if offset + view.nbytes > start:
                local = start - offset
                yield bytes(view[local : local + _SAMPLE])
                break
            offset += view.nbytes


def compress_chunks(chunks: Sequence[Any]) -> list[bytes]:
    """zstd-compress the concatenation of ``chunks``, one frame, without joining them first."""
    compressor = _zstd().ZstdCompressor(level=_LEVEL, threads=-1).compressobj(
        size=sum(memoryview(c).nbytes for c in chunks)
    )
    out = [compressor.compress(c) for c in chunks]
    out.append(compressor.flush())
    return [o for o in out if o]


def decompress(raw: bytes, size: int) -> bytes:
    """The content of a zstd blob whose content is ``size`` bytes, the size its signed manifest
    records: no more is ever allocated. A frame whose header claims more fails at once (zstd
    would otherwise allocate what the header says before any check of the content)."""
    zstd = _zstd()
    claimed = zstd.frame_content_size(raw)  # -1: not in the header
    if claimed > size:
        raise BoundExceeded(f"its zstd frame claims {claimed} bytes, its manifest says {size}")
    out = zstd.ZstdDecompressor(max_window_size=_window(size)).decompress(raw, max_output_size=size)
    if len(out) > size:
        raise BoundExceeded(f"it holds more than the {size} bytes its manifest says")
    return bytes(out)


def open_reader(fh: BinaryIO, codec: Codec, size: int) -> BinaryIO:
    """A reader of the content of a stored blob (``readinto`` works on both); the decompressor's
    window is bounded by ``size``, the content size the signed manifest records (the caller
    reads no more than that)."""
    if codec == "none":
        return fh
    reader: BinaryIO = _zstd().ZstdDecompressor(max_window_size=_window(size)).stream_reader(fh, read_across_frames=True)
    return reader


class BoundExceeded(ValueError):
    """A blob claims more content than its signed manifest records."""


def _window(size: int) -> int:
    # zstd's window never needs to exceed the content; its own default cap is 128 MiB.
    return min(1 << 27, max(1 << 20, 1 << max(size - 1, 1).bit_length()))
