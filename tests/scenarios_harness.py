"""Runs table-driven ``%%cache`` scenarios through real kernels, batched, in parallel.

A scenario is a list of cells (some starting with ``%%cache``), files written into its own
folder, and optionally a change applied before the second run (other cells, other files, other
environment variables). Each batch of scenarios runs three times, each in a fresh kernel:

1. ``first``:  the phase-1 cells with ``%%cache`` (fills each scenario's own cache folder);
2. ``second``: the phase-2 cells with ``%%cache`` (a restart, the change applied);
3. ``plain``:  the phase-2 cells with every ``%%cache`` line removed, nbcache never loaded,
   in a separate copy of the phase-2 files: what the user would have seen without nbcache.

An ``auto`` scenario has no ``%%cache`` lines: its harness cell turns automatic mode on
(``%cache_all`` with ``NbCache.min_runtime = 0``, so every cell that may be cached is, and a note
on every hit), and every one of its cells counts as a cached cell; the others turn it off.

Scenarios sharing a kernel are separated by a harness cell that resets the namespace, moves to
the scenario's folder, points nbcache at the scenario's cache folder, restores the environment
variables and resets interpreter state a previous scenario may have changed (random generators,
pandas options, matplotlib rcParams, numpy print options and errstate, warnings filters, the
decimal context, the locale, torch's settings), so a leak cannot be blamed on the wrong scenario.
Generators are seeded with 0, or reseeded from entropy (as in a fresh kernel) for a scenario with
``fresh_rng``. The
plain run gets the same harness cells (minus the nbcache configuration), so whatever remains
shared is shared identically by both runs.
"""

from __future__ import annotations

import os
import shutil
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import nbformat

CACHE = "%%cache"


@dataclass
class Scenario:
    name: str
    cells: list[str]
    """Phase-1 cells (after ``%load_ext nbcache``); ``%%cache`` cells are the cached ones."""
    expect: list[str] | str = "hit"
    """Phase-2 status of each ``%%cache`` cell, in order: ``hit`` or ``miss`` (no hit note).
    A single string applies to every cached cell; ``any``: only the outputs are compared."""
    files: dict[str, str] = field(default_factory=dict)
    cells2: list[str] | None = None
    """Phase-2 cells; the phase-1 cells when None."""
    files2: dict[str, str | None] = field(default_factory=dict)
    """Written (None: deleted) before phase 2; their mtime is moved forward so it surely changes."""
    env: dict[str, str] = field(default_factory=dict)
    env2: dict[str, str] | None = None
    isolate: bool = False
    """Run in kernels of its own (local modules: ``sys.modules`` would be shared in a batch)."""
    check: Callable[["ScenarioResult"], None] | None = None
    """Extra assertions (e.g. on nbcache's own lines) beyond the comparison with the plain run."""
    auto: bool = False
    """Automatic mode instead of ``%%cache`` lines (see the module docstring)."""
    fresh_rng: bool = False
    """Start with the global generators unseeded, as a fresh kernel has them (else seeded with 0)."""

    def cached(self, sources: list[str]) -> list[int]:
        """Which of ``sources`` are the scenario's cached cells."""
        return [i for i, c in enumerate(sources) if self.auto or c.startswith(CACHE)]

    @property
    def phase2(self) -> list[str]:
        return self.cells if self.cells2 is None else self.cells2

    @property
    def expected(self) -> list[str]:
        n = len(self.cached(self.phase2))
        return [self.expect] * n if isinstance(self.expect, str) else list(self.expect)


def sub(cells: list[str], old: str, new: str) -> list[str]:
    """``cells`` with ``old`` replaced by ``new`` in exactly one cell (asserted)."""
    hits = [i for i, c in enumerate(cells) if old in c]
    assert len(hits) == 1, (old, hits)
    out = list(cells)
    out[hits[0]] = out[hits[0]].replace(old, new)
    return out


def plain_source(source: str) -> str:
    """The cell without its ``%%cache`` line: what a plain run executes."""
    if source.startswith(CACHE):
        return source.split("\n", 1)[1] if "\n" in source else ""
    return source


@dataclass
class ScenarioResult:
    scenario: Scenario
    first: list[Any]  # executed cells of phase 1 (with %%cache), this scenario's only
    second: list[Any]  # executed cells of phase 2 (with %%cache)
    plain: list[Any]  # executed cells of phase 2 without %%cache
    error: str | None = None


# -- notebooks ------------------------------------------------------------------------------------
_PROLOGUE = """\
import os as _h_os, sys as _h_sys, warnings as _h_warnings, locale as _h_locale
if not hasattr(_h_sys, "_scenario_env"):
    _h_sys._scenario_env = dict(_h_os.environ)
    _h_sys._scenario_filters = list(_h_warnings.filters)
    _h_sys._scenario_locale = _h_locale.setlocale(_h_locale.LC_ALL)
"""

_HARNESS = """\
import os as _h_os, sys as _h_sys, random as _h_random, warnings as _h_warnings, locale as _h_locale
_h_os.environ.clear()
_h_os.environ.update(_h_sys._scenario_env)
_h_os.environ.update({env!r})
_h_os.chdir({folder!r})
_h_locale.setlocale(_h_locale.LC_ALL, _h_sys._scenario_locale)
if "decimal" in _h_sys.modules:
    _h_sys.modules["decimal"].setcontext(_h_sys.modules["decimal"].Context())
{rng}if "numpy" in _h_sys.modules:
    _h_sys.modules["numpy"].set_printoptions(edgeitems=3, infstr="inf", linewidth=75, nanstr="nan", precision=8,
        suppress=False, threshold=1000, formatter=None, sign="-", floatmode="maxprec", legacy=False)
    _h_sys.modules["numpy"].seterr(divide="warn", over="warn", under="ignore", invalid="warn")
if "torch" in _h_sys.modules:
    _h_sys.modules["torch"].set_default_dtype(_h_sys.modules["torch"].float32)
    _h_sys.modules["torch"].use_deterministic_algorithms(False)
if "pandas" in _h_sys.modules:
    import warnings as _h_warnings
    with _h_warnings.catch_warnings():
        _h_warnings.simplefilter("ignore")
        _h_sys.modules["pandas"].reset_option("all")
if "matplotlib" in _h_sys.modules:
    _h_sys.modules["matplotlib"].rcdefaults()
    if "matplotlib.pyplot" in _h_sys.modules:
        _h_sys.modules["matplotlib.pyplot"].close("all")
# last: the resets above may import modules (torch imports sympy) that add warnings filters
_h_warnings.filters[:] = _h_sys._scenario_filters
_h_warnings._filters_mutated()
{config}get_ipython().run_line_magic("reset", "-f")
"""
_AUTO_ON = """\
get_ipython().run_line_magic("config", "NbCache.min_runtime = 0")
get_ipython().run_line_magic("cache_all", "on")
__import__("nbcache.jupyter.auto", fromlist=["NOTE_BELOW"]).NOTE_BELOW = 0  # a note on every hit: the status
"""
_AUTO_OFF = 'get_ipython().run_line_magic("cache_all", "off")\n'


_SEEDED = """\
_h_random.seed(0)
if "numpy" in _h_sys.modules:
    _h_sys.modules["numpy"].random.seed(0)
if "torch" in _h_sys.modules:
    _h_sys.modules["torch"].manual_seed(0)
"""
# New entropy, and numpy's generator keeps its creation SeedSequence: unseeded, as in a fresh kernel.
_FRESH = """\
_h_random.seed()
if "numpy.random" in _h_sys.modules:
    _h_sys.modules["numpy.random"].mtrand._rand._bit_generator.state = _h_sys.modules["numpy.random"].MT19937().state
if "torch" in _h_sys.modules:
    _h_sys.modules["torch"].seed()
"""


def _harness_cell(folder: Path, env: dict[str, str], cache: Path | None, auto: bool = False, fresh_rng: bool = False) -> str:
    config = "" if cache is None else f'get_ipython().run_line_magic("config", "NbCache.directory = {str(cache)!r}")\n'
    if cache is not None:
        config += _AUTO_ON if auto else _AUTO_OFF
    return _HARNESS.format(env=env, folder=str(folder), config=config, rng=_FRESH if fresh_rng else _SEEDED)


def _write(folder: Path, files: dict[str, str | None], bump: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = folder / rel
        if text is None:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.stat().st_mtime if path.exists() else time.time()
        path.write_text(text)
        if bump:
            later = max(old, time.time()) + 10
            os.utime(path, (later, later))


def _execute(cells: list[str], cwd: Path, env: dict[str, str], timeout: int = 120) -> nbformat.NotebookNode:
    """Execute cells in a fresh kernel; thread-safe (the kernel's environment is passed, not set)."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env={**os.environ, **env})
    return nb


def _notebook(batch: list[Scenario], root: Path, phase: str) -> tuple[list[str], list[slice]]:
    plain = phase == "plain"
    cells = ["pass" if plain else "%load_ext nbcache", _PROLOGUE]
    slices = []
    for s in batch:
        folder = root / ("plain" if plain else "work") / s.name
        env = s.env if phase == "first" or s.env2 is None else s.env2
        cells.append(_harness_cell(folder, env, None if plain else root / "cache" / s.name, s.auto, s.fresh_rng))
        body = s.cells if phase == "first" else s.phase2
        start = len(cells)
        cells.extend([plain_source(c) for c in body] if plain else body)
        slices.append(slice(start, len(cells)))
    return cells, slices


def _run_batch(batch: list[Scenario], root: Path) -> dict[str, ScenarioResult]:
    for s in batch:
        _write(root / "work" / s.name, s.files)
        plain_folder = root / "plain" / s.name
        _write(plain_folder, s.files)
        _write(plain_folder, s.files2)
    results: dict[str, list[Any]] = {}
    errors: dict[str, str] = {}
    for phase in ("first", "second", "plain"):
        if phase == "second":
            for s in batch:
                _write(root / "work" / s.name, s.files2, bump=True)
        cells, slices = _notebook(batch, root, phase)
        try:
            nb = _execute(cells, root, {})
        except Exception as exc:  # noqa: BLE001 - a dead kernel fails the batch's scenarios, not the run
            for s in batch:
                errors[s.name] = f"{phase}: {type(exc).__name__}: {exc}"
            continue
        for s, part in zip(batch, slices):
            harness = nb.cells[part.start - 1]
            if harness.outputs:  # the harness cell must run silently; anything else breaks the scenario
                errors[s.name] = f"{phase}: the harness cell showed {list(harness.outputs)}"
            results.setdefault(s.name, []).append(nb.cells[part])
    out = {}
    for s in batch:
        got = results.get(s.name, [])
        if len(got) != 3:
            out[s.name] = ScenarioResult(s, [], [], [], errors.get(s.name, "incomplete"))
        else:
            out[s.name] = ScenarioResult(s, *got, error=errors.get(s.name))
    return out


def run_scenarios(scenarios: list[Scenario], root: Path, batches: int = 4, workers: int = 3) -> dict[str, ScenarioResult]:
    """Run every scenario (batched into few kernels; isolated ones alone), in parallel."""
    names = [s.name for s in scenarios]
    assert len(names) == len(set(names)), "scenario names must be unique"
    groups: list[list[Scenario]] = [[] for _ in range(batches)]
    shared = [s for s in scenarios if not s.isolate]
    for i, s in enumerate(shared):
        groups[i % batches].append(s)
    groups = [g for g in groups if g] + [[s] for s in scenarios if s.isolate]
    # the longest batches first, so the isolated ones fill the gaps
    groups.sort(key=len, reverse=True)
    results: dict[str, ScenarioResult] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(lambda g: _run_batch(g, root), groups):
            results.update(part)
    return results


# -- reading outputs ----------------------------------------------------------------------------
def status(cell: Any) -> str:
    notes = [o for o in cell.outputs if o.get("output_type") == "display_data" and "nbcache" in o.get("metadata", {})]
    return "hit" if any(n["metadata"]["nbcache"].get("status") == "hit" for n in notes) else "miss"


def nbcache_lines(cell: Any) -> list[str]:
    """Every line of text (streams, display text) of the cell that starts with ``nbcache:``."""
    lines = []
    for o in cell.outputs:
        if o.get("output_type") == "stream":
            text = o.get("text", "")
        elif o.get("output_type") in ("display_data", "execute_result"):
            text = o.get("data", {}).get("text/plain", "")
        else:
            continue
        lines.extend(line for line in text.splitlines() if line.startswith("nbcache:"))
    return lines


def stderr_lines(cell: Any) -> list[str]:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stderr").splitlines()


def errors(cells: list[Any]) -> list[str]:
    return [
        f"cell {i}: {o['ename']}: {o['evalue']}"
        for i, c in enumerate(cells)
        for o in c.outputs
        if o.get("output_type") == "error"
    ]


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"
