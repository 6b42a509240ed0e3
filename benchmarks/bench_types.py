"""`make bench`: the key rate of the library types nbcache knows, and a tensor hit against torch.load.

Key rates: nbcache's fingerprint of a value (what a cell's key costs for that input) against
xxh3-128 over the value's raw buffers, measured in the same process, alternating (the hash alone
over the bytes the fingerprint must read, so the ratio is the encoding's overhead). Each value is
built in a fresh process; the best of ``--rounds`` runs of each (the machine is shared: the best
run is the one least disturbed), at least 20 for values under 100 MB.

  tensor      a 1 GB CPU float32 tensor
  polars      an 800 MB polars DataFrame (10 columns x 10M float64)
  arrow str   pandas strings, 2M values, Arrow-backed (pandas 3's default ``str`` with pyarrow)
  object str  the same 2M strings as an object column, and as a list (raw: their UTF-8 bytes)
  long str    2M strings of 60 characters as an object column

A tensor hit: an 800 MB tensor made by a ``%%cache`` cell, restored in a fresh process (the hit
through the real magic, torch imported first), against ``torch.load`` of the same tensor saved
with ``torch.save``, in another fresh process, the file in the page cache.

Writes benchmarks/results_types.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name -> (code making `value`, code giving `raw`: the buffers the fingerprint has to read)
VALUES = {
    "tensor": (
        "import torch\ntorch.manual_seed(0)\nvalue = torch.randn(268_435_456)",  # 2**28 float32: 1 GiB
        "raw = [memoryview(value.numpy())]",
    ),
    "polars": (
        "import numpy as np, polars as pl\nrng = np.random.default_rng(0)\n"
        "value = pl.DataFrame({f'c{i}': rng.random(10_000_000) for i in range(10)})",
        "raw = [b for column in value.to_arrow().columns for chunk in column.chunks for b in chunk.buffers() if b is not None]",
    ),
    "arrow str": (
        "import pandas as pd\nvalue = pd.Series([f'user-{i % 50_000:05d}' for i in range(2_000_000)])\nassert 'pyarrow' in repr(value.dtype) or value.array.__class__.__name__.startswith('Arrow')",
        "raw = [b for chunk in value.array._pa_array.chunks for b in chunk.buffers() if b is not None]",
    ),
    "object str": (
        "import pandas as pd\nvalue = pd.Series([f'user-{i % 50_000:05d}' for i in range(2_000_000)], dtype=object)",
        "raw = ['\\n'.join(value.tolist()).encode()]",
    ),
    "list of str": (
        "value = [f'user-{i % 50_000:05d}' for i in range(2_000_000)]",
        "raw = ['\\n'.join(value).encode()]",
    ),
    "long str": (
        "import pandas as pd\nvalue = pd.Series([f'{i:08d}' + 'x' * 52 for i in range(2_000_000)], dtype=object)",
        "raw = ['\\n'.join(value.tolist()).encode()]",
    ),
}
TARGETS = {"tensor": 8.0, "polars": 8.0, "arrow str": 2.0, "object str": 1.0, "list of str": 1.0, "long str": 1.0}

KEY_WORKER = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import xxhash
from nbcache.key.fingerprint import Fingerprinter
build, buffers, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
ns = {}
exec(build, ns)
exec(buffers, ns)
value, raw = ns["value"], ns["raw"]
nbytes = sum(memoryview(b).nbytes for b in raw)
def fingerprint():
    Fingerprinter().digest(value)
def hash_raw():
    h = xxhash.xxh3_128()
    for b in raw:
        h.update(b)
    h.digest()
fingerprint()  # once first: the adapter's import is not part of a lookup
key, ref = [], []
for _ in range(rounds if nbytes >= 100e6 else max(rounds, 20)):
    t = time.perf_counter(); fingerprint(); key.append(time.perf_counter() - t)
    t = time.perf_counter(); hash_raw(); ref.append(time.perf_counter() - t)
print(json.dumps({"bytes": nbytes, "key": min(key), "xxh3": min(ref)}))
"""

TENSOR = "import torch\ntorch.manual_seed(0)\nvalue = torch.randn(200_000_000)\n"  # 800 MB of float32
HIT_WORKER = """
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
phase, workdir = sys.argv[1], sys.argv[2]
import torch  # imported before timing, as in a notebook that uses torch
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_cell("%load_ext nbcache")
ip.run_cell("%config NbCache.quiet = True")
cell = "%%cache\\n" + sys.argv[3]
t = time.perf_counter()
result = ip.run_cell(cell)
seconds = time.perf_counter() - t
assert result.success, result.error_in_exec
status = __import__("nbcache.jupyter.extension", fromlist=["session"]).session(ip).magics.engine.last.status
value = ip.user_ns["value"]
if phase == "miss":
    torch.save(value, os.path.join(workdir, "tensor.pt"))
print(json.dumps({"seconds": seconds, "status": status, "bytes": value.numel() * value.element_size()}))
"""
LOAD_WORKER = """
import json, sys, time
import torch
path, mmap = sys.argv[1], sys.argv[2] == "mmap"
t = time.perf_counter()
value = torch.load(path, mmap=mmap)
value[-1].item()  # touched, so a mapping counts its first page
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def _run(code: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=environment)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def key_rates(names: list[str], rounds: int) -> dict[str, Any]:
    out = {}
    for name in names:
        build, buffers = VALUES[name]
        found = _run(KEY_WORKER, build, buffers, str(rounds))
        found["rate"] = found["bytes"] / found["key"] / 1e9
        found["xxh3_rate"] = found["bytes"] / found["xxh3"] / 1e9
        out[name] = found
        print(f"{name:12s} {found['bytes'] / 1e6:8.0f} MB  key {found['key'] * 1000:8.1f} ms  {found['rate']:6.2f} GB/s"
              f"   xxh3 over the raw bytes {found['xxh3'] * 1000:7.1f} ms  {found['xxh3_rate']:6.2f} GB/s"
              f"   ratio {found['key'] / found['xxh3']:5.2f}x", flush=True)
    return out


def tensor_hit(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {"NBCACHE_DIR": str(work / "cache")}
        miss = _run(HIT_WORKER, "miss", str(work), TENSOR, cwd=work, env=env)
        assert miss["status"] == "stored", miss
        hits, loads, mapped = [], [], []
        for _ in range(rounds):
            hit = _run(HIT_WORKER, "hit", str(work), TENSOR, cwd=work, env=env)
            assert hit["status"] == "hit", hit
            hits.append(hit["seconds"])
            loads.append(_run(LOAD_WORKER, str(work / "tensor.pt"), "read")["seconds"])
            mapped.append(_run(LOAD_WORKER, str(work / "tensor.pt"), "mmap")["seconds"])
    out = {"bytes": miss["bytes"], "miss": miss["seconds"], "hit": statistics.median(hits),
           "torch_load": statistics.median(loads), "torch_load_mmap": statistics.median(mapped)}
    print(f"tensor hit ({out['bytes'] / 1e6:.0f} MB): {out['hit']:.3f} s; torch.load {out['torch_load']:.3f} s "
          f"(mmap=True {out['torch_load_mmap']:.3f} s); ratio {out['hit'] / out['torch_load']:.2f}x (miss {out['miss']:.2f} s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--values", default=",".join(VALUES), help="comma-separated: " + ", ".join(VALUES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-hit", action="store_true", help="skip the tensor hit against torch.load")
    args = parser.parse_args()
    results: dict[str, Any] = {"keys": key_rates([v for v in args.values.split(",") if v], args.rounds)}
    if not args.no_hit:
        results["tensor_hit"] = tensor_hit(max(1, args.rounds // 2 + 1))
    print("\nTargets (ratios from this run):")
    for name, found in results["keys"].items():
        ok = found["rate"] >= TARGETS[name]
        print(f"- {'met' if ok else 'NOT met'}: {name} key rate {found['rate']:.2f} GB/s (target >= {TARGETS[name]:g} GB/s; "
              f"{found['key'] / found['xxh3']:.2f}x xxh3 over its raw bytes)")
    if "tensor_hit" in results:
        hit = results["tensor_hit"]
        ratio = hit["hit"] / hit["torch_load"]
        print(f"- {'met' if ratio <= 1.0 else 'NOT met'}: tensor hit = {ratio:.2f}x torch.load from the page cache (target <= 1.0x)")
    (HERE / "results_types.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
