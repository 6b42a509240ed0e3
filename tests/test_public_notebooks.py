"""Real public notebooks, every code cell under ``%%cache``: warm runs and one-cell edits.

The notebooks are example notebooks that scikit-learn and statsmodels publish (numpy, pandas,
matplotlib, scikit-learn, statsmodels), read from their source releases on the package registry;
see ``public_notebooks.py`` for where they come from and how each run is made. For each one:

- the plain run raises nothing, and at least half of its cells are deterministic (show the same
  in two plain runs); only those are compared, nbcache's own notes left out;
- the first run under ``%%cache`` (empty cache) and the warm run (a new kernel on that cache)
  show exactly what the plain run shows, and in the warm run every cell hits (but the ones a
  notebook lists, each with its reason);
- the edited notebook under ``%%cache`` shows exactly what a plain run of the edited notebook
  shows; the cells before the edit hit, the edited cell misses, and each later cell that cannot
  depend on the edit (the test's own conservative data-flow model, ``independent_of``) hits;
- the edit changes at least one deterministic output, so a stale hit would be seen.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT
from scenarios_harness import nbcache_lines
from public_notebooks import NOTEBOOKS, PublicNotebook, deterministic, errored, independent_of, outputs, run_notebook_variants, statuses

DOWNLOADS = ROOT / "build" / "public-notebooks"


def _differences(name: str, cells: list[str], got: list, want: list, which: list[int]) -> list[str]:
    out = []
    for i in which:
        if outputs(got[i]) != outputs(want[i]):
            out.append(
                f"{name}: cell {i} ({cells[i].splitlines()[0][:60]!r}) shows\n  {json.dumps(outputs(got[i]))[:400]}\n"
                f"a plain run shows\n  {json.dumps(outputs(want[i]))[:400]}"
            )
    return out


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.id for nb in NOTEBOOKS])
def test_public_notebook_under_cache(nb: PublicNotebook, tmp_path: Path) -> None:
    r = run_notebook_variants(nb, DOWNLOADS, tmp_path)
    runs, n = r.runs, len(r.cells)

    assert not [i for i, c in enumerate(runs["plain"]) if errored(c)], "the notebook itself fails"
    assert not [i for i, c in enumerate(runs["edited_plain"]) if errored(c)], "the edited notebook fails"
    same = deterministic(runs["plain"], runs["plain2"])
    same_edited = deterministic(runs["edited_plain"], runs["edited_plain2"])
    assert len(same) >= n / 2 and len(same_edited) >= n / 2, (same, same_edited)

    problems = _differences("first run", r.cells, runs["cold"], runs["plain"], same)
    problems += _differences("warm run", r.cells, runs["warm"], runs["plain"], same)
    problems += _differences("edited run", r.cells_edited, runs["edited"], runs["edited_plain"], same_edited)
    assert not problems, "\n".join(problems)

    assert statuses(runs["cold"]) == ["miss"] * n
    warm = statuses(runs["warm"])
    said = {i: (nbcache_lines(runs["cold"][i]), nbcache_lines(runs["warm"][i])) for i in range(n) if warm[i] != "hit"}
    assert [i for i in range(n) if warm[i] != "hit"] == list(nb.warm_misses), (warm, said)

    edited = statuses(runs["edited"])
    e = r.edit_index
    must_hit = [i for i in range(e) if warm[i] == "hit"]
    must_hit += [i for i in sorted(independent_of(r.cells_edited, e)) if warm[i] == "hit"]
    assert edited[e] == "miss"
    assert [i for i in must_hit if edited[i] != "hit"] == [], (must_hit, edited)

    changed = [i for i in set(same) & set(same_edited) if outputs(runs["plain"][i]) != outputs(runs["edited_plain"][i])]
    assert changed, "the edit changes no deterministic output: it would not catch a stale hit"
