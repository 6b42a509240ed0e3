"""Object-heavy values: nbcache's store and restore against pickle's, in one process, interleaved.

    python benchmarks/bench_objects.py [--workloads W2,W3,W8] [--rounds 5]

``bench.py`` times whole misses and hits in fresh processes; on a busy machine the processes of
two tools can meet very different loads. Here each value is built once and every round times, one
after the other on the same value:

- *store*: ``pickle.dump`` to a file, against nbcache's store of the same value
  (``dump_values``, then ``Cache.write``: the spooled pickle streamed into its blob with its
  checksum, and compressed where that pays: ``auto``; and with ``compression = "none"``);
- *restore*: ``pickle.load`` from the file, against nbcache's (``Cache.read_frames``: reading and
  the integrity check, then ``load_values``), and the integrity check alone.

Targets (issue 19): store <= 1.5x ``pickle.dump``; restore <= 1.2x ``pickle.load`` plus the check.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import PRODUCE  # noqa: E402

from nbcache.run.capture import encode_outputs  # noqa: E402
from nbcache.run.serialize import dump_values, load_values  # noqa: E402
from nbcache.store.backends import LocalFolderStore  # noqa: E402
from nbcache.store.cache import Cache  # noqa: E402


def fields(key: str) -> dict[str, Any]:
    return dict(
        key=key, cell="bench", label=None, source="value = ...", created=time.time(), runtime=1.0, names=("value",),
        deleted=(), refs=(), inputs={}, components={"python": "3.11"}, python="3.11", nbcache="bench", extra={},
    )


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()  # what the last round left is no part of this one
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def bench(workload: str, rounds: int, folder: Path) -> dict[str, float]:
    namespace: dict[str, Any] = {}
    exec(PRODUCE[workload], namespace)
    value = namespace["value"]
    caches = {codec: Cache(LocalFolderStore(str(folder / codec)), key="bench", size_limit=None, compression=codec)  # type: ignore[arg-type]
              for codec in ("auto", "none")}
    outputs = encode_outputs([])
    path = folder / "value.pkl"
    times: dict[str, list[float]] = {k: [] for k in ("pickle.dump", "pickle.load", "store", "store raw", "restore", "check")}

    def dump() -> None:
        with open(path, "wb") as fh:
            pickle.dump(value, fh, protocol=5)

    def load() -> Any:
        with open(path, "rb") as fh:
            return pickle.load(fh)

    def store(cache: Cache, key: str) -> Any:
        with dump_values({"value": value}, namespace={}, refs={}, spool=str(folder)) as frames:
            return cache.write(fields(key), frames, outputs)

    for _ in range(rounds):
        t, _none = timed(dump)
        times["pickle.dump"].append(t)
        key = uuid.uuid4().hex
        t, entry = timed(lambda: store(caches["auto"], key))
        times["store"].append(t)
        raw_key = uuid.uuid4().hex
        t, _raw = timed(lambda: store(caches["none"], raw_key))
        times["store raw"].append(t)
        t, back = timed(load)
        times["pickle.load"].append(t)
        del back
        t, back = timed(lambda: load_values(caches["auto"].read_frames(entry), namespace={}))
        times["restore"].append(t)
        del back
        t, frames = timed(lambda: caches["auto"].read_frames(entry))
        times["check"].append(t)
        del frames
        for cache, k in ((caches["auto"], key), (caches["none"], raw_key)):
            cache.delete(k)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="W2,W3,W8")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| workload | pickle.dump (s) | store (s) | store / pickle.dump | store, no compression | "
          "pickle.load (s) | restore (s) | integrity check (s) | restore / (1.2x pickle.load + check) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for workload in args.workloads.split(","):
        with tempfile.TemporaryDirectory(prefix=f"nbcache-objects-{workload}-") as folder:
            m = bench(workload, args.rounds, Path(folder))
        budget = 1.2 * m["pickle.load"] + m["check"]
        print(
            f"| {workload} | {m['pickle.dump']:.3f} | {m['store']:.3f} | {m['store'] / m['pickle.dump']:.2f}x | "
            f"{m['store raw']:.3f} ({m['store raw'] / m['pickle.dump']:.2f}x) | {m['pickle.load']:.3f} | "
            f"{m['restore']:.3f} | {m['check']:.3f} | {m['restore'] / budget:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
