"""How long the cache dashboard takes to open and to refresh with 10,000 entries.

    .venv/bin/python benchmarks/bench_dashboard.py [--entries N]

Writes N synthetic entries (manifests naming a few shared blobs of varied sizes) into a temporary
store, then times, in this process: importing the dashboard (ipywidgets, matplotlib), the first
open (every manifest read), a second open, and the refresh that follows a cell.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

from nbcache import __version__
from nbcache.store.cache import BlobRef, Cache, Entry
from nbcache.store.backends import open_store
from nbcache.store.manifest import sign_manifest


def fill(cache: Cache, count: int) -> None:
    rng = random.Random(6)
    cache.ensure_layout()
    blobs = [cache.put_blob([os.urandom(rng.randint(100, 200_000))]) for _ in range(64)]
    now = time.time()
    for i in range(count):
        source = f"result_{i} = slow_step({i})\n"
        entry = Entry(
            key=f"{i:032x}", cell=f"cell-{i}", label=f"step {i}" if i % 3 else None, source=source,
            created=now - rng.uniform(0, 86400 * 30), runtime=rng.lognormvariate(0, 1.5),
            names=(f"result_{i}",), deleted=(), refs=(), inputs={"slow_step": "00" * 16}, components={},
            values=rng.choice(blobs), outputs=BlobRef(blobs[0].id, blobs[0].size), python="3.11", nbcache=__version__,
        )
        cache.store.put(cache.manifest_name(entry.key), [sign_manifest(entry, cache.secret)])  # signed, as Cache.write does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cache = Cache(open_store(folder))
        start = time.perf_counter()
        fill(cache, args.entries)
        print(f"wrote {args.entries:,} synthetic entries in {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        import matplotlib.backends.backend_agg  # noqa: F401 - imported on the first chart otherwise
        import matplotlib.figure  # noqa: F401

        from nbcache.jupyter.dashboard_widget import Dashboard

        print(f"import ipywidgets + matplotlib + dashboard: {time.perf_counter() - start:.3f} s")

        start = time.perf_counter()
        first = Dashboard(lambda: cache)
        print(f"first open ({args.entries:,} entries, every manifest read, charts drawn): {time.perf_counter() - start:.3f} s")

        start = time.perf_counter()
        dash = Dashboard(lambda: cache)
        print(f"open ({args.entries:,} entries): {time.perf_counter() - start:.3f} s")

        start = time.perf_counter()
        dash.refresh()
        print(f"refresh after a cell (nothing new): {time.perf_counter() - start:.3f} s")
        one = next(iter(cache.entries()))
        cache.store.put(cache.manifest_name("f" * 32), [sign_manifest(Entry(**{**one.__dict__, "key": "f" * 32}), cache.secret)])
        start = time.perf_counter()
        dash.refresh(sync=True)
        print(f"refresh with the Refresh button (one new entry from another kernel): {time.perf_counter() - start:.3f} s")
        start = time.perf_counter()
        dash.page = 5
        print(f"turn a page: {time.perf_counter() - start:.3f} s")
        first.close()
        dash.close()


if __name__ == "__main__":
    main()
