"""What automatic mode (``%cache_all``) costs and saves, through real kernels (nbclient).

    .venv/bin/python benchmarks/bench_auto.py [--rounds 3] [--cells 300] [--tutorial notebooks/03-data-caching.ipynb]

Every run is a fresh kernel (Restart & Run All), the variants of one round run one after the
other. A cell's time is taken inside the kernel, from IPython's ``pre_run_cell`` event (a hook
registered before nbcache's) to ``post_run_cell`` (one registered after nbcache's), so all that
automatic mode adds to a cell is inside it: wall time, and the CPU time of the kernel's main
thread, which other work on a shared machine does not inflate. A total is the sum over the cells
of each cell's median over ``--rounds`` rounds (a load spike then moves one round of one cell,
not the total); a per-cell figure is the median over all cells of all rounds.

1. **Overhead on trivial cells** (``v_i = i``, ``print``; ``--cells`` of them): the median per
   cell of a plain run, then under automatic mode: a first run that stores nothing (below
   ``min_runtime``), a warm run that stores nothing (the cells are known to be cheap), and a warm
   run of hits (``min_runtime = 0``, every cell stored then restored; restores not judged, as
   after an entry's first), and the first hits, judged (a trivial cell is then found not worth
   caching and its entry removed: once per entry, outside the target). Target: at most 1 ms more
   than plain per cell, on a hit and on a run that stores nothing.
2. **Restart & Run All of fast cells** (``--cells`` cells of a few ms each): total cell time,
   warm under automatic mode against plain. Target: at most 1.1x.
3. **A tutorial notebook**: total cell time, plain (its ``%%cache`` lines removed, nbcache not
   loaded) against automatic mode warm, and the notebook as written (its own ``%%cache``) warm.
4. **``nbcache run`` twice on a slow notebook**: wall time of the command (kernel start
   included) and the cells' time, first run against second. Target: the second at least 5x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
AUTO = "%load_ext nbcache\n%cache_all\n"
HITS = "%load_ext nbcache\n%config NbCache.min_runtime = 0\n%cache_all\n"
# The steady state of a cell worth caching: its restores after the first are not judged (the
# first restore of each entry is timed against its run, and trivial cells would then be found not
# worth caching: "first hit, judged" measures that one, entry removal included).
HITS_UNJUDGED = HITS + "%config NbCache.judge_restores = False\n"
# Timing hooks: pre_run_cell registered before nbcache's, post_run_cell after (see above).
_TIMER = """\
def _bench_hooks():
    import sys, time
    times = sys.__dict__.setdefault("_nbcache_bench", [])
    start = {}
    def pre(info):
        start["t"] = (time.perf_counter(), time.thread_time())
    def post(result):
        wall, cpu = start.pop("t", (None, None))
        if wall is not None:
            times.append((time.perf_counter() - wall, time.thread_time() - cpu))
    return pre, post
_bench_pre, _bench_post = _bench_hooks()
get_ipython().events.register("pre_run_cell", _bench_pre)
"""
_TIMER_POST = 'get_ipython().events.register("post_run_cell", _bench_post)'
# get_ipython() in it: automatic mode never caches this cell (a replayed list of timings would lie).
_COLLECT = 'print(__import__("json").dumps(get_ipython() and __import__("sys")._nbcache_bench))'


def trivial_cells(n: int) -> list[str]:
    return [(f"v_{i} = {i}" if i % 3 else f"print(v_{i - 1} if {i} else 0)") for i in range(n)]


def fast_cells(n: int) -> list[str]:
    """Cells of a few milliseconds each, each reading the one before."""
    cells = ["acc_0 = 0"]
    for i in range(1, n):
        body = f"acc_{i} = acc_{i - 1} + sum(k * k for k in range(40_000))"
        if i % 10 == 0:
            body += f"\nprint('step', {i}, acc_{i} % 97)"
        cells.append(body)
    return cells


SLOW_NOTEBOOK = [
    "import numpy as np\nrng = np.random.default_rng(0)",
    "# load: a few seconds\nX = rng.normal(size=(40_000, 200))\nfor _ in range(18):\n    X = np.tanh(X @ rng.normal(size=(200, 200)) / 14)\nprint('features', X.shape)",
    "# train: a few seconds\nw = np.zeros(200)\ny = (X[:, 0] > 0).astype(float)\nfor _ in range(240):\n    p = 1 / (1 + np.exp(-X @ w))\n    w -= 0.1 * X.T @ (p - y) / len(y)\nprint('accuracy', round(float(((X @ w > 0) == y).mean()), 3))",
    "# evaluate: a few seconds\nscores = [float(np.linalg.svd(X[i::2], compute_uv=False)[0]) for i in range(24)]\nprint('spectrum', round(max(scores), 2))",
    "print('done', round(float(w.sum()), 3))",
]


def _cell_seconds(cell: Any) -> float:
    timing = cell.metadata.get("execution", {})
    start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def execute(cells: list[str], cwd: Path, cache: Path, prologue: str | None = None) -> list[tuple[float, float]]:
    """Run ``cells`` in a fresh kernel after ``prologue``; (wall, CPU) seconds of each."""
    setup = [_TIMER] + ([prologue] if prologue else []) + [_TIMER_POST]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in [*setup, *cells, _COLLECT]]
    client = NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env={**os.environ, "NBCACHE_DIR": str(cache)})
    times = json.loads(nb.cells[-1].outputs[0]["text"])[1:]  # [0]: the cell that registered the post hook
    assert len(times) == len(cells), (len(times), len(cells))
    return [(t[0], t[1]) for t in times]


Rounds = list[list[tuple[float, float]]]


def _total(rounds: Rounds, which: int) -> float:
    """The sum over cells of each cell's median over the rounds (which: 0 wall, 1 CPU)."""
    return sum(statistics.median(t[which] for t in cell) for cell in zip(*rounds))


def _per_cell(rounds: Rounds, which: int) -> float:
    return statistics.median(t[which] for run in rounds for t in run)


def per_cell_medians(cells: list[str], rounds: int, work: Path) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per cell: plain, first (stores nothing), warm (stores nothing), hits."""
    out: dict[str, Rounds] = {
        "plain": [], "first, nothing stored": [], "warm, nothing stored": [], "warm, every cell a hit": [],
        "warm, first hit of each (judged)": [],
    }
    for r in range(rounds):
        cache, hits, judged = work / f"trivial-{r}", work / f"trivial-hits-{r}", work / f"trivial-judged-{r}"
        out["plain"].append(execute(cells, work, work / "unused"))
        out["first, nothing stored"].append(execute(cells, work, cache, AUTO))
        out["warm, nothing stored"].append(execute(cells, work, cache, AUTO))
        execute(cells, work, hits, HITS_UNJUDGED)
        out["warm, every cell a hit"].append(execute(cells, work, hits, HITS_UNJUDGED))
        execute(cells, work, judged, HITS)
        out["warm, first hit of each (judged)"].append(execute(cells, work, judged, HITS))
    return {k: (_per_cell(v, 0), _per_cell(v, 1)) for k, v in out.items()}


def totals(cells: list[str], rounds: int, work: Path, name: str) -> dict[str, tuple[float, float]]:
    out: dict[str, Rounds] = {"plain": [], "auto, first run": [], "auto, warm": []}
    for r in range(rounds):
        cache = work / f"{name}-{r}"
        out["plain"].append(execute(cells, work, work / "unused"))
        out["auto, first run"].append(execute(cells, work, cache, AUTO))
        out["auto, warm"].append(execute(cells, work, cache, AUTO))
    return {k: (_total(v, 0), _total(v, 1)) for k, v in out.items()}


def tutorial(path: Path, rounds: int, work: Path) -> dict[str, tuple[float, float]]:
    nb = nbformat.read(path, as_version=4)
    written = [c.source for c in nb.cells if c.cell_type == "code"]
    plain = ["pass" if "%load_ext nbcache" in c else c.split("\n", 1)[1] if c.startswith("%%cache") else c for c in written]
    out: dict[str, Rounds] = {"plain (no nbcache)": [], "as written (%%cache), warm": [], "auto, first run": [], "auto, warm": []}
    for r in range(rounds):
        own, auto = work / f"tutorial-own-{r}", work / f"tutorial-auto-{r}"
        out["plain (no nbcache)"].append(execute(plain, path.parent, work / "unused"))
        execute(written, path.parent, own)
        out["as written (%%cache), warm"].append(execute(written, path.parent, own))
        out["auto, first run"].append(execute(written, path.parent, auto, AUTO))
        out["auto, warm"].append(execute(written, path.parent, auto, AUTO))
    return {k: (_total(v, 0), _total(v, 1)) for k, v in out.items()}


def nbcache_run_twice(rounds: int, work: Path) -> dict[str, float]:
    out: dict[str, list[float]] = {"first: command": [], "second: command": [], "first: cells": [], "second: cells": []}
    for r in range(rounds):
        folder = work / f"slow-{r}"
        folder.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c) for c in SLOW_NOTEBOOK]
        nbformat.write(nb, folder / "slow.ipynb")
        for which in ("first", "second"):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "nbcache.cli", "run", str(folder / "slow.ipynb"), "--dir", str(folder / "cache")],
                check=True,
                capture_output=True,
            )
            out[f"{which}: command"].append(time.perf_counter() - start)
            done = nbformat.read(folder / "slow.ipynb", as_version=4)
            out[f"{which}: cells"].append(sum(_cell_seconds(c) for c in done.cells))
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--tutorial", default=str(ROOT / "notebooks" / "03-data-caching.ipynb"))
    parser.add_argument("--only", default="trivial,fast,tutorial,run", help="which parts to run")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    lines = [f"## Automatic mode ({args.rounds} rounds, medians; fresh kernel per run)", ""]
    with tempfile.TemporaryDirectory(prefix="nbcache-bench-auto-") as folder:
        work = Path(folder)
        if "trivial" in parts:
            m = per_cell_medians(trivial_cells(args.cells), args.rounds, work)
            lines += [
                f"Trivial cells ({args.cells}), median per cell:",
                "",
                "| run | wall ms | over plain | CPU ms | over plain |",
                "| --- | ---: | ---: | ---: | ---: |",
            ]
            for name, (wall, cpu) in m.items():
                lines.append(
                    f"| {name} | {wall * 1000:.3f} | {(wall - m['plain'][0]) * 1000:+.3f} | {cpu * 1000:.3f} | {(cpu - m['plain'][1]) * 1000:+.3f} |"
                )
            for i, what in ((0, "wall"), (1, "CPU")):
                worst = max(v[i] - m["plain"][i] for k, v in m.items() if k != "plain" and "judged" not in k)
                lines.append(f"- {'met' if worst <= 0.001 else 'NOT met'} ({what}): at most 1 ms added per cell (worst {worst * 1000:+.3f} ms)")
            lines.append("")
        for part, title, measure in (
            ("fast", f"Restart & Run All of {args.cells} fast cells", lambda: totals(fast_cells(args.cells), args.rounds, work, "fast")),
            ("tutorial", f"Tutorial {Path(args.tutorial).name}", lambda: tutorial(Path(args.tutorial), args.rounds, work)),
        ):
            if part not in parts:
                continue
            t = measure()
            base = t.get("plain") or t["plain (no nbcache)"]
            lines += [f"{title}, total cell time:", "", "| run | wall s | x plain | CPU s | x plain |", "| --- | ---: | ---: | ---: | ---: |"]
            for name, (wall, cpu) in t.items():
                lines.append(f"| {name} | {wall:.3f} | {wall / base[0]:.3f}x | {cpu:.3f} | {cpu / base[1]:.3f}x |")
            if part == "fast":
                for i, what in ((0, "wall"), (1, "CPU")):
                    ratio = t["auto, warm"][i] / base[i]
                    lines.append(f"- {'met' if ratio <= 1.1 else 'NOT met'} ({what}): warm under automatic mode = {ratio:.3f}x plain (target <= 1.1x)")
            lines.append("")
        if "run" in parts:
            t = nbcache_run_twice(args.rounds, work)
            speed = t["first: command"] / t["second: command"]
            cells = t["first: cells"] / max(t["second: cells"], 1e-9)
            lines += ["`nbcache run` twice on a slow notebook:", "", "| | first (s) | second (s) | ratio |", "| --- | ---: | ---: | ---: |"]
            lines.append(f"| the command (kernel start included) | {t['first: command']:.2f} | {t['second: command']:.2f} | {speed:.1f}x |")
            lines.append(f"| the cells | {t['first: cells']:.2f} | {t['second: cells']:.3f} | {cells:.0f}x |")
            lines += ["", f"- {'met' if speed >= 5 else 'NOT met'}: the second run {speed:.1f}x faster (target >= 5x)", ""]
    text = "\n".join(lines)
    print(text)
    (Path(__file__).parent / "results-auto.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
