"""`make bench`: nbcache against joblib.Memory, plain pickle and no cache, on the same workloads.

Every measurement runs in a fresh process, as after a kernel restart (the page cache stays warm):
a *miss* process computes and stores, a *hit* process restores. nbcache runs through the real
``%%cache`` magic in an IPython shell; joblib through ``Memory.cache`` on a function; pickle by hand
(``pickle.dump`` / ``pickle.load``, protocol 5, no key at all). Medians of ``--rounds`` rounds.

What is measured, per tool, in the same run:

- *miss overhead*: the time a miss takes beyond running the cell, in the same process (for nbcache
  the engine's own measure of the cell's run; for pickle the ``pickle.dump``; for joblib the call
  minus the function's own run);
  A miss of nbcache returns once the entry is written; a large values blob that compresses well
  is compressed afterwards on a thread of its own (``nbcache.store.later``): the table's *compress
  after* column is how long that took, and *disk* is what is on disk once it is done. Before the
  workload, each nbcache process runs one trivial ``%%cache`` cell: what a kernel does once (load
  the signing key, import zstd) is not a cost of the values;
- *hit*: the time to get the value back in a fresh process;
- *miss peak RSS / data*: the peak resident memory while storing, over the memory the values take
  (the process's peak is reset with ``/proc/self/clear_refs`` once the cell has run, so what the
  cell itself allocated and freed does not count);
- *hit peak RSS*: the peak growth of resident memory during the hit.

The table gives them as ratios to pickle's, "-" where a ratio has no meaning (a denominator of
less than a millisecond or a megabyte). ``nbcache-raw`` is nbcache with compression off: what zstd
adds to a miss. Each round runs every tool in turn, so that a busy moment weighs on all alike.

Workloads:
  W1  an 800 MB numeric DataFrame produced by a cell (10 columns x 10M float64)
  W2  a 2M-row DataFrame with strings and categoricals
  W3  a dict/list structure of 1M small Python objects
  W4  a fitted-model-like object (a few large arrays plus parameters)
  W5  a trivial cell (x = 1)
  W6  a cell whose input is 1 GB of numeric arrays (the key's cost)
  W7  cells whose input is 10,000 small Python objects (the key's cost): small dicts, and
      instances of a class defined in the notebook (fingerprinted through pickle)
  W8  a list of 500,000 small record dicts (JSON records, rows from an API)

Writes benchmarks/results.md, benchmarks/results.json and benchmarks/results.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Code that makes each workload's value; `value` is what the cell produces.
PRODUCE = {
    "W1": """
import numpy as np, pandas as pd
value = pd.DataFrame(np.random.default_rng(0).random((10_000_000, 10)), columns=[f"c{i}" for i in range(10)])
""",
    "W2": """
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
n = 2_000_000
value = pd.DataFrame({
    "id": np.arange(n),
    "name": [f"user-{i % 50_000:05d}" for i in range(n)],
    "city": pd.Categorical(rng.choice(["Paris", "Lyon", "Nice", "Lille", "Nantes"], n)),
    "score": rng.random(n),
})
""",
    "W3": """
value = {"rows": [{"id": i, "name": f"item{i}", "tags": [i % 7, i % 11], "w": i * 0.5} for i in range(250_000)]}
""",
    "W4": """
value = Model(np.random.default_rng(0))
""",
    "W5": "value = 1\n",
    "W6": "value = float(sum(a[0] for a in arrays))\n",
    "W7": "value = sum(r['score'] for r in records) + sum(p.x for p in points)\n",
    "W8": """
value = [{"id": i, "user": f"user{i % 10_000}", "text": f"record number {i}", "score": i * 0.5, "tags": ["a", "b"]}
         for i in range(500_000)]
""",
}
# W7's key is timed for each input on its own (the cell above reads both).
W7_CELLS = {"records": "value = sum(r['score'] for r in records)\n", "points": "value = sum(p.x for p in points)\n"}
W6_INPUT = "import numpy as np\narrays = [np.random.default_rng(i).random(16_777_216) for i in range(8)]\n"  # 8 x 128 MiB
# Code that runs before the workload (an earlier cell, or an imported module for pickle/joblib).
SETUP = {
    "W4": """
import numpy as np
class Model:
    \"\"\"A fitted-model-like object: a few large arrays and some parameters.\"\"\"
    def __init__(self, rng):
        self.coef_ = rng.random((2_000, 5_000))
        self.intercept_ = rng.random(5_000)
        self.components_ = rng.random((500, 20_000))
        self.params = {"alpha": 0.1, "max_iter": 300, "solver": "lbfgs"}
""",
    "W6": W6_INPUT,
    "W7": """
from dataclasses import dataclass
@dataclass
class Point:
    x: float
    y: float
    label: str
records = [{"id": i, "name": f"item{i}", "score": i * 0.5} for i in range(10_000)]
points = [Point(i * 0.5, -i * 0.25, f"p{i}") for i in range(10_000)]
""",
}

WORKER = r'''
import json, os, pickle, resource, sys, time
tool, workload, phase, workdir = sys.argv[1:5]
produce = open(os.path.join(workdir, "produce.py")).read()
setup = open(os.path.join(workdir, "setup.py")).read()

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))

def storing():
    """The cell has run: from here on the peak is the store's (and the values the cell left)."""
    out["store_rss"] = rss()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak resident size to the current one

out = {}
import types
setup_module = types.ModuleType("bench_setup")  # importable, so pickle and joblib find its classes
setup_module.__file__ = os.path.join(workdir, "bench_setup.py")
sys.modules["bench_setup"] = setup_module
exec(compile(setup, setup_module.__file__, "exec"), setup_module.__dict__)
ns = setup_module.__dict__
if tool in ("nbcache", "nbcache-raw", "plain"):
    # both run through IPython: "plain" is the same cell without %%cache
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    if tool.startswith("nbcache"):
        ip.run_cell("%load_ext nbcache")
        ip.run_cell("%config NbCache.quiet = True")
        if tool == "nbcache-raw":  # the same without compression: what zstd costs a miss
            ip.run_cell("%config NbCache.compression = 'none'")
        # Keep the entry through the hit, whatever its restore costs, so the probes below can read
        # it; whether the rule would have kept it is reported ("pays").
        ip.run_cell("%config NbCache.judge_restores = False")
        ip.run_cell("%%cache\n_bench_warm_up = 1\n")  # the kernel's one-time costs, before the workload
        if phase == "miss":
            # the peak of the store alone: reset once the engine has run the cell
            import nbcache.run.engine as engine_module
            observe = engine_module.Engine._observe
            def observed(host, cell, exclude):
                result = observe(host, cell, exclude)
                storing()
                return result
            engine_module.Engine._observe = staticmethod(observed)
    ip.user_ns.update({k: v for k, v in ns.items() if not k.startswith("__")})
    cell = ("%%cache\n" if tool.startswith("nbcache") else "") + produce
    base = rss(); t = time.perf_counter()
    result = ip.run_cell(cell)
    out["seconds"] = time.perf_counter() - t
    if tool.startswith("nbcache") and phase == "miss":
        # what goes on after the cell: a large blob compressed on another thread (its memory counts)
        from nbcache.store import later
        t = time.perf_counter(); later.wait(); out["later_seconds"] = time.perf_counter() - t
    out["peak_delta"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base  # before the raw-read probe below
    if "store_rss" in out:
        out["store_peak"], out["data_rss"] = hwm() - base, out["store_rss"] - base
    if tool == "plain":
        out["data_rss"] = rss() - base
    assert result.success, result.error_in_exec
    if workload == "W5":  # tiny: the median of repeated runs, after the first
        times = []
        for _ in range(30):
            t = time.perf_counter(); ip.run_cell(cell if phase == "hit" or tool == "plain" else "%%cache --force\n" + produce); times.append(time.perf_counter() - t)
        out["first_seconds"] = out["seconds"]
        out["seconds"] = sorted(times)[len(times) // 2]
    if tool == "plain":
        value = ip.user_ns["value"]
    else:
        magics = __import__("nbcache.jupyter.extension", fromlist=["session"]).session(ip).magics
        out["status"] = magics.engine.last.status
        if phase == "miss" and workload != "W5":
            out["overhead_seconds"] = out["seconds"] - magics.engine.last.runtime
        if workload in ("W6", "W7"):
            from nbcache.key.analysis import analyze
            from nbcache.key.cellkey import compute_key
            from nbcache.store.frames import VALUES_VERSION
            cells = {"key": produce} if workload == "W6" else {"key_" + k: v for k, v in W7_CELLS.items()}
            for field, code in cells.items():
                a = analyze(ip.transform_cell(code))
                times = []
                for _ in range(5):
                    t = time.perf_counter(); compute_key(a.normalized, a.reads, ip.user_ns, values_version=VALUES_VERSION); times.append(time.perf_counter() - t)
                out[field + "_seconds"] = sorted(times)[len(times) // 2]
        if phase == "hit":
            from nbcache.run.pays import pays
            last = magics.engine.last
            out["pays"] = bool(last.entry is not None and pays(last.entry.runtime, last.runtime))
            # reading the entry's bytes straight from the page cache: the floor for a restore
            entry = magics.engine.last.entry
            path = os.path.join(magics.cache_url, entry.values.name) if entry else None
            if path and os.path.exists(path):
                # the same bytes read into new memory, the plain way
                t = time.perf_counter()
                with open(path, "rb") as fh:
                    raw = fh.read()
                out["raw_read_seconds"] = time.perf_counter() - t
                del raw
            if entry is not None:
                # the integrity check: the values blob read and verified against its id, as a hit does
                t = time.perf_counter()
                frames = magics.open_cache().read_frames(entry)
                out["check_seconds"] = time.perf_counter() - t
                del frames
        value = ip.user_ns["value"]
elif tool == "joblib":
    import joblib, types
    mod = types.ModuleType("bench_workload"); mod.__file__ = os.path.join(workdir, "bench_workload.py")
    sys.modules["bench_workload"] = mod
    mod.__dict__.update({k: v for k, v in ns.items() if not k.startswith("__")})
    mod._ran = lambda seconds: (out.__setitem__("run_seconds", seconds), storing())  # the function's own run
    exec(compile("def produce(" + ("arrays" if workload == "W6" else "") + "):\n    import time as _t\n    _start = _t.perf_counter()\n" + "\n".join("    " + l for l in produce.splitlines()) + "\n    _ran(_t.perf_counter() - _start)\n    return value\n", mod.__file__, "exec"), mod.__dict__)
    memory = joblib.Memory(os.path.join(workdir, "joblib"), verbose=0)
    cached = memory.cache(mod.produce)
    base = rss(); t = time.perf_counter()
    value = cached(ns["arrays"]) if workload == "W6" else cached()
    out["seconds"] = time.perf_counter() - t
    if "run_seconds" in out:
        out["overhead_seconds"] = out["seconds"] - out["run_seconds"]
        out["store_peak"], out["data_rss"] = hwm() - base, out["store_rss"] - base
elif tool == "pickle":
    path = os.path.join(workdir, "value.pkl")
    base = rss(); t = time.perf_counter()
    if os.path.exists(path):
        with open(path, "rb") as fh:
            value = pickle.load(fh)
    else:
        exec(produce, ns); value = ns["value"]
        run_end = time.perf_counter(); storing()
        with open(path, "wb") as fh:
            pickle.dump(value, fh, protocol=5)
        out["overhead_seconds"] = time.perf_counter() - run_end
        out["store_peak"], out["data_rss"] = hwm() - base, out["store_rss"] - base
    out["seconds"] = time.perf_counter() - t
out.setdefault("peak_delta", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)
print(json.dumps(out))
'''


def run_worker(tool: str, workload: str, phase: str, workdir: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", f"W7_CELLS = {W7_CELLS!r}\n" + WORKER, tool, workload, phase, str(workdir)],
        capture_output=True, text=True, env={**os.environ, "NBCACHE_DIR": str(workdir / "nbcache")}, cwd=workdir,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} {workload} {phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def data_size(workload: str, workdir: Path) -> int:
    code = PRODUCE[workload]
    proc = subprocess.run([sys.executable, "-c", SETUP.get(workload, "") + code +
                           "\nimport pickle\nbufs=[]\nprint(len(pickle.dumps(value, protocol=5, buffer_callback=lambda b: bufs.append(b.raw().nbytes))) + sum(bufs))"],
                          capture_output=True, text=True, cwd=workdir)
    return int(proc.stdout.strip() or 0)


def bench(workloads: list[str], tools: list[str], rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for workload in workloads:
        results[workload] = {}
        # Each round runs every tool in turn, so that a machine busier at one moment than another
        # weighs on all of them alike.
        runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
        for _ in range(rounds):
            for tool in tools:
                workdir = Path(tempfile.mkdtemp(prefix=f"nbcache-bench-{workload}-"))
                try:
                    (workdir / "produce.py").write_text(PRODUCE[workload])
                    (workdir / "setup.py").write_text(SETUP.get(workload, ""))
                    miss = run_worker(tool, workload, "miss", workdir)
                    hit = run_worker(tool, workload, "hit", workdir) if tool != "plain" else miss
                    disk = folder_size(workdir / ("nbcache" if tool.startswith("nbcache") else "joblib"))
                    if tool == "pickle":
                        disk = (workdir / "value.pkl").stat().st_size if (workdir / "value.pkl").exists() else 0
                    runs[tool].append({"miss": miss, "hit": hit, "disk": disk})
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp())
        size = data_size(workload, tmp)
        shutil.rmtree(tmp)
        med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
        for tool in tools:
            done = runs[tool]
            results[workload][tool] = {
                "miss_seconds": med([r["miss"]["seconds"] for r in done]),
                "hit_seconds": med([r["hit"]["seconds"] for r in done]),
                "hit_status": done[-1]["hit"].get("status"),
                "pays": [r["hit"]["pays"] for r in done if "pays" in r["hit"]],
                "key_seconds": med([r["hit"]["key_seconds"] for r in done if "key_seconds" in r["hit"]]),
                **{
                    f"key_{k}_seconds": med([r["hit"][f"key_{k}_seconds"] for r in done if f"key_{k}_seconds" in r["hit"]])
                    for k in W7_CELLS
                    if workload == "W7"
                },
                "raw_read_seconds": med([r["hit"]["raw_read_seconds"] for r in done if "raw_read_seconds" in r["hit"]]),
                "check_seconds": med([r["hit"]["check_seconds"] for r in done if "check_seconds" in r["hit"]]),
                "overhead_seconds": med([r["miss"]["overhead_seconds"] for r in done if "overhead_seconds" in r["miss"]]),
                "later_seconds": med([r["miss"]["later_seconds"] for r in done if "later_seconds" in r["miss"]]),
                "store_peak": med([r["miss"]["store_peak"] for r in done if "store_peak" in r["miss"]]),
                "data_rss": med([r["miss"]["data_rss"] for r in done if "data_rss" in r["miss"]]),
                "hit_peak_delta": med([r["hit"]["peak_delta"] for r in done]),
                "disk_bytes": med([r["disk"] for r in done]),
            }
            print(f"{workload} {tool:11s} {json.dumps(results[workload][tool])}", flush=True)
        results[workload]["data_bytes"] = size
    return results


# Below these a ratio is noise: say "-" rather than print 810188x for `x = 1`.
_MIN_SECONDS = 0.001
_MIN_BYTES = 1_000_000


def ratio(numerator: float | None, denominator: float | None, floor: float) -> float | None:
    """numerator / denominator, or None where the ratio means nothing (a missing or tiny denominator)."""
    if numerator is None or denominator is None or denominator < floor:
        return None
    return numerator / denominator


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _s(value: float | None, sign: bool = False) -> str:
    return "-" if value is None else (f"{value:+.4f}" if sign else f"{value:.4f}")


def report(results: dict[str, Any]) -> str:
    lines = ["| workload | tool | miss (s) | hit (s) | miss overhead (s) | overhead / pickle's | compress after (s) "
             "| hit / pickle's | miss peak RSS / data | miss peak RSS / pickle's | hit peak RSS / pickle's | disk (MB) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for workload, tools in results.items():
        pickle_ = tools.get("pickle", {})
        # Peak memory of a workload whose data is a few bytes is the interpreter's noise.
        sized = (tools.get("data_bytes") or 0) >= _MIN_BYTES
        for tool, r in tools.items():
            if tool == "data_bytes":
                continue
            if tool == "plain":
                lines.append(f"| {workload} | plain | {r['miss_seconds']:.4f} | - | - | - | - | - | - | - | - | - |")
                continue
            cells = [
                workload, tool, f"{r['miss_seconds']:.4f}", f"{r['hit_seconds']:.4f}", _s(r.get("overhead_seconds"), sign=True),
                _x(ratio(r.get("overhead_seconds"), pickle_.get("overhead_seconds"), _MIN_SECONDS)),
                "-" if not r.get("later_seconds") or r["later_seconds"] < _MIN_SECONDS else f"{r['later_seconds']:.3f}",
                _x(ratio(r["hit_seconds"], pickle_.get("hit_seconds"), _MIN_SECONDS)),
                _x(ratio(r.get("store_peak"), r.get("data_rss"), _MIN_BYTES) if sized else None),
                _x(ratio(r.get("store_peak"), pickle_.get("store_peak"), _MIN_BYTES) if sized else None),
                _x(ratio(r["hit_peak_delta"], pickle_.get("hit_peak_delta"), _MIN_BYTES) if sized else None),
                f"{r['disk_bytes'] / 1e6:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    kept = {w: t["nbcache"]["pays"] for w, t in results.items() if t.get("nbcache", {}).get("pays")}
    if kept:
        lines.append("Does the cache pay (first restore < 0.8x the run, per round)? " + "; ".join(
            f"{w}: {'kept' if all(v) else 'not worth caching' if not any(v) else f'kept in {sum(v)} of {len(v)} rounds'}"
            for w, v in kept.items()
        ))
        lines.append("")
    lines.append("Targets (ratios from this run):")
    lines.extend(targets(results))
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[str]:
    out = []

    def line(ok: bool | None, text: str) -> None:
        out.append(f"- {'met' if ok else 'NOT met' if ok is False else 'n/a'}: {text}")

    w1 = results.get("W1", {})
    if "nbcache" in w1 and "joblib" in w1:
        ratio = w1["nbcache"]["hit_seconds"] / w1["joblib"]["hit_seconds"]
        line(ratio <= 0.5, f"W1 hit = {ratio:.2f}x joblib.Memory's hit (target <= 0.5x)")
    if "nbcache" in w1 and w1["nbcache"].get("raw_read_seconds"):
        ratio = w1["nbcache"]["hit_seconds"] / w1["nbcache"]["raw_read_seconds"]
        line(ratio <= 2, f"W1 hit = {ratio:.2f}x reading the entry's bytes from the page cache (target <= 2x)")
    w5 = results.get("W5", {})
    if "nbcache" in w5 and "plain" in w5:
        hit_add = (w5["nbcache"]["hit_seconds"] - w5["plain"]["miss_seconds"]) * 1000
        miss_add = (w5["nbcache"]["miss_seconds"] - w5["plain"]["miss_seconds"]) * 1000
        line(hit_add <= 3, f"W5 hit adds {hit_add:.2f} ms over running x = 1 (target <= 3 ms)")
        line(miss_add <= 5, f"W5 miss adds {miss_add:.2f} ms (target <= 5 ms)")
    w6 = results.get("W6", {})
    if "nbcache" in w6 and w6["nbcache"].get("key_seconds"):
        rate = 8 * 16_777_216 * 8 / w6["nbcache"]["key_seconds"] / 1e9
        line(rate >= 8, f"W6 key rate {rate:.1f} GB/s (target >= 8 GB/s)")
    w7 = results.get("W7", {}).get("nbcache", {})
    for k, what in (("records", "10,000 small dicts"), ("points", "10,000 instances of a notebook class")):
        if w7.get(f"key_{k}_seconds") is not None:
            ms = w7[f"key_{k}_seconds"] * 1000
            line(ms < 50, f"W7 key for {what}: {ms:.1f} ms (target < 50 ms)")
    for workload in ("W1", "W2", "W4"):
        r = results.get(workload, {})
        if "nbcache" in r and r.get("data_bytes"):
            ratio = r["nbcache"]["hit_peak_delta"] / r["data_bytes"]
            line(ratio <= 1.3, f"{workload} peak memory during the hit = {ratio:.2f}x the restored data (target <= 1.3x)")
    for workload in ("W2", "W3", "W8"):
        r = results.get(workload, {})
        mine, theirs = r.get("nbcache", {}), r.get("pickle", {})
        if mine.get("overhead_seconds") is not None and theirs.get("overhead_seconds"):
            ratio = mine["overhead_seconds"] / theirs["overhead_seconds"]
            line(ratio <= 1.5, f"{workload} miss overhead = {ratio:.2f}x pickle.dump's ({mine['overhead_seconds']:.3f} s vs {theirs['overhead_seconds']:.3f} s; target <= 1.5x)")
        raw = r.get("nbcache-raw", {})
        if raw.get("overhead_seconds") is not None and theirs.get("overhead_seconds"):
            ratio = raw["overhead_seconds"] / theirs["overhead_seconds"]
            line(ratio <= 1.5, f"{workload} miss overhead without compression = {ratio:.2f}x pickle.dump's ({raw['overhead_seconds']:.3f} s)")
        if mine.get("hit_seconds") is not None and theirs.get("hit_seconds"):
            check = mine.get("check_seconds") or 0.0
            budget = 1.2 * theirs["hit_seconds"] + check
            line(mine["hit_seconds"] <= budget, f"{workload} hit = {mine['hit_seconds']:.3f} s against 1.2x pickle.load's {theirs['hit_seconds']:.3f} s plus the integrity check's {check:.3f} s = {budget:.3f} s")
    for workload in ("W8", "W1"):
        r = results.get(workload, {}).get("nbcache", {})
        if r.get("store_peak") is not None and r.get("data_rss"):
            ratio = r["store_peak"] / r["data_rss"]
            line(ratio <= 1.3, f"{workload} peak memory during the miss = {ratio:.2f}x the data (target <= 1.3x)")
    return out


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = [w for w in results if w != "W5"]
    tools = ["plain", "pickle", "joblib", "nbcache"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.2
    for i, tool in enumerate(tools):
        values = [results[w].get(tool, {}).get("miss_seconds" if tool == "plain" else "hit_seconds") or 0 for w in workloads]
        ax.bar([x + i * width for x in range(len(workloads))], values, width, label="no cache (run)" if tool == "plain" else f"{tool} hit")
    ax.set_xticks([x + 1.5 * width for x in range(len(workloads))], workloads)
    ax.set_ylabel("seconds (after a restart)")
    ax.set_yscale("log")
    ax.set_title("Getting a cell's result back: nbcache vs the alternatives")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7,W8")
    parser.add_argument("--tools", default="plain,pickle,joblib,nbcache,nbcache-raw",
                        help="nbcache-raw: nbcache with %%config NbCache.compression = 'none'")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = bench(args.workloads.split(","), args.tools.split(","), args.rounds)
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    table = report(results)
    (HERE / "results.md").write_text(table + "\n")
    chart(results, HERE / "results.png")
    print()
    print(table)


if __name__ == "__main__":
    main()
