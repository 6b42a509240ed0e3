"""What a cell reads outside Python: files, folders, env vars, local modules; and state it leaves."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import Shell


def touch_later(path: Path, text: str) -> None:
    time.sleep(0.01)
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a distinct mtime


def test_file_read_by_pandas_invalidates(shell: Shell, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n2\n")
    cell = "%%cache\nimport pandas as pd\ntotal = pd.read_csv('data.csv')['a'].sum()\n"
    shell.run(cell)
    assert shell.ns["total"] == 3
    shell.run(cell)
    assert shell.status == "hit"
    touch_later(data, "a\n1\n2\n")  # same content, new mtime: still a hit
    shell.run(cell)
    assert shell.status == "hit"
    touch_later(data, "a\n1\n5\n")
    t = shell.run("%%cache --explain\nimport pandas as pd\ntotal = pd.read_csv('data.csv')['a'].sum()\n")
    assert shell.status == "stored" and shell.ns["total"] == 6
    assert any("data.csv changed" in n for n in t.notes)


def test_deps_folder_is_part_of_the_key(shell: Shell, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "one.txt").write_text("1")
    cell = "%%cache --deps d\nx = 1\n"
    shell.run(cell)
    shell.run(cell)
    assert shell.status == "hit"
    (tmp_path / "d" / "two.txt").write_text("2")
    shell.run(cell)
    assert shell.status == "stored"


def test_local_module_and_its_imports_invalidate(shell: Shell, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))  # a kernel has its working folder on sys.path
    (tmp_path / "util.py").write_text("K = 2\n")
    (tmp_path / "helpers.py").write_text("import util\ndef f(x):\n    return x * util.K\n")
    cell = "%%cache\nimport helpers\ny = helpers.f(10)\n"
    shell.run(cell)
    assert shell.ns["y"] == 20
    shell.restart()
    shell.run(cell)
    assert shell.status == "hit"
    (tmp_path / "util.py").write_text("K = 3\n")
    shell.restart()
    import sys

    sys.modules.pop("helpers", None)
    sys.modules.pop("util", None)
    shell.run(cell)
    assert shell.status == "stored" and shell.ns["y"] == 30


def test_environment_variable_read_invalidates(shell: Shell, monkeypatch) -> None:
    monkeypatch.setenv("NBC_MODE", "a")
    cell = "%%cache\nimport os\nmode = os.environ.get('NBC_MODE')\n"
    shell.run(cell)
    shell.run(cell)
    assert shell.status == "hit"
    monkeypatch.setenv("NBC_MODE", "b")
    shell.run(cell)
    assert shell.status == "stored" and shell.ns["mode"] == "b"


def test_state_changes_are_restored_on_a_hit(shell: Shell, tmp_path: Path, monkeypatch) -> None:
    import numpy as np
    import pandas as pd

    (tmp_path / "sub").mkdir()
    monkeypatch.delenv("NBC_SET", raising=False)
    cell = (
        "%%cache\nimport os, random\nimport numpy as np\nimport pandas as pd\n"
        "random.seed(3)\nnp.random.seed(3)\na = random.random()\nb = np.random.rand()\n"
        "pd.set_option('display.max_rows', 7)\nos.environ['NBC_SET'] = 'yes'\nos.chdir('sub')\n"
    )
    shell.run(cell)
    expected = (random_next := __import__("random").random(), np.random.rand())
    os.chdir(tmp_path)
    monkeypatch.delenv("NBC_SET")
    pd.reset_option("display.max_rows")
    __import__("random").seed(99)
    np.random.seed(99)
    shell.run(cell)
    assert shell.status == "hit"
    assert (__import__("random").random(), np.random.rand()) == expected
    assert pd.get_option("display.max_rows") == 7 and os.environ["NBC_SET"] == "yes"
    assert Path.cwd() == tmp_path / "sub"
    pd.reset_option("display.max_rows")
    del random_next


def test_unseeded_draw_depends_on_the_generator_state(shell: Shell) -> None:
    import numpy as np

    cell = "%%cache\nimport numpy as np\nv = np.random.rand()\n"
    np.random.seed(1)
    shell.run(cell)
    first = shell.ns["v"]
    np.random.seed(2)
    shell.run(cell)
    assert shell.status == "stored" and shell.ns["v"] != first
    np.random.seed(1)
    shell.run(cell)
    assert shell.status == "hit" and shell.ns["v"] == first


def test_edited_module_still_loaded_runs_uncached_and_says_why(shell: Shell, tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "greet.py").write_text("def hello():\n    return 'hi'\n")
    sys.modules.pop("greet", None)
    cell = "%%cache\nimport greet\nword = greet.hello()\n"
    shell.run(cell)
    (tmp_path / "greet.py").write_text("def hello():\n    return 'HI'\n")
    t = shell.run(cell)
    # a plain run would use the loaded (old) code: so does this run, and it is not stored
    assert shell.status == "skipped" and shell.ns["word"] == "hi"
    assert t.stderr.startswith("nbcache: not cached: module greet changed on disk") and "reload" in t.stderr
    shell.run("import importlib\nimportlib.reload(greet)")
    shell.run(cell)
    assert shell.status == "stored" and shell.ns["word"] == "HI"
    sys.modules.pop("greet", None)


def test_showing_a_figure_does_not_invalidate_earlier_entries(shell: Shell) -> None:
    shell.run("%matplotlib inline\nimport matplotlib.pyplot as plt")
    cell = "%%cache\ntotal = sum(range(1000))\n"
    shell.run(cell)
    shell.run("fig, ax = plt.subplots()\nax.plot([1, 2])\nplt.show()")
    shell.run(cell)
    assert shell.status == "hit"


def test_looking_up_installed_distributions_is_not_a_read(tmp_path: Path, monkeypatch) -> None:
    # importlib.metadata lists every sys.path entry ("" is the working folder) when a library
    # asks for a version at import: that is no data the cell read
    import importlib.metadata
    import sys

    from nbcache.key.deps import Watch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    importlib.metadata.FastPath.__new__.cache_clear()
    with Watch() as watch:
        list(importlib.metadata.distributions())
        os.listdir(".")
    assert list(watch.dirs) == [str(tmp_path)]  # the cell's own listing is a read
    assert watch.relative
    with Watch() as watch:
        list(importlib.metadata.distributions())
    assert list(watch.dirs) == [] and not watch.relative


def test_pseudo_filesystems_are_never_dependencies(tmp_path: Path) -> None:
    # plotly's import lists /proc, whose listing changes with every process
    from nbcache.key.deps import Watch

    (tmp_path / "data.txt").write_text("x")
    with Watch() as watch:
        for folder in ("/proc", "/proc/self", "/sys", "/dev"):
            os.listdir(folder)
        with open("/proc/self/status") as fh:
            fh.read()
        with open("/dev/null") as fh:
            fh.read()
        with open(tmp_path / "data.txt") as fh:
            fh.read()
        os.listdir(tmp_path)
    assert list(watch.files) == [str(tmp_path / "data.txt")]
    assert list(watch.dirs) == [str(tmp_path)]
def test_a_default_a_library_sets_for_itself_is_no_input(shell: Shell, monkeypatch) -> None:
    # torch sets TORCHINDUCTOR_CACHE_DIR to a folder of its own when an optimizer first steps (and
    # reads it back); as an input it would make the next run miss, and that run's entry every run
    # after a restart. Any other variable a cell sets for itself is an input as it was before.
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("NBC_OWN_DEFAULT", raising=False)
    for name, second in (("TORCHINDUCTOR_CACHE_DIR", "hit"), ("NBC_OWN_DEFAULT", "stored")):
        cell = f"%%cache\nimport os\nfolder = os.environ.setdefault({name!r}, '/tmp/default')\n"
        shell.run(cell)
        assert shell.status == "stored"
        shell.run(cell)
        assert shell.status == second, name
