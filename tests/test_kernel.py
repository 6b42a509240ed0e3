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
