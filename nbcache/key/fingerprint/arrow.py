"""pyarrow: arrays, chunked arrays, record batches and tables by their Arrow IPC stream.

The IPC stream is Arrow's own complete description of the data: the schema (types, field names,
nullability, metadata, extension types), then per batch the lengths, null counts and every
buffer (validity bitmaps, offsets, data, children, dictionaries), with a slice's offset applied.
Written into the hasher through a file object, it costs what hashing the buffers costs: the
buffers are handed over without a copy (a bitmap at an unaligned slice offset excepted).
A ChunkedArray's or a Table's chunking is part of its value (each chunk is a batch), as it is of
what a hit restores; pandas' and polars' chunks are not (their adapters merge them).

Values under null slots are hashed as they are, so two arrays that differ only there differ
(a needless miss, never a wrong hit). Also used by the pandas adapter for Arrow-backed columns,
and by the polars adapter.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .core import _ARROW, _Walk
from .registry import REGISTRY, Kind

__all__ = ["array", "ipc", "unchunked"]


class _HashSink:
    """What ``pa.PythonFile`` writes into: the walk's hasher."""

    closed = False

    def __init__(self, update: Any):
        self.write = update

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def ipc(w: _Walk, data: Any) -> None:
    """``data`` (a RecordBatch or a Table) as an IPC stream into the walk's hasher."""
    batches = data.to_batches() if isinstance(data, pa.Table) else [data]
    w.length(len(batches))
    try:
        _stream(w, data.schema, batches)
    except pa.ArrowInvalid:
        # Chunks with different dictionaries cannot share one stream: one stream per chunk. The
        # first attempt wrote a prefix already; the batch count above told it apart.
        w.text("per batch")
        for batch in batches:
            _stream(w, data.schema, [batch])


def _stream(w: _Walk, schema: Any, batches: list[Any]) -> None:
    sink = pa.PythonFile(_HashSink(w.update), mode="w")
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)


def array(w: _Walk, v: Any) -> None:
    """An Array as a one-column batch."""
    w.tag(_ARROW)
    w.text(type(v).__qualname__)
    ipc(w, pa.record_batch([v], names=[""]))


def unchunked(w: _Walk, v: Any) -> None:
    """A ChunkedArray whose chunking is no part of its value (pandas splits and merges chunks
    as it pleases): as one Array, merged (a copy) only when there are several chunks."""
    array(w, v.chunk(0) if v.num_chunks == 1 else v.combine_chunks())


def _array(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    array(w, v)


def _chunked(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_ARROW)
    w.text(type(v).__qualname__)
    ipc(w, pa.table({"": v}))


def _tabular(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_ARROW)
    w.text(type(v).__qualname__)
    ipc(w, v)


REGISTRY.register_base(pa.Array, Kind(_array))
REGISTRY.register(pa.ChunkedArray, Kind(_chunked))
REGISTRY.register(pa.RecordBatch, Kind(_tabular))
REGISTRY.register(pa.Table, Kind(_tabular))
