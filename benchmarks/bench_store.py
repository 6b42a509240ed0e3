"""Store benchmarks (not run by ``make test``): ``python benchmarks/bench_store.py [--gb 1]``.

- store throughput for numeric data (target >= 1 GB/s), and restore throughput;
- ``Cache.lookup`` with 10,000 entries in the store (target <= 2 ms);
- ``nbcache ls`` with 10,000 entries, as a subprocess (target <= 1 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import numpy as np

from nbcache.store.cache import Cache
from nbcache.run.capture import encode_outputs
from nbcache.run.serialize import dump_values
from nbcache.store.backends import LocalFolderStore
from nbcache.run.serialize import load_values


def fields(key: str, label: str | None = None) -> dict[str, Any]:
    return dict(
        key=key, cell=label or key[:8], label=label, source="x = f()", created=time.time(), runtime=1.0,
        names=("x",), deleted=(), refs=(), inputs={}, components={"python": "3.11"}, python="3.11",
        nbcache="bench", extra={},
    )


def bench_throughput(root: str, gigabytes: float, repeat: int) -> None:
    cache = Cache(LocalFolderStore(root), key="bench", size_limit=None)
    n = int(gigabytes * 1e9 / 8)
    rng = np.random.default_rng(0)
    outputs = encode_outputs([])
    kinds = (
        ("random float64", rng.random(n)),
        ("smooth float64", np.linspace(0, 1, n)),
        ("repeating int64", np.tile(np.arange(1000, dtype=np.int64), n // 1000)),  # compresses: zstd
    )
    for kind, array in kinds:
        writes, reads = [], []
        for _ in range(repeat):
            key = uuid.uuid4().hex
            frames = dump_values({"x": array}, namespace={}, refs={})
            start = time.perf_counter()
            entry = cache.write(fields(key), frames, outputs)
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            back = load_values(cache.read_frames(cache.lookup(key)), namespace={})["x"]  # type: ignore[arg-type]
            reads.append(time.perf_counter() - start)
            assert back.shape == array.shape
            del back
            cache.delete(key)
        size = array.nbytes / 1e9
        print(
            f"store {kind:15s} {size:.2f} GB ({entry.values.codec:4s}, stored {entry.values.stored_size / 1e9:.2f} GB): "
            f"write {size / min(writes):.2f} GB/s, read {size / min(reads):.2f} GB/s (best of {repeat})",
            flush=True,
        )


def bench_many(root: str, count: int) -> None:
    cache = Cache(LocalFolderStore(root), key="bench", size_limit=None)
    keys = []
    start = time.perf_counter()
    outputs = encode_outputs([{"type": "stream", "name": "stdout", "text": "hello\n"}])
    for i in range(count):
        key = uuid.uuid4().hex
        frames = dump_values({"x": i}, namespace={}, refs={})
        cache.write(fields(key, label=f"label {i % 50}"), frames, outputs)
        keys.append(key)
    print(f"wrote {count} small entries in {time.perf_counter() - start:.1f} s", flush=True)
    cache.close()

    cache = Cache(LocalFolderStore(root), key="bench", size_limit=None)
    cache.lookup(keys[0])  # open the index
    times = []
    for key in keys[:: max(1, count // 1000)]:
        start = time.perf_counter()
        entry = cache.lookup(key)
        times.append(time.perf_counter() - start)
        assert entry is not None
    times.sort()
    print(
        f"lookup with {count} entries: median {statistics.median(times) * 1000:.3f} ms, "
        f"p95 {times[int(len(times) * 0.95)] * 1000:.3f} ms, p99 {times[int(len(times) * 0.99)] * 1000:.3f} ms (target <= 2 ms)"
    )
    start = time.perf_counter()
    missing = cache.lookup(uuid.uuid4().hex)
    print(f"lookup of a missing key: {(time.perf_counter() - start) * 1000:.3f} ms")
    assert missing is None
    cache.close()

    env = dict(os.environ, NBCACHE_KEY="bench")
    for args in (["ls"], ["ls", "--json"], ["stats", "--json"]):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "nbcache.cli", "--dir", root, *args], capture_output=True, env=env)
            runs.append(time.perf_counter() - start)
            assert proc.returncode == 0, proc.stderr
        print(f"nbcache {' '.join(args)} with {count} entries: {min(runs):.3f} s (whole process, best of 3; target <= 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description="nbcache store benchmarks")
    parser.add_argument("--gb", type=float, default=1.0, help="size of the numeric array to store")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--dir", default=None, help="where to put the benchmark caches (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        os.environ.setdefault("JUPYTER_DATA_DIR", os.path.join(tmp, "jupyter"))
        bench_throughput(os.path.join(tmp, "big"), args.gb, args.repeat)
        bench_many(os.path.join(tmp, "many"), args.entries)


if __name__ == "__main__":
    main()
