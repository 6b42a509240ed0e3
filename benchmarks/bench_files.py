"""Files a cell writes and names: what checking and restoring them costs, in a real IPython shell.

    .venv/bin/python benchmarks/bench_files.py [--mb 500] [--rounds 3]

1. **A cell that wrote a large Parquet file** (``--mb`` MB of float columns, uncompressed): its
   plain run; a hit with the file present and unchanged (what the file check adds to the hit:
   target <= 5%); a hit after the file was deleted (the restore's rate: target >= 1 GB/s), next
   to ``shutil.copyfile`` of the same file (the disk's own rate) measured in the same run.
2. **Path-like values**: what finding and stamping the paths among a cell's inputs adds to a miss,
   for 10,000 string inputs (a list of words; a list of file-like names that do not exist; 10,000
   variables). Target: <= 5 ms. (A hit pays nothing for them: the entry lists its files.)

Figures are medians over ``--rounds``. Results go to ``benchmarks/results-files.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _median(f: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _shell() -> Any:
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "nbcache")
    ip.run_line_magic("config", "NbCache.judge_restores = False")
    ip.run_line_magic("config", "NbCache.quiet = True")
    return ip


def parquet(ip: Any, mb: int, rounds: int) -> list[str]:
    import nbcache.run.files as files

    rows = mb * 1_000_000 // 64
    cell = (
        "%%cache\nimport numpy as np, pandas as pd\n"
        f"frame = pd.DataFrame(np.random.default_rng(0).random(({rows}, 8)), columns=list('abcdefgh'))\n"
        "frame.to_parquet('big.parquet', compression=None)\ndel frame\n"
    )
    engine = __import__("nbcache.jupyter.extension", fromlist=["session"]).session(ip).magics.engine
    spent: list[float] = []
    real_prepare = files.prepare

    def timed_prepare(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        prepared = real_prepare(*args, **kwargs)
        spent.append(time.perf_counter() - start)
        return prepared

    import nbcache.run.restore as restore_module

    restore_module.prepare = timed_prepare  # type: ignore[assignment]
    start = time.perf_counter()
    ip.run_cell(cell)
    run = time.perf_counter() - start
    assert engine.last.status == "stored", engine.last
    size = os.path.getsize("big.parquet")

    present, checks = [], []
    for _ in range(rounds):
        ip.reset(new_session=True)
        spent.clear()
        start = time.perf_counter()
        ip.run_cell(cell)
        present.append(time.perf_counter() - start)
        assert engine.last.status == "hit" and engine.last.files == (), engine.last
        checks.append(sum(spent))
    restores, prepares = [], []
    for _ in range(rounds):
        os.remove("big.parquet")
        ip.reset(new_session=True)
        spent.clear()
        start = time.perf_counter()
        ip.run_cell(cell)
        restores.append(time.perf_counter() - start)
        assert engine.last.status == "hit" and engine.last.files == ("big.parquet",), engine.last
        prepares.append(sum(spent))
    copies = []
    for _ in range(rounds):
        start = time.perf_counter()
        shutil.copyfile("big.parquet", "copy.parquet")
        copies.append(time.perf_counter() - start)
        os.remove("copy.parquet")
    restore_module.prepare = real_prepare  # type: ignore[assignment]
    hit, check = statistics.median(present), statistics.median(checks)
    restore, copy = statistics.median(restores), statistics.median(copies)
    gb = size / 1e9
    return [
        f"| plain run (first run, stored) | {run:.2f} s | |",
        f"| hit, file present and unchanged | {hit * 1000:.1f} ms | the file check: {check * 1000:.2f} ms, "
        f"{check / max(hit - check, 1e-9):.1%} of the rest of the hit (target <= 5%) |",
        f"| hit, file deleted: restored | {restore * 1000:.0f} ms | {gb / restore:.2f} GB/s for the whole hit, "
        f"{gb / statistics.median(prepares):.2f} GB/s for the file (target >= 1 GB/s) |",
        f"| `shutil.copyfile` of the file | {copy * 1000:.0f} ms | {gb / copy:.2f} GB/s (the disk) |",
        f"| file size | {size / 1e6:.0f} MB | |",
    ]


def path_likes(rounds: int) -> list[str]:
    from nbcache.key.deps import Watch
    from nbcache.key.paths import value_strings
    from nbcache.run.engine import ABSENT_LIMIT

    cases = {
        "a list of 10,000 words": [[f"token{i}" for i in range(10_000)]],
        "a list of 10,000 file-like names (absent)": [[f"part-{i}.csv" for i in range(10_000)]],
        "10,000 string variables": [f"value{i}" for i in range(10_000)],
    }
    lines = []
    for label, values in cases.items():

        def once(values: list[Any] = values) -> None:
            watch = Watch()
            watch.expect(value_strings(values), absent_limit=ABSENT_LIMIT)

        once()
        seconds = _median(once, max(rounds, 5))
        lines.append(f"| {label} | {seconds * 1000:.2f} ms | target <= 5 ms |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="nbcache-bench-files-", dir=os.environ.get("NBCACHE_BENCH_DIR") or None)
    os.chdir(work)
    try:
        ip = _shell()
        ip.run_line_magic("config", f"NbCache.directory = {os.path.join(work, '.nbcache')!r}")
        lines = ["# Files a cell writes and names (benchmarks/bench_files.py)", "", f"`--mb {args.mb} --rounds {args.rounds}`", ""]
        lines += ["| case | time | figure |", "| --- | --- | --- |"]
        lines += parquet(ip, args.mb, args.rounds)
        lines += ["", "| path-like inputs, added to a miss | time | |", "| --- | --- | --- |"]
        lines += path_likes(args.rounds)
        text = "\n".join(lines) + "\n"
        print(text)
        (ROOT / "benchmarks" / "results-files.md").write_text(text)
    finally:
        os.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
