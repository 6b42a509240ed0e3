"""Compression of blobs: zstd at a low level where data compresses, nothing where it does not.

Pickled objects, text and outputs usually shrink a lot; buffers of floats from measurements or
random numbers barely shrink, and compressing them only costs time. ``auto`` compresses a few
samples of a blob and keeps zstd when they shrink by at least 40%: zstd runs at a few hundred
MB/s per core, several times slower than writing raw bytes, so a small saving is not worth it.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Iterable, Iterator, Literal

__all__ = [
    "CODECS", "BoundExceeded", "Codec", "Compression", "Sampler", "compress_stream", "decompress", "load_codec",
    "open_reader",
]

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


def load_codec() -> None:
    """Import zstd now rather than on first use (a restore that is timed should not time an
    import that happens once per kernel)."""
    _zstd()


class Sampler:
    """The codec for a blob under a ``compression`` setting (:meth:`codec`), from samples taken
    of its chunks as they go by: up to ``_SAMPLES`` slices spread over the blob (the pickle head
    and the buffers). One pass, so a blob streamed from a file is read once for its checksum and
    its samples together."""

    def __init__(self, total: int):
        self.total = total
        self._samples: list[bytes] = []
        self._offset = 0
        self._whole = total <= _SAMPLE * _SAMPLES
        self._starts = [] if self._whole else [i * (total // _SAMPLES) for i in range(_SAMPLES)]

    def feed(self, chunk: Any) -> None:
        view = memoryview(chunk).cast("B")
        end = self._offset + view.nbytes
        if self._whole:
            self._samples.append(bytes(view))
        # A sample starts where it falls and ends with its chunk at the latest.
        while self._starts and self._starts[0] < end:
            local = self._starts.pop(0) - self._offset
            self._samples.append(bytes(view[local : local + _SAMPLE]))
        self._offset = end

    def codec(self, compression: Compression) -> Codec:
        if compression == "none" or self.total < _MIN_SIZE:
            return "none"
        if compression == "zstd":
            return "zstd"
        raw = sum(len(s) for s in self._samples)
        packed = len(_zstd().ZstdCompressor(level=_LEVEL).compress(b"".join(self._samples)))
        return "zstd" if packed <= raw * _GOOD_RATIO else "none"


def compress_stream(chunks: Iterable[Any], size: int) -> Iterator[bytes]:
    """zstd-compress the concatenation of ``chunks`` (``size`` bytes in all) into one frame, as
    they come: neither the input nor the output is ever held whole."""
    compressor = _zstd().ZstdCompressor(level=_LEVEL, threads=-1).compressobj(size=size)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    out = compressor.flush()
    if out:
        yield out


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
