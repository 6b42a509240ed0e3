"""``nbcache run``: a notebook executed twice in fresh kernels; the second run replays the slow cells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from conftest import run_cli

SLOW_CELLS = [
    "import time\nimport numpy as np",
    "time.sleep(0.6)\ndata = np.arange(1_000)\nprint('loaded', int(data.sum()))",
    "from IPython.display import HTML\ntime.sleep(0.6)\nmodel = {'mean': float(data.mean())}\ndisplay(HTML('<b>trained</b>'))\nmodel",
    "print('score', model['mean'] * 2)",
]


def notebook(folder: Path, cells: list[str], name: str = "nb.ipynb") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a notebook")] + [nbformat.v4.new_code_cell(c) for c in cells]
    path = folder / name
    nbformat.write(nb, path)
    return path


def statuses(summary: str) -> list[str]:
    """The status of each cell the summary lists, by cell index (``-`` for cells it does not list)."""
    found = {int(line.split()[1]): line.split()[2] for line in summary.splitlines() if line.startswith("  cell ")}
    return [found.get(i, "-") for i in range(max(found, default=-1) + 1)]


def outputs(path: Path) -> list[Any]:
    """Every cell's outputs, without execution counts (cell ids and timing metadata are not outputs)."""
    nb = nbformat.read(path, as_version=4)
    return [[{k: v for k, v in o.items() if k != "execution_count"} for o in c.get("outputs", [])] for c in nb.cells]


def test_a_second_run_replays_the_slow_cells_with_identical_outputs(tmp_path: Path) -> None:
    path = notebook(tmp_path, SLOW_CELLS)
    cache = tmp_path / "cache"
    first = run_cli("run", str(path), "-o", str(tmp_path / "first.ipynb"), "--dir", str(cache))
    second = run_cli("run", str(path), "-o", str(tmp_path / "second.ipynb"), "--dir", str(cache))
    # (the import cell may take more or less than min_runtime: only the two slow cells are certain)
    assert statuses(first.stdout)[2:4] == ["stored", "stored"], first.stdout
    assert statuses(second.stdout)[2:4] == ["hit", "hit"], second.stdout
    assert "0 replayed" in first.stdout and "0 stored" in second.stdout
    assert all("saved" in line for line in second.stdout.splitlines() if " hit " in line)
    got, want = outputs(tmp_path / "second.ipynb"), outputs(tmp_path / "first.ipynb")
    assert got == want
    assert any("trained" in str(o) for o in want[3]) and "loaded 499500" in str(want[2])
    assert len(list(cache.glob("manifests/*.json"))) >= 2
    # the source notebook was not touched (-o), and its outputs are still empty
    assert outputs(path) == [[] for _ in range(len(SLOW_CELLS) + 1)]


def test_in_place_by_default_and_the_notebooks_own_nbcache_cells(tmp_path: Path) -> None:
    cells = ["%load_ext nbcache", "%%cache --name own\nx = 40 + 2\nprint(x)", "import time\ntime.sleep(0.3)\ny = x + 1\ny"]
    path = notebook(tmp_path, cells)
    run_cli("run", str(path), "--inplace")
    second = run_cli("run", str(path))
    assert (tmp_path / ".nbcache" / "manifests").is_dir()  # next to the notebook, as Jupyter runs it
    shown = outputs(path)
    assert shown[2] == [{"name": "stdout", "output_type": "stream", "text": "42\n"}]
    assert shown[3][0]["data"]["text/plain"] == "43"
    assert statuses(second.stdout)[3] == "hit"  # the slow cell


def test_a_cell_that_raises_fails_the_run_unless_errors_are_allowed(tmp_path: Path) -> None:
    cells = ["x = 1", "raise ValueError('broken cell')", "print('after', x)"]
    path = notebook(tmp_path, cells)
    failed = run_cli("run", str(path), "-o", str(tmp_path / "out.ipynb"), expect=1)
    assert "ValueError" in failed.stderr and "--allow-errors" in failed.stderr
    written = outputs(tmp_path / "out.ipynb")
    assert written[2][0]["ename"] == "ValueError" and written[3] == []  # stopped at the error
    run_cli("run", str(path), "-o", str(tmp_path / "out.ipynb"), "--allow-errors")
    written = outputs(tmp_path / "out.ipynb")
    assert written[3] == [{"name": "stdout", "output_type": "stream", "text": "after 1\n"}]
    assert list((tmp_path / ".nbcache").glob("manifests/*.json")) == []


def test_the_commands_key_signs_what_the_kernel_stores(tmp_path: Path) -> None:
    path = notebook(tmp_path, ["x = 40 + 2\nprint(x)"])
    cache, key = tmp_path / "cache", tmp_path / "team.key"
    key.write_text("a-team-secret\n")
    run_cli("--key", str(key), "run", str(path), "--dir", str(cache), "--min-runtime", "0")
    assert len(json.loads(run_cli("--key", str(key), "--dir", str(cache), "ls", "--json").stdout)) == 1
    assert json.loads(run_cli("--dir", str(cache), "ls", "--json").stdout) == []  # another key: foreign
    second = run_cli("--key", str(key), "run", str(path), "--dir", str(cache), "--min-runtime", "0")
    assert "1 replayed" in second.stdout, second.stdout
    missing = run_cli("--key", str(tmp_path / "nope.key"), "run", str(path), expect=2)
    assert "cannot read the key file" in missing.stderr


def test_usage_errors(tmp_path: Path) -> None:
    missing = run_cli("run", str(tmp_path / "nope.ipynb"), expect=2)
    assert "nbcache: no notebook at" in missing.stderr
    (tmp_path / "bad.ipynb").write_text("not json")
    bad = run_cli("run", str(tmp_path / "bad.ipynb"), expect=2)
    assert "is not a notebook" in bad.stderr
    both = run_cli("run", str(tmp_path / "bad.ipynb"), "-o", "x.ipynb", "--inplace", expect=2)
    assert "not allowed with" in both.stderr
