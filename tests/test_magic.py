"""%%cache through a real InteractiveShell: a hit shows and leaves exactly what a run does."""

from __future__ import annotations

import pytest

from conftest import Shell

SLOW = """%%cache
import time
time.sleep(0.05)
print("computing", n)
total = sum(range(n))
total
"""


def test_miss_then_hit_restores_variables_and_replays_output(shell: Shell) -> None:
    shell.run("n = 10")
    first = shell.run(SLOW)
    assert shell.status == "stored"
    assert first.stdout == f"computing 10\nOut[{shell.ip.execution_count - 1}]: 45\n"
    assert first.notes == []

    shell.restart()
    shell.run("n = 10")
    second = shell.run(SLOW)
    assert shell.status == "hit"
    assert second.events == [("stdout", "computing 10\nOut[2]: 45\n")]
    assert shell.ns["total"] == 45
    assert shell.ns["_"] == 45 and shell.ns["Out"][2] == 45
    assert len(second.notes) == 1 and second.notes[0].startswith("nbcache: restored from cache")


def test_input_change_misses(shell: Shell) -> None:
    shell.run("n = 10")
    shell.run(SLOW)
    shell.run("n = 11")
    t = shell.run(SLOW)
    assert shell.status == "stored"
    assert "computing 11" in t.stdout and shell.ns["total"] == 55


def test_comment_and_layout_edit_hits(shell: Shell) -> None:
    shell.run("n = 3")
    shell.run("%%cache\ntotal = sum(range(n))\n")
    shell.run("%%cache\n# a comment\ntotal = sum( range( n ) )  # another\n\n")
    assert shell.status == "hit"


def test_code_edit_misses(shell: Shell) -> None:
    shell.run("n = 3")
    shell.run("%%cache\ntotal = sum(range(n))\n")
    shell.run("%%cache\ntotal = sum(range(n + 1))\n")
    assert shell.status == "stored" and shell.ns["total"] == 6


def test_rich_outputs_replay_in_order_and_type(shell: Shell) -> None:
    cell = """%%cache
import sys
from IPython.display import display, HTML, Markdown, Image
print("one")
display(HTML("<b>bold</b>"))
print("warn", file=sys.stderr)
display(Markdown("*md*"))
display(Image(data=b"\\x89PNG\\r\\n\\x1a\\nfakepng", format="png"))
print("two")
"""
    first = shell.run(cell)
    shell.restart()
    second = shell.run(cell)
    assert shell.status == "hit"
    assert second.events == first.events
    kinds = [e[0] for e in first.events]
    assert kinds == ["stdout", "display", "stderr", "display", "display", "stdout"]
    assert first.events[1][1]["text/html"] == "<b>bold</b>"
    assert "image/png" in first.events[4][1]


def test_pandas_table_and_matplotlib_figure_replay(shell: Shell) -> None:
    shell.run("%matplotlib inline")
    cell = """%%cache
import pandas as pd
import matplotlib.pyplot as plt
df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
display(df)
fig, ax = plt.subplots()
ax.plot(df["a"])
df.describe()
"""
    first = shell.run(cell)
    shell.restart()
    shell.run("%matplotlib inline")
    second = shell.run(cell)
    assert shell.status == "hit"
    assert second.normalized() == first.normalized()
    displays = [e[1] for e in first.events if e[0] == "display"]
    assert any("text/html" in d and "<table" in d["text/html"] for d in displays)
    assert any("image/png" in d for d in displays)
    assert shell.ns["df"].equals(__import__("pandas").DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}))


def test_result_sets_underscore_and_out_and_aliases(shell: Shell) -> None:
    cell = "%%cache\nx = [1, 2]\ny = x\nx\n"
    shell.run(cell)
    shell.restart()
    t = shell.run(cell)
    assert shell.status == "hit"
    assert t.stdout == "Out[1]: [1, 2]\n"
    assert shell.ns["_"] is shell.ns["x"] is shell.ns["y"]
    assert shell.ns["Out"][1] is shell.ns["x"]


def test_trailing_semicolon_suppresses_result_on_miss_and_hit(shell: Shell) -> None:
    cell = "%%cache\nv = 41\nv + 1;\n"
    first = shell.run(cell)
    shell.restart()
    second = shell.run(cell)
    assert shell.status == "hit"
    assert first.events == second.events == []
    assert "_" not in shell.ns or shell.ns["_"] != 42


def test_del_is_replayed(shell: Shell) -> None:
    shell.run("a = 1\nb = 2")
    cell = "%%cache\ndel a\nc = 3\n"
    shell.run(cell)
    assert "a" not in shell.ns
    shell.restart()
    shell.run("a = 1\nb = 2")
    shell.run(cell)
    assert shell.status == "hit"
    assert "a" not in shell.ns and shell.ns["c"] == 3 and shell.ns["b"] == 2


def test_error_is_shown_and_not_cached(shell: Shell) -> None:
    cell = "%%cache\nprint('before')\nz = 1 / 0\n"
    t = shell.run(cell)
    assert isinstance(t.error, ZeroDivisionError)
    assert shell.status == "error"
    assert t.stdout.startswith("before\n")
    t2 = shell.run(cell)
    assert isinstance(t2.error, ZeroDivisionError)
    assert "before" in t2.stdout  # it ran again: nothing was stored
    assert list((shell.magics.engine.cache.store.list("manifests"))) == []


def test_error_traceback_points_at_the_cells_line(shell: Shell) -> None:
    t = shell.run("%%cache\nx = 1\nundefined_name\n")
    assert isinstance(t.error, NameError)
    assert "line 3" in t.stdout + t.stderr
    assert "engine.py" not in t.stdout + t.stderr


def test_unpicklable_variable_runs_uncached_with_one_line(shell: Shell) -> None:
    cell = "%%cache\nimport threading\nlock = threading.Lock()\nok = 1\nprint('ran')\n"
    t = shell.run(cell)
    assert shell.status == "skipped"
    assert t.stdout == "ran\n"
    lines = [line for line in t.stderr.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("nbcache:")
    assert "'lock'" in lines[0] and "lock" in lines[0]
    assert shell.ns["ok"] == 1
    assert list(shell.magics.engine.cache.store.list("manifests")) == []


def test_unfingerprintable_input_runs_uncached_naming_it(shell: Shell) -> None:
    shell.run("gen = (i for i in range(3))")
    t = shell.run("%%cache\nfirst = next(gen)\n")
    assert shell.status == "skipped"
    assert shell.ns["first"] == 0
    assert t.stderr.startswith("nbcache:") and "'gen'" in t.stderr and "generator" in t.stderr


def test_force_reruns_and_overwrites(shell: Shell) -> None:
    cell = "%%cache\nprint('ran')\nx = 1\n"
    shell.run(cell)
    t = shell.run(cell.replace("%%cache", "%%cache --force"))
    assert shell.status == "stored" and t.stdout == "ran\n"
    t = shell.run(cell)
    assert shell.status == "hit"


def test_skip_runs_without_cache(shell: Shell) -> None:
    t = shell.run("%%cache --skip\nprint('ran')\nx = 1\n")
    assert shell.status == "skipped" and t.stdout == "ran\n"
    assert t.stderr == ""  # --skip is the user's choice: no warning
    assert list(shell.magics.engine.cache.store.list("manifests")) == []


def test_quiet_option_and_config(shell: Shell) -> None:
    shell.run("%config NbCache.judge_restores = False")  # x = 1 does not pay: hit it twice anyway
    shell.run("%%cache\nx = 1\n")
    assert shell.run("%%cache --quiet\nx = 1\n").notes == []
    shell.run("%config NbCache.quiet = True")
    assert shell.run("%%cache\nx = 1\n").notes == []
    assert shell.status == "hit"


def test_name_label_is_stored(shell: Shell) -> None:
    shell.run("%%cache --name my-label\nx = 1\n")
    entries = list(shell.magics.engine.cache.entries())
    assert [e.label for e in entries] == ["my-label"]


def test_unknown_option_is_a_usage_error_naming_it(shell: Shell) -> None:
    t = shell.run("%%cache --bogus\nx = 1\n")
    assert "--bogus" in t.stderr + t.stdout
    assert "x" not in shell.ns


@pytest.mark.parametrize("cell", ["%%cache\n", "%%cache", "%%cache\n   \n", "%%cache --explain\n\n"])
def test_an_empty_cell_is_a_no_op_as_the_cell_itself_would_be(shell: Shell, cell: str) -> None:
    t = shell.run(cell)
    assert t.error is None and t.stdout == t.stderr == "" and t.events == [] and t.notes == []
    assert list(shell.magics.engine.cache.entries()) == []


def test_ipython_syntax_inside_the_cell(shell: Shell) -> None:
    cell = "%%cache\nfiles = !echo hello\n%time y = len(files)\n"
    shell.run(cell)
    assert shell.ns["files"] == ["hello"] and shell.ns["y"] == 1
    shell.restart()
    shell.run(cell)
    assert shell.status == "hit" and list(shell.ns["files"]) == ["hello"]


def test_in_place_mutation_of_an_input_is_restored(shell: Shell) -> None:
    shell.run("lst = [1]\nalias = lst")
    cell = "%%cache\nlst.append(2)\n"
    shell.run(cell)
    assert shell.ns["lst"] == [1, 2]
    shell.restart()
    shell.run("lst = [1]\nalias = lst")
    shell.run(cell)
    assert shell.status == "hit"
    assert shell.ns["lst"] == [1, 2] and shell.ns["alias"] is shell.ns["lst"]


def test_alias_of_preexisting_object_keeps_identity(shell: Shell) -> None:
    shell.run("base = {'k': 1}")
    cell = "%%cache\nview = base\npair = [base, base]\n"
    shell.run(cell)
    shell.restart()
    shell.run("base = {'k': 1}")
    shell.run(cell)
    assert shell.status == "hit"
    assert shell.ns["view"] is shell.ns["base"] and shell.ns["pair"][1] is shell.ns["base"]


def test_functions_and_classes_stay_live(shell: Shell) -> None:
    shell.run("class P:\n    def __init__(self, v):\n        self.v = v\nK = 1")
    cell = "%%cache\np = P(2)\ndef f(x):\n    return x + K\n"
    shell.run(cell)
    shell.restart()
    shell.run("class P:\n    def __init__(self, v):\n        self.v = v\nK = 1")
    shell.run(cell)
    assert shell.status == "hit"
    assert isinstance(shell.ns["p"], shell.ns["P"])
    shell.run("K = 100")
    assert shell.run("f(1)").result == 101


def test_dynamic_namespace_access_is_not_cached(shell: Shell) -> None:
    t = shell.run("%%cache\nv = eval('1 + 1')\n")
    assert shell.status == "skipped" and shell.ns["v"] == 2
    assert t.stderr.startswith("nbcache: not cached") and "eval" in t.stderr


def test_corrupt_entry_is_a_miss_with_a_warning(shell: Shell) -> None:
    cell = "%%cache\nprint('ran')\nx = list(range(3000))\n"  # a values blob too large for its manifest to hold
    shell.run(cell)
    cache = shell.magics.engine.cache
    (entry,) = list(cache.entries())
    assert entry.values.id not in entry.inline
    path = cache.store._path(entry.values.name)  # type: ignore[attr-defined]
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0xFF
    open(path, "wb").write(bytes(data))
    shell.restart()
    t = shell.run(cell)
    assert t.stdout == "ran\n" and shell.ns["x"] == list(range(3000))
    assert t.stderr.startswith("nbcache:") and "checksum" in t.stderr
    assert shell.status == "stored"


def test_unload_removes_everything_load_registered(shell: Shell) -> None:
    ip = shell.ip
    magics = shell.magics
    from nbcache.jupyter.extension import session

    dashboard = session(ip).dashboard
    assert "cache" in ip.magics_manager.magics["cell"]
    assert magics in ip.configurables and dashboard in ip.configurables
    shell.run("%unload_ext nbcache")
    assert "cache" not in ip.magics_manager.magics["cell"]
    assert "cache_dashboard" not in ip.magics_manager.magics["line"]
    assert magics not in ip.configurables and dashboard not in ip.configurables
    assert "NbCache" not in ip.magics_manager.registry
    assert ip.custom_exceptions == ()  # the syntax-error display is gone too
    from nbcache.key import modules

    assert modules._reloaders == []


def test_a_load_that_fails_midway_leaves_nothing_registered(shell: Shell, monkeypatch) -> None:
    from nbcache.jupyter import extension

    ip = shell.ip
    shell.run("%unload_ext nbcache")
    monkeypatch.setattr(extension, "CellSyntaxErrors", lambda shell: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        extension.load(ip)
    assert "cache" not in ip.magics_manager.magics["cell"] and extension.session(ip) is None
    assert not any(type(c).__name__ in ("NbCache", "DashboardMagics") for c in ip.configurables)
    from nbcache.key import modules

    assert modules._reloaders == []
    monkeypatch.undo()
    extension.load(ip)  # a retry loads cleanly
    assert "cache" in ip.magics_manager.magics["cell"] and extension.session(ip) is not None
    shell.run("%load_ext nbcache")
    assert "cache" in ip.magics_manager.magics["cell"]


def test_help_documents_every_option(shell: Shell) -> None:
    doc = shell.ip.find_cell_magic("cache").__doc__
    for option in ("--force", "--skip", "--name", "--quiet"):
        assert option in doc
    assert "Examples" in doc


@pytest.mark.parametrize("where", ["env", "config"])
def test_cache_location(shell: Shell, tmp_path, monkeypatch, where: str) -> None:
    target = tmp_path / f"elsewhere-{where}"
    shell.magics.directory = ""
    if where == "env":
        monkeypatch.setenv("NBCACHE_DIR", str(target))
    else:
        shell.run(f"%config NbCache.directory = {str(target)!r}")
    shell.run("%%cache\nx = 1\n")
    assert (target / "manifests").is_dir()
    assert (target / ".gitignore").read_text().strip().endswith("*")
    assert "format" in (target / "nbcache-store.json").read_text()


def test_default_location_is_dot_nbcache_in_working_directory(shell: Shell, tmp_path) -> None:
    shell.magics.directory = ""
    shell.run("%unload_ext nbcache")
    shell.run("%load_ext nbcache")
    shell.run("%%cache\nx = 1\n")
    assert (tmp_path / ".nbcache" / "manifests").is_dir()


def test_explain_names_what_changed(shell: Shell) -> None:
    shell.run("threshold = 3")
    shell.run("%%cache\nr = threshold * 2\n")
    shell.run("threshold = 4")
    t = shell.run("%%cache --explain\nr = threshold * 2\n")
    assert shell.status == "stored"
    assert any("nbcache: miss: input 'threshold' changed" in n for n in t.notes)
    shell.run("import nbcache\nexp = nbcache.explain()")
    assert shell.ns["exp"].status == "miss" and "input 'threshold' changed" in shell.ns["exp"].reasons
    t = shell.run("%%cache --explain\nr = threshold * 2\n")
    assert shell.status == "hit" and any(n.startswith("nbcache: hit: restored entry") for n in t.notes)
    # without a notebook cell id, a label ties the edited cell to its earlier entries
    shell.run("%%cache --name scaled\nr = threshold * 20\n")
    t = shell.run("%%cache --name scaled --explain\nr = threshold * 30\n")
    assert any("nbcache: miss: the code changed" in n for n in t.notes)


def test_explain_names_the_generator_state_of_an_unseeded_draw(shell: Shell) -> None:
    shell.run("import numpy as np\nnp.random.seed(1)")
    shell.run("%%cache\nnoise = np.random.rand()\n")
    shell.run("np.random.seed(2)")
    t = shell.run("%%cache --explain\nnoise = np.random.rand()\n")
    assert shell.status == "stored"
    assert any("nbcache: miss: the global numpy.random state differs" in n for n in t.notes), t.notes
    shell.run("np.random.seed(1)")
    shell.run("import random\nrandom.seed(99)")  # Python's own generator: not drawn from, not keyed
    shell.run("%%cache\nnoise = np.random.rand()\n")
    assert shell.status == "hit"


def test_rebinding_to_the_same_object_is_still_stored(shell: Shell) -> None:
    shell.run("value = 1")
    shell.run("%%cache\nvalue = 1\n")
    shell.restart()
    shell.run("%%cache\nvalue = 1\n")
    assert shell.status == "hit" and shell.ns["value"] == 1


def test_the_help_says_how_generators_and_settings_are_treated() -> None:
    from nbcache.jupyter.magic import NbCache

    doc = " ".join((NbCache.cache.__doc__ or "").split())
    assert "a hit leaves it exactly where the run left it" in doc
    assert "Draws from a generator nobody seeded, as in a fresh kernel, are cached" in doc
    assert "imports again the modules it imported" in doc


# -- mistakes are told at once -------------------------------------------------------------------
@pytest.mark.parametrize(
    "setting, value, says",
    [
        ("size_limit", "abc", "NbCache.size_limit = 'abc' is not a size; for example %config NbCache.size_limit = '20GB'"),
        ("compression", "lz4", "NbCache.compression = 'lz4' is not one of 'auto', 'zstd', 'none'; for example %config NbCache.compression = 'zstd'"),
        ("storage_options", 5, "NbCache.storage_options = 5 is not a dict; for example %config NbCache.storage_options = {"),
        ("directory", 7, "NbCache.directory = 7 is not a string; for example %config NbCache.directory = 'cache/'"),
    ],
)
def test_a_bad_setting_is_refused_when_set_naming_it_with_an_example(shell: Shell, setting: str, value, says: str) -> None:
    from IPython.core.error import UsageError
    from traitlets import TraitError

    from nbcache.errors import SettingError

    before = getattr(shell.magics, setting)
    with pytest.raises(SettingError) as caught:
        setattr(shell.magics, setting, value)
    assert isinstance(caught.value, UsageError) and isinstance(caught.value, TraitError)
    assert str(caught.value).startswith("nbcache: " + says), str(caught.value)
    assert getattr(shell.magics, setting) == before
    shell.run(f"%config NbCache.{setting} = {value!r}")  # %config reports it (through logging)...
    assert getattr(shell.magics, setting) == before  # ...and the value is not taken
    t = shell.run("%%cache\nv = 1\n")
    assert shell.status == "stored" and t.stderr == ""


def test_good_settings_are_taken(shell: Shell) -> None:
    shell.run("%config NbCache.size_limit = '500MB'\n%config NbCache.compression = 'none'")
    assert (shell.magics.size_limit, shell.magics.compression) == ("500MB", "none")


def test_a_bad_value_in_a_config_file_costs_only_that_setting(shell: Shell) -> None:
    from traitlets.config import Config

    from nbcache.jupyter.magic import NbCache

    config = Config()
    config.NbCache.size_limit = "lots"
    config.NbCache.quiet = True
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        magics = NbCache(shell=shell.ip, config=config)
    assert magics.size_limit == "" and magics.quiet is True
    assert err.getvalue() == (
        "nbcache: NbCache.size_limit = 'lots' is not a size; for example %config NbCache.size_limit = '20GB' "
        "(or '500MB'); using the default\n"
    )


def test_a_missing_deps_path_is_told_once(shell: Shell, tmp_path) -> None:
    cell = "%%cache --deps does/not/exist.csv\nv = 2\n"
    first = shell.run(cell)
    assert first.stderr == (
        f"nbcache: --deps does/not/exist.csv: no such file or folder (from {tmp_path}); the key counts it "
        "as missing, and the cell runs again once it exists\n"
    )
    assert shell.status == "stored" and shell.ns["v"] == 2
    assert shell.run(cell).stderr == "" and shell.status == "hit"
    (tmp_path / "does" / "not").mkdir(parents=True)
    (tmp_path / "does" / "not" / "exist.csv").write_text("a\n1\n")
    assert shell.run(cell).stderr == "" and shell.status == "stored"  # it exists now: a new key
    (tmp_path / "does" / "not" / "exist.csv").unlink()
    assert "no such file or folder" in shell.run(cell).stderr  # gone again: told again
