"""Store benchmarks (not run by ``make test``): ``python benchmarks/bench_store.py [--gb 1]``.

- digest throughput on 1 GB: BLAKE3 (the blob id, all cores and one), xxh3-128 (the format-2
  id), keyed BLAKE3 and HMAC-SHA256 (the alternatives);
- store throughput for numeric data (target >= 1 GB/s), and restore throughput;
- ``Cache.lookup`` with 10,000 entries written through ``Cache.write`` (target <= 2 ms);
- with 100,000 entries (``--scale``), in a local folder and on the S3 server the tests start
  (``--s3``): the first lookup on a machine with no index (target <= 2 s), a lookup with a warm
  index (target <= 2 ms), the first sync and a sync with nothing new, ``nbcache ls`` (target
  <= 2 s), the dashboard's open (target <= 2 s) and the JupyterLab panel's list after a cell.
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
from nbcache.store.sync import REMOTE_SYNC_MAX_AGE
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
        best = min(cli_times(root, args, env))
        print(f"nbcache {' '.join(args)} with {count} entries: {best:.3f} s (whole process, best of 3; target <= 1 s)")


def cli_times(url: str, args: list[str], env: dict[str, str]) -> list[float]:
    """3 runs of ``nbcache --dir URL ARGS``, each a whole process, in seconds (the first syncs
    the index when it is stale; the next ones, moments later, answer from the index)."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nbcache.cli", "--dir", url, *args], capture_output=True, env=env)
        runs.append(time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
    return runs


def bench_digests(gigabytes: float) -> None:
    import hashlib
    import hmac

    import blake3
    import xxhash

    data = np.random.default_rng(0).random(int(gigabytes * 1e9 / 8)).tobytes()
    key = os.urandom(32)
    auto = blake3.blake3.AUTO
    cases = (
        ("BLAKE3-256, all cores (blob ids)", lambda: blake3.blake3(data, max_threads=auto).hexdigest()),
        ("BLAKE3-256, one core", lambda: blake3.blake3(data).hexdigest()),
        ("keyed BLAKE3, all cores", lambda: blake3.blake3(data, key=key, max_threads=auto).hexdigest()),
        ("xxh3-128 (format 2, not cryptographic)", lambda: xxhash.xxh3_128_hexdigest(data)),
        ("HMAC-SHA256", lambda: hmac.new(key, data, hashlib.sha256).hexdigest()),
    )
    for name, run in cases:
        best = min(_timed(run) for _ in range(3))
        print(f"digest {name:40s} {len(data) / best / 1e9:6.2f} GB/s ({len(data) / 1e9:.1f} GB, best of 3, {os.cpu_count()} cores)", flush=True)


def _timed(run: Any) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def fill_synthetic(cache: Cache, count: int, threads: int, snapshot: bool = False) -> list[str]:
    """``count`` signed manifests naming a few shared blobs (as Cache.write writes them, minus the
    blob writes): a store of that many entries in minutes rather than hours. ``snapshot``: the
    writer indexes them and leaves the store's snapshot of its index, as a machine that synced
    them would (a slow server then needs no hour of reads before the other figures)."""
    import concurrent.futures
    import random

    from nbcache import __version__
    from nbcache.store.cache import BlobRef, Entry
    from nbcache.store.manifest import sign_manifest

    rng = random.Random(6)
    cache.ensure_layout()
    outputs = encode_outputs([{"type": "stream", "name": "stdout", "text": "hello\n"}])
    values = []
    for i in range(32):
        with dump_values({"x": i}, namespace={}, refs={}) as frames:
            values.append(cache.put_blob(frames.chunks, frames.size))
    out_ref = cache.put_blob([outputs])
    now = time.time()
    keys = [f"{i:032x}" for i in range(count)]

    def put(i: int) -> Entry:
        entry = Entry(
            key=keys[i], cell=f"cell-{i % 500}", label=f"step {i % 50}" if i % 3 else None, source=f"x = f({i})\n",
            created=now - rng.uniform(0, 86400 * 30), runtime=rng.lognormvariate(0, 1.5), names=("x",), deleted=(),
            refs=(), inputs={"f": "00" * 16}, components={}, values=values[i % len(values)], outputs=out_ref,
            python="3.11", nbcache=__version__, extra={"mutated": []},
        )
        cache.store.put(cache.manifest_name(entry.key), [sign_manifest(entry, cache.secret)])
        return entry

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        entries = list(pool.map(put, range(count)))
    if snapshot:
        from nbcache.store import catalog
        from nbcache.store.index import IndexRow
        from nbcache.store.sync import manifest_stamps

        listed = time.time() + cache.store_clock()  # when the listing was made, on the store's clock
        stamps = manifest_stamps(cache.store)  # a snapshot holds the rows a listing stamped
        cache.index.upsert([IndexRow.from_entry(entry, stamps[entry.key], born=entry.created) for entry in entries])
        catalog.write(cache, listed if cache.remote else None)
    return keys


def bench_scale(
    url: str, count: int, env: dict[str, str], threads: int, storage_options: dict[str, Any] | None = None,
    writer_snapshot: bool = False,
) -> None:
    """The 100,000-entry figures for the store at ``url`` (``writer_snapshot``: see fill_synthetic)."""
    from nbcache.jupyter.comm import KernelBridge
    from nbcache.store.backends import open_store

    where = "S3 (Swift)" if url.startswith("s3://") else "local"
    start = time.perf_counter()
    writer = Cache(open_store(url, storage_options), key="bench", size_limit=None, index_path=":memory:")
    keys = fill_synthetic(writer, count, threads, snapshot=writer_snapshot)
    print(f"[{where}] wrote {count:,} signed manifests in {time.perf_counter() - start:.1f} s", flush=True)

    def fresh(name: str | None = None) -> Cache:
        # A machine with no index (name: its own index file; None: the default, the CLI's).
        index = None if name is None else os.path.join(os.environ["XDG_CACHE_HOME"], f"{where}-{name}.sqlite")
        return Cache(open_store(url, storage_options), key="bench", size_limit=None, index_path=index)

    cache = fresh()
    start = time.perf_counter()
    assert cache.lookup(keys[count // 2]) is not None
    print(f"[{where}] first lookup on a machine with no index, {count:,} entries: {(time.perf_counter() - start) * 1000:.1f} ms (target <= 2 s)", flush=True)
    start = time.perf_counter()
    report = cache.sync()
    what = "the writer's snapshot in the store" if writer_snapshot else "no snapshot in the store"
    print(
        f"[{where}] first sync, {what} ({report.from_snapshot:,} rows from a snapshot, {report.read:,} manifests read, "
        + (f"one listing of {report.listed:,}" if report.listed >= 0 else f"no listing, {report.changes} change log records")
        + f"): {time.perf_counter() - start:.2f} s", flush=True,
    )
    other = fresh("second")
    start = time.perf_counter()
    report = other.sync()
    print(
        f"[{where}] first sync of another machine ({report.from_snapshot:,} rows from the snapshot, {report.read} manifests read): "
        f"{time.perf_counter() - start:.2f} s", flush=True,
    )
    other.close()

    for warm in (False, True):  # an index from a snapshot holds no manifests: the first lookup of a key reads one
        times = []
        for key in keys[:: max(1, count // 1000)]:
            start = time.perf_counter()
            assert cache.lookup(key) is not None
            times.append(time.perf_counter() - start)
        times.sort()
        what = "lookup with a warm index" if warm else "first lookup of each key after the first sync"
        print(
            f"[{where}] {what}, {count:,} entries: median {statistics.median(times) * 1000:.3f} ms, "
            f"p99 {times[int(len(times) * 0.99)] * 1000:.3f} ms (target <= 2 ms warm)", flush=True,
        )
    for _ in range(2):  # a listing, then (local stores) the folder's stamp alone; remote: the change log
        start = time.perf_counter()
        report = cache.sync()
        if report.changes >= 0:
            how = f"the change log's hour folders since the last sync, {report.changes} records, no listing"
        elif report.listed < 0:
            how = "the folder unchanged, no listing"
        else:
            how = f"one listing of {report.listed:,}"
        print(f"[{where}] sync with nothing new ({how}, {report.read} read): {time.perf_counter() - start:.2f} s", flush=True)
    if cache.remote:
        start = time.perf_counter()
        report = cache.sync(full=True)
        print(
            f"[{where}] the same with a full listing (as before the change log; doctor, gc, clear --all): one listing of "
            f"{report.listed:,}, {report.read} read: {time.perf_counter() - start:.2f} s", flush=True,
        )

    bridge = KernelBridge(None, None, lambda: cache, None)  # type: ignore[arg-type]
    start = time.perf_counter()
    message = bridge._entries()
    print(f"[{where}] JupyterLab panel's entry list, built from the index ({message['totals']['count']:,} entries): {time.perf_counter() - start:.2f} s", flush=True)
    cache.record_hit(cache.lookup(keys[0]), 0.01)  # type: ignore[arg-type]
    start = time.perf_counter()
    message = bridge._entries(changed=keys[0])
    print(f"[{where}] the panel's list after a cell (that entry's row read again): {time.perf_counter() - start:.3f} s", flush=True)
    cache.close()

    for args in (["ls"], ["ls", "--json"]):
        due = fresh()  # the CLI's index: last synced long enough ago that the first run syncs
        due.index.set_meta("synced_at", repr(time.time() - 10 * REMOTE_SYNC_MAX_AGE))
        due.close()
        runs = cli_times(url, args, env)
        print(
            f"[{where}] nbcache {' '.join(args)} with {count:,} entries: {runs[0]:.2f} s due a sync, then {min(runs[1:]):.2f} s "
            f"from the index (whole processes; target <= 2 s; runs {', '.join(f'{r:.2f}' for r in runs)} s)", flush=True,
        )

    import matplotlib.backends.backend_agg  # noqa: F401 - imported on the first chart otherwise
    import matplotlib.figure  # noqa: F401

    from nbcache.jupyter.dashboard_widget import Dashboard

    cache = fresh()
    cache.index.set_meta("synced_at", repr(time.time() - 10 * REMOTE_SYNC_MAX_AGE))  # due a sync
    start = time.perf_counter()
    dash = Dashboard(lambda: cache)
    print(f"[{where}] dashboard open with {count:,} entries (a sync if due, then the index): {time.perf_counter() - start:.2f} s (target <= 2 s)", flush=True)
    dash.close()
    cache.close()


def _swift(root: str) -> Any:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    from swift_server import SwiftS3  # the tests' real S3-protocol server
    from pathlib import Path

    server = SwiftS3(Path(root))
    server.start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="nbcache store benchmarks")
    parser.add_argument("--gb", type=float, default=1.0, help="size of the numeric array to store")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--dir", default=None, help="where to put the benchmark caches (default: a temp folder)")
    parser.add_argument("--scale", type=int, default=100_000, help="entries for the local scale figures (0: skip)")
    parser.add_argument("--s3", action=argparse.BooleanOptionalAction, default=True, help="the scale figures on S3 too")
    parser.add_argument(
        "--s3-scale", type=int, default=5_000,
        help="entries on the S3 server (0: skip; Swift here writes about 40 small objects a second and reads about 25: 100,000 take over 40 min to write and an hour to sync without a snapshot)",
    )
    parser.add_argument(
        "--s3-writer-snapshot", action="store_true",
        help="on S3, the writer leaves a snapshot of its index, so the first sync need not read every manifest",
    )
    parser.add_argument("--only", choices=("digests", "throughput", "many", "scale"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        os.environ.setdefault("JUPYTER_DATA_DIR", os.path.join(tmp, "jupyter"))
        os.environ.setdefault("XDG_CACHE_HOME", os.path.join(tmp, "xdg-cache"))
        if args.only in (None, "digests"):
            bench_digests(args.gb)
        if args.only in (None, "throughput"):
            bench_throughput(os.path.join(tmp, "big"), args.gb, args.repeat)
        if args.only in (None, "many"):
            bench_many(os.path.join(tmp, "many"), args.entries)
        if args.only in (None, "scale"):
            env = dict(os.environ, NBCACHE_KEY="bench")
            if args.scale:
                bench_scale(os.path.join(tmp, "scale"), args.scale, env, threads=2)
            if args.s3 and args.s3_scale:
                server = _swift(os.path.join(tmp, "swift"))
                try:
                    server.make_bucket("bench")
                    env.update(server.env())
                    os.environ.update(server.env())
                    bench_scale("s3://bench/cache", args.s3_scale, env, threads=32, writer_snapshot=args.s3_writer_snapshot)
                finally:
                    server.stop()


if __name__ == "__main__":
    main()
