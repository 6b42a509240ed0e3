"""Through real kernels (nbclient): a hit after a restart shows what the first run showed."""

from __future__ import annotations

from pathlib import Path

from conftest import comparable, is_note, run_notebook

CELLS = [
    "%load_ext nbcache",
    "n = 200_000",
    # a real cost, printed output, a rich table, a result
    """%%cache
import pandas as pd
from IPython.display import display, HTML
frame = pd.DataFrame({"k": range(n)})
frame["sq"] = frame["k"] ** 2
print("rows:", len(frame))
display(HTML("<i>done</i>"))
frame.head(3)
""",
    "%%cache\n!echo from-the-shell\nlisting = !echo captured\n",
    "%%cache\nimport sys\nprint('to stderr', file=sys.stderr)\nvalue = 7\nvalue * 6;\n",
    "print(type(frame).__name__, frame['sq'].sum(), listing, value, _)",
]


def test_hit_after_restart_replays_every_output(tmp_path: Path) -> None:
    env = {"NBCACHE_DIR": str(tmp_path / "cache")}
    first = run_notebook(CELLS, tmp_path, env)
    second = run_notebook(CELLS, tmp_path, env)
    for a, b in zip(first.cells, second.cells):
        assert comparable(b.outputs) == comparable(a.outputs), a.source
    # the cached cells hit on the second run (a note each), and only there
    for index in (2, 3, 4):
        assert not any(is_note(o) for o in first.cells[index].outputs)
        notes = [o for o in second.cells[index].outputs if is_note(o)]
        assert len(notes) == 1 and notes[0]["metadata"]["nbcache"]["status"] == "hit"
    # Out[n] of the cached table cell is a real execute_result with the current prompt number
    result = [o for o in second.cells[2].outputs if o["output_type"] == "execute_result"]
    assert len(result) == 1 and result[0]["execution_count"] == second.cells[2].execution_count
    assert "text/html" in result[0]["data"]
    assert "from-the-shell" in "".join(o.get("text", "") for o in second.cells[3].outputs)
    last = second.cells[5].outputs[0]["text"]
    # `_` is the last *shown* result: the table (the `;` cell showed nothing)
    assert last.startswith("DataFrame 2666646666700000 ['captured'] 7 ")


def test_error_in_a_cached_cell_fails_the_cell_and_stores_nothing(tmp_path: Path) -> None:
    env = {"NBCACHE_DIR": str(tmp_path / "cache")}
    cells = ["%load_ext nbcache", "%%cache\nprint('partial')\nraise ValueError('boom')\n"]
    nb = run_notebook(cells, tmp_path, env, allow_errors=True)
    outputs = nb.cells[1].outputs
    assert outputs[0]["text"] == "partial\n"
    assert outputs[-1]["output_type"] == "error" and outputs[-1]["ename"] == "ValueError"
    assert not list((tmp_path / "cache" / "manifests").glob("*.json"))


def test_mistakes_are_told_at_once_and_syntax_errors_show_as_without_the_magic(tmp_path: Path) -> None:
    import re

    env = {"NBCACHE_DIR": str(tmp_path / "cache")}
    bad = ["x = (1,\n", "x = 1 +* 2\n", "def f(:\n    pass\n", "if True:\nprint('indent')\n"]
    cells = [
        "%load_ext nbcache",
        "%config NbCache.size_limit = 'abc'",
        "%config NbCache.compression = 'lz4'",
        "%%cache --deps does/not/exist.csv\nv = 1\n",
        "%%cache --deps does/not/exist.csv\nv = 1\n",
        *(f"%%cache\n{b}" for b in bad),
        *bad,
    ]
    nb = run_notebook(cells, tmp_path, env, allow_errors=True)

    def stderr(i: int) -> str:
        return "".join(o.get("text", "") for o in nb.cells[i].outputs if o.get("name") == "stderr")

    assert "nbcache: NbCache.size_limit = 'abc' is not a size; for example %config NbCache.size_limit = '20GB'" in stderr(1)
    assert "nbcache: NbCache.compression = 'lz4' is not one of 'auto', 'zstd', 'none'" in stderr(2)
    assert stderr(3).startswith("nbcache: --deps does/not/exist.csv: no such file or folder")
    assert stderr(4) == ""  # once
    assert not any(o.get("output_type") == "error" for c in nb.cells[1:5] for o in c.outputs)

    def shown(i: int) -> tuple[str, str, list[str]]:
        (error,) = [o for o in nb.cells[i].outputs if o["output_type"] == "error"]
        # the cell's number and its line: the magic is line 1 of a %%cache cell
        blank = lambda text: re.sub(r"In\[\d+\]|line \d+|\d+\.py", "#", text)  # noqa: E731
        return error["ename"], blank(error["evalue"]), [blank(line) for line in error["traceback"]]

    first_cached, first_plain = 5, 5 + len(bad)
    for k, source in enumerate(bad):
        cached, plain = shown(first_cached + k), shown(first_plain + k)
        assert cached == plain, source
        assert not any("run_cell_magic" in line for line in cached[2])
        assert nb.cells[first_cached + k].outputs[-1]["traceback"][0].count("line 2") == 1  # the line in the cell
