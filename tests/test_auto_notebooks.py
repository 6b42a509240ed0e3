"""Automatic mode over the tutorial notebooks, through real kernels: warm shows what cold showed.

Each tutorial runs four times, each in a fresh kernel in its own copy of ``notebooks/``:

- ``cold`` and ``warm``: with automatic mode on and ``NbCache.min_runtime = 0`` (every cell that
  may be cached is: the strictest setting), first on an empty cache, then on the cache the first
  run filled, as after Restart & Run All;
- ``base_cold`` and ``base_warm``: the same without automatic mode (the tutorials' own
  ``%%cache`` cells only), which tells the cells whose output differs between a first and a
  second run anyway: the tutorials show misses on a first run and hits on a second, timings,
  listings of the cache.

The test asserts that every cell whose output is the same in ``base_cold`` and ``base_warm``
is the same in ``cold`` and ``warm`` (sanitized as nbval's ``sanitize.cfg`` does for the
committed outputs), that no run raised, and that in ``warm`` automatic mode replayed cells
beyond the tutorials' own ``%%cache`` cells (in tutorial 09, where every later cell uses a temporary
folder made afresh by each run, that none did).

Left out of the comparison: cells marked ``# NBVAL_IGNORE_OUTPUT`` (their output depends on the
machine's speed, and nbval skips them too), and cells that show the cache's own contents (``nbcache ls``, ``show``,
``stats``, ``verify``, ``clear``, the manifests folder). Automatic mode rightly stores more
entries, and in tutorials 08 and 09 their keys depend on a temporary folder made afresh by each
run, so those listings differ; which cells they are is asserted, so the list cannot grow unseen.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pytest

from conftest import ROOT, comparable

NOTEBOOKS = ROOT / "notebooks"
TUTORIALS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
# NOTE_BELOW = 0: a note on every hit, however quick the cell was, so the test can tell hits.
AUTO = '%config NbCache.min_runtime = 0\n%cache_all\n__import__("nbcache.jupyter.auto", fromlist=["_"]).NOTE_BELOW = 0\n'
# Cells that show the cache's own contents (see the module docstring).
_SHOWS_THE_CACHE = re.compile(r"nbcache_cli\(|nbcache\.cli|nbcache\.stats\(|/ \"manifests\"")


# Tutorials where no cell beyond the tutorial's own %%cache cells can hit in a second run, and why:
# there a hit would be stale, so the test asserts that none happens. (None now: tutorial 09's
# setup makes a temporary folder and writes a notebook into it, and a hit makes the same folder
# and writes the same notebook, which the cells that start kernels then run; those never hit.)
_NOTHING_TO_REPLAY: dict[str, str] = {}


def _sanitizers() -> list[tuple[re.Pattern[str], str]]:
    config = configparser.ConfigParser()
    config.read(NOTEBOOKS / "sanitize.cfg")
    return [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]


_SANITIZE = _sanitizers()


def _clean(text: str) -> str:
    for regex, replace in _SANITIZE:
        text = regex.sub(replace, text)
    return text


def shown(cell: Any) -> str:
    """What a cell shows, nbcache's notes aside, sanitized, as one comparable string."""
    return _clean(json.dumps(comparable(cell.get("outputs", [])), sort_keys=True))


def _execute(name: str, folder: Path, cache: Path, auto: bool) -> list[Any]:
    from nbclient import NotebookClient

    nb = nbformat.read(folder / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if auto:
        first = next(i for i, c in enumerate(nb.cells) if "%load_ext nbcache" in c.source)
        nb.cells.insert(first + 1, nbformat.v4.new_code_cell(AUTO))
    env = {**os.environ, "NBCACHE_DIR": str(cache)}
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(folder)}})
    client.execute(env=env)
    return [c for c in nb.cells if c.cell_type == "code" and c.source != AUTO][: len(code)]


def _variants(name: str, root: Path) -> dict[str, list[Any]]:
    runs: dict[str, list[Any]] = {}
    for auto, prefix in ((True, ""), (False, "base_")):
        folder = root / f"{prefix or 'auto_'}{name}"
        shutil.copytree(NOTEBOOKS, folder, ignore=shutil.ignore_patterns(".nbcache", "*.pyc", "__pycache__"))
        cache = folder / ".cache-under-test"
        runs[prefix + "cold"] = _execute(name, folder, cache, auto)
        runs[prefix + "warm"] = _execute(name, folder, cache, auto)
    return runs


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[Any]]]:
    root = tmp_path_factory.mktemp("auto-notebooks")
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(TUTORIALS, pool.map(lambda n: _variants(n, root), TUTORIALS)))


def _hit(cell: Any) -> bool:
    return any(o.get("metadata", {}).get("nbcache", {}).get("status") == "hit" for o in cell.get("outputs", []))


def _errors(cells: list[Any]) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_warm_shows_what_cold_showed(name: str, results: dict[str, dict[str, list[Any]]]) -> None:
    runs = results[name]
    assert _errors(runs["base_cold"]) == [], "the tutorial itself fails"
    for which in ("cold", "warm"):
        assert _errors(runs[which]) == [], f"{which} run under automatic mode raised"
    same_anyway = [i for i, (a, b) in enumerate(zip(runs["base_cold"], runs["base_warm"])) if shown(a) == shown(b)]
    assert len(same_anyway) >= len(runs["cold"]) / 2, "too few cells to compare"
    about_the_cache = [i for i in same_anyway if _SHOWS_THE_CACHE.search(runs["cold"][i].source)]
    # at most tutorial 08's ten listings (with the sanitizer's BLAKE3 ids and blob folders, all ten
    # show the same in both plain runs)
    assert len(about_the_cache) <= 10, about_the_cache
    same_anyway = [i for i in same_anyway if i not in about_the_cache]
    # cells the tutorial marks as machine-dependent (nbval does not compare them either)
    same_anyway = [i for i in same_anyway if "NBVAL_IGNORE_OUTPUT" not in runs["cold"][i].source]
    differ = [
        f"cell {i}: {runs['cold'][i].source.splitlines()[0][:70]!r}\n  cold: {shown(runs['cold'][i])[:300]}\n  warm: {shown(runs['warm'][i])[:300]}"
        for i in same_anyway
        if shown(runs["cold"][i]) != shown(runs["warm"][i])
    ]
    assert not differ, "\n".join(differ)
    # automatic mode replayed cells the tutorial does not mark %%cache
    auto_hits = [i for i, c in enumerate(runs["warm"]) if _hit(c) and not c.source.startswith("%%cache")]
    if name in _NOTHING_TO_REPLAY:
        assert auto_hits == [], f"{_NOTHING_TO_REPLAY[name]}, yet these cells hit: {auto_hits}"
    else:
        assert auto_hits, "automatic mode restored nothing in the warm run"
