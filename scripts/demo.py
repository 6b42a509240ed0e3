"""`make demo`: run a notebook twice in fresh kernels against a fresh cache, compare, time.

The first run fills the cache; the second (a new kernel, as after a restart or the next morning)
should restore every %%cache cell. The script prints, for each cached cell, the first-run time, the
second-run time and the speed-up, and exits non-zero if any cell's outputs differ between the runs
(nbcache's own notes, which only a hit shows, are left out of the comparison).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import comparable  # noqa: E402  (one definition of "same outputs" for tests and demo)


def execute(path: Path, cache_dir: str) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    os.environ["NBCACHE_DIR"] = cache_dir
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def seconds(cell: Any) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return float("nan")
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebook", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbcache-demo-") as cache_dir:
        print(f"nbcache demo: {args.notebook} (cache in {cache_dir})")
        print("first run (fills the cache)...", flush=True)
        first = execute(args.notebook, cache_dir)
        print("second run, in a fresh kernel (restores from the cache)...", flush=True)
        second = execute(args.notebook, cache_dir)

    differing = []
    rows = []
    for i, (a, b) in enumerate(zip(first.cells, second.cells)):
        if a.cell_type != "code":
            continue
        if comparable(a.outputs) != comparable(b.outputs):
            differing.append(i)
        if a.source.lstrip().startswith("%%cache"):
            t1, t2 = seconds(a), seconds(b)
            rows.append((i, a.source.splitlines()[1][:48] if "\n" in a.source else "", t1, t2, t1 / t2 if t2 else float("inf")))

    print()
    print(f"{'cell':>4}  {'first line of code':<48}  {'1st run':>8}  {'2nd run':>8}  {'speed-up':>8}")
    for i, line, t1, t2, ratio in rows:
        print(f"{i:>4}  {line:<48}  {t1:>7.3f}s  {t2:>7.3f}s  {ratio:>7.1f}x")
    slow = [r for r in rows if r[2] >= 0.5]
    if slow:
        total1, total2 = sum(r[2] for r in slow), sum(r[3] for r in slow)
        print(f"slow cells (>= 0.5 s): {total1:.2f} s -> {total2:.3f} s, {total1 / total2:.0f}x faster")
    if differing:
        print(f"\nFAIL: outputs differ between the runs in cells {differing}")
        return 1
    print("\nOK: every cell's outputs are identical in both runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
