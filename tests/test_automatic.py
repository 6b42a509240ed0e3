"""Automatic mode's rules, as plain Python: which cells it never caches, which runs it does not store."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from nbcache.run.automatic import Admission, never_cached, own_cell_magic
from nbcache.run.engine import Engine, RunOptions
from nbcache.store.backends import LocalFolderStore
from nbcache.store.cache import Cache
from test_engine import DictHost

_ipython = TransformerManager()


def python(source: str) -> str:
    return _ipython.transform_cell(source)


def reason(source: str) -> str | None:
    return never_cached(ast.parse(python(source)), python)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("%pip install requests\nimport requests", "it installs packages (%pip)"),
        ("%conda install numpy", "it installs packages (%conda)"),
        ("%load_ext autoreload", "it loads an extension (%load_ext)"),
        ("%run helper.py", "it runs another file (%run)"),
        ("%matplotlib inline", "%matplotlib acts on IPython itself"),
        ("%config InlineBackend.figure_format = 'svg'", "%config acts on IPython itself"),
        ("%cache_all off", "%cache_all acts on IPython itself"),
        ("%%bash\necho hi\n", "%%bash is a cell magic"),
        ("%%writefile out.txt\nhello\n", "%%writefile is a cell magic"),
        ("%%timeit\nsum(range(9))\n", "%%timeit is a cell magic"),
        ("!ls -l", "it runs a shell command"),
        ("files = !ls", "it runs a shell command"),
        ("import asyncio\nawait asyncio.sleep(0)", "it awaits at top level"),
        ("async with lock:\n    pass", "it awaits at top level"),
        ("name = input('name? ')", "it asks for input (input())"),
        ("import getpass\npw = getpass.getpass()", "it asks for input (getpass())"),
        ("from ipywidgets import interact\ninteract(f, x=3)", "it sets up interactive widgets (interact)"),
        ("@interact(x=(0, 9))\ndef show(x):\n    print(x)", "it sets up interactive widgets (@interact)"),
        ("@interact\ndef show(x=1):\n    print(x)", "it sets up interactive widgets (@interact)"),
        ("slider.observe(update, names='value')", "it sets up interactive widgets (observe)"),
        ("button.on_click(go)", "it sets up interactive widgets (on_click)"),
        ("ns = get_ipython().user_ns", "it talks to IPython directly (get_ipython())"),
        ("shell = get_ipython()", "it talks to IPython directly (get_ipython())"),
        ("print(get_ipython() and 1)", "it talks to IPython directly (get_ipython())"),
        # what %time and %%time run is checked too
        ("%time x = input()", "it asks for input (input())"),
        ("%%time\n!make data\n", "it runs a shell command"),
    ],
)
def test_cells_that_are_never_cached(source: str, expected: str) -> None:
    assert reason(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "x = 1",
        "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf",
        "async def fetch():\n    await thing()\n",  # an await inside a function is not top level
        "%time total = sum(range(10))",
        "%%time\ntotal = sum(range(10))\n",
        "%%capture out\nprint('hi')\n",
        "%env MY_VAR=1",
        "%cd /tmp",
        "model.fit(X, y)\nmodel.score(X, y)",
        "%%cache\nx = 1\n",  # our own magics decide for themselves
        "%%nocache\nx = 1\n",
    ],
)
def test_cells_that_go_through_the_cache(source: str) -> None:
    assert reason(source) is None


def test_own_cell_magics_are_recognised() -> None:
    assert own_cell_magic(ast.parse(python("%%cache --name x\ny = 1\n")))
    assert own_cell_magic(ast.parse(python("%%nocache\ny = 1\n")))
    assert not own_cell_magic(ast.parse(python("%%time\ny = 1\n")))
    assert not own_cell_magic(ast.parse("y = 1"))


# -- Admission, through the engine over a dict ------------------------------------------------------
@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(LocalFolderStore(str(tmp_path / "cache")), key="test-automatic-key")


def _auto(min_runtime: float) -> RunOptions:
    return RunOptions(admit=Admission(min_runtime), warn_uncached=False)


def test_a_run_shorter_than_min_runtime_is_not_stored(cache: Cache) -> None:
    engine, host = Engine(lambda: cache), DictHost()
    outcome = engine.run(host, "x = 1", _auto(60.0))
    assert outcome.status == "skipped" and "less than NbCache.min_runtime (60 s)" in (outcome.reason or "")
    assert list(cache.entries()) == [] and host.namespace["x"] == 1 and host.warnings == []
    # with no threshold the same cell is stored, and hits
    assert engine.run(host, "x = 1", _auto(0.0)).status == "stored"
    assert engine.run(DictHost(), "x = 1", _auto(60.0)).status == "hit"


def test_a_run_that_wrote_a_file_is_stored_and_a_hit_writes_it_again(cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "out.txt"
    engine, host = Engine(lambda: cache), DictHost({"target": str(target)})
    cell = "with open(target, 'w') as fh:\n    fh.write('x')\n"
    assert engine.run(host, cell, _auto(0.0)).status == "stored"
    target.unlink()
    fresh = DictHost({"target": str(target)})
    outcome = engine.run(fresh, cell, _auto(0.0))
    assert outcome.status == "hit" and outcome.files == (str(target),)  # named absolutely: kept so
    assert target.read_text() == "x" and fresh.namespace["fh"].closed and fresh.namespace["fh"].name == str(target)


def test_a_run_that_removed_a_file_is_stored_and_a_hit_removes_it_again(cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "old.txt"
    target.write_text("old")
    engine, host = Engine(lambda: cache), DictHost({"target": str(target)})
    assert engine.run(host, "import os\nos.remove(target)\n", _auto(0.0)).status == "stored"
    target.write_text("old")
    outcome = engine.run(DictHost({"target": str(target)}), "import os\nos.remove(target)\n", _auto(0.0))
    assert outcome.status == "hit" and not target.exists()


def test_a_run_that_started_a_process_is_not_stored(cache: Cache) -> None:
    engine, host = Engine(lambda: cache), DictHost()
    cell = "import subprocess, sys\nout = subprocess.run([sys.executable, '-c', 'print(1)'], capture_output=True).stdout\n"
    outcome = engine.run(host, cell, _auto(0.0))
    assert outcome.status == "skipped" and "it started a process" in (outcome.reason or "")
    assert host.namespace["out"].strip() == b"1" and list(cache.entries()) == []


def test_a_program_that_only_looks_at_the_machine_does_not_prevent_storing(cache: Cache) -> None:
    # joblib runs lscpu to count cores the first time scikit-learn cross-validates
    engine, host = Engine(lambda: cache), DictHost()
    cell = "import subprocess\ncores = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()\n"
    outcome = engine.run(host, cell, _auto(0.0))
    assert outcome.status == "stored", outcome.reason


def test_scratch_files_do_not_prevent_storing(cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine, host = Engine(lambda: cache), DictHost()
    # made and removed within the cell
    cell = "import os\nwith open('part.tmp', 'w') as fh:\n    fh.write('x')\nos.remove('part.tmp')\ndel fh\nv = 2\n"
    outcome = engine.run(host, cell, _auto(0.0))
    assert outcome.status == "stored", outcome.reason
    cell = "import tempfile\nwith tempfile.TemporaryDirectory() as scratch:\n    open(scratch + '/a', 'w').close()\nw = 3\n"
    outcome = engine.run(host, cell, _auto(0.0))
    assert outcome.status == "stored", outcome.reason


def test_a_temporary_folder_left_for_later_cells_is_made_again_by_a_hit(cache: Cache) -> None:
    engine, host = Engine(lambda: cache), DictHost()
    outcome = engine.run(host, "import tempfile\nwork = tempfile.mkdtemp()\n", _auto(0.0))
    assert outcome.status == "stored"
    work = host.namespace["work"]
    os.rmdir(work)
    fresh = DictHost()
    assert engine.run(fresh, "import tempfile\nwork = tempfile.mkdtemp()\n", _auto(0.0)).status == "hit"
    assert fresh.namespace["work"] == work and os.path.isdir(work)
    os.rmdir(work)


def test_in_automatic_mode_a_cell_that_cannot_be_cached_says_nothing(cache: Cache) -> None:
    engine = Engine(lambda: cache)
    host = DictHost({"gen": (i for i in range(3))})
    outcome = engine.run(host, "first = next(gen)", _auto(0.0))
    assert outcome.status == "skipped" and "gen" in (outcome.reason or "")
    assert host.warnings == [] and host.namespace["first"] == 0
    # while %%cache warns
    other = DictHost({"gen": (i for i in range(3))})
    engine.run(other, "first = next(gen)", RunOptions())
    assert len(other.warnings) == 1 and "gen" in other.warnings[0]
