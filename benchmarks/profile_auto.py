"""Where automatic mode's time goes on a trivial cell, inside a real kernel (not part of `make bench`).

    .venv/bin/python benchmarks/profile_auto.py [--mode hit|first] [--cells 300]

``bench_auto.py`` gives the totals a cell pays (the 1 ms target); this splits them. A fresh kernel
(nbclient) runs ``--cells`` trivial cells under automatic mode, after a cell that wraps the
engine's steps (:data:`STEPS`) with a timer; it prints each step's median wall and CPU time per
call. ``hit`` runs the cells once first, then again in a fresh kernel (every cell a hit, restores
not judged); ``first`` runs them on an empty cache (nothing stored: each is under
``min_runtime``). Steps nest: a parent's time includes its children's, and each wrapper adds a
microsecond or two. The same code timed in a loop outside a kernel comes out two to four times
faster (warm caches), so cut whole steps rather than tune what a loop measures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from bench_auto import AUTO, HITS_UNJUDGED, _COLLECT, _TIMER, _TIMER_POST, execute, trivial_cells

# (module, qualified name): the steps of a cell under automatic mode, outermost first.
STEPS = [
    ("nbcache.jupyter.auto", "AutoMode.rewrite"),
    ("nbcache.jupyter.auto", "AutoMode.run_pending"),
    ("nbcache.run.engine", "Engine._keyed"),
    ("nbcache.key.analysis", "analyze"),
    ("nbcache.run.engine", "Engine._key"),
    ("nbcache.run.engine", "Engine._cached"),
    ("nbcache.run.restore", "restore"),
    ("nbcache.store.cache", "Cache.lookup"),
    ("nbcache.store.backends.local", "LocalFolderStore.get"),
    ("nbcache.store.manifest", "parse_manifest"),
    ("nbcache.key.state", "unmet"),
    ("nbcache.store.cache", "Cache.read_frames"),
    ("nbcache.run.serialize", "load_values"),
    ("nbcache.jupyter.host", "IPythonHost.replay"),
    ("nbcache.run.engine", "Engine._miss"),
    ("nbcache.run.engine", "Engine._observe"),
    ("nbcache.key.state", "snapshot"),
    ("nbcache.jupyter.host", "IPythonHost.execute"),
]

# Run in the kernel: wrap each step (and the names other nbcache modules imported it under).
_WRAP = """\
import sys as _s, time as _t, functools as _f, importlib as _il, statistics as _st
_times = {}
def _wrap(modname, qual):
    owner = _il.import_module(modname)
    *path, name = qual.split(".")
    for part in path:
        owner = getattr(owner, part)
    raw0 = owner.__dict__[name]
    static = isinstance(raw0, staticmethod)
    raw = raw0.__func__ if static else raw0
    seen = _times.setdefault(qual, [])
    @_f.wraps(raw)
    def timed(*a, **k):
        t, c = _t.perf_counter(), _t.thread_time()
        try:
            return raw(*a, **k)
        finally:
            seen.append((_t.perf_counter() - t, _t.thread_time() - c))
    setattr(owner, name, staticmethod(timed) if static else timed)
    if not path:
        for m in list(_s.modules.values()):
            if getattr(m, "__name__", "").startswith("nbcache") and getattr(m, name, None) is raw:
                setattr(m, name, timed)
for _m, _q in STEPS:
    _wrap(_m, _q)
def _report():
    return {q: (len(v), _st.median(x[0] for x in v), _st.median(x[1] for x in v)) for q, v in _times.items() if v}
"""


def profile(mode: str, cells: int) -> tuple[dict[str, list[float]], list[tuple[float, float]]]:
    work = Path(tempfile.mkdtemp(prefix="nbcache-profile-"))
    body = trivial_cells(cells)
    prologue = AUTO if mode == "first" else HITS_UNJUDGED
    if mode == "hit":
        execute(body, work, work / "cache", prologue)
    wrap = f"STEPS = {STEPS!r}\n{_WRAP}"
    report = 'print(__import__("json").dumps(get_ipython() and _report()))'  # get_ipython(): never cached
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in [_TIMER, prologue, wrap, _TIMER_POST, *body, report, _COLLECT]]
    client = NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(work)}})
    client.execute(env={**os.environ, "NBCACHE_DIR": str(work / "cache")})
    steps = json.loads(nb.cells[-2].outputs[0]["text"])
    times = json.loads(nb.cells[-1].outputs[0]["text"])[1 : 1 + cells]  # [0]: the cell that registered the post hook
    return steps, [(t[0], t[1]) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("hit", "first"), default="hit")
    parser.add_argument("--cells", type=int, default=300)
    args = parser.parse_args()
    steps, times = profile(args.mode, args.cells)
    wall = sorted(t[0] for t in times)
    cpu = sorted(t[1] for t in times)
    print(f"{args.mode}: {args.cells} trivial cells, a cell's median {wall[len(wall) // 2] * 1e3:.3f} ms wall, {cpu[len(cpu) // 2] * 1e3:.3f} ms CPU")
    print(f"{'step':28s} {'calls':>6s} {'wall ms':>8s} {'CPU ms':>8s}  (medians per call)")
    for _module, qual in STEPS:
        if qual in steps:
            count, w, c = steps[qual]
            print(f"{qual:28s} {count:6d} {w * 1e3:8.3f} {c * 1e3:8.3f}")


if __name__ == "__main__":
    main()
