"""``%autoreload`` in real kernels (nbclient): a module it reloaded counts as the new code, and the
"still runs the old code" note appears only when that is true, naming the remedy for the setup."""

from __future__ import annotations

from pathlib import Path

from conftest import is_note, run_notebook

CELL = "%%cache\ny = ar_mod.f(3)\nprint(y)\n"


def _edit(module: str, body: str) -> str:
    """A cell that rewrites a module's source and moves its mtime forward (as an editor would)."""
    return (
        "import os as _os, time as _time\n"
        f"open({module + '.py'!r}, 'w').write({body!r})\n"
        f"_t = _time.time() + 5\n_os.utime({module + '.py'!r}, (_t, _t))\n"
    )


def _text(cell, name: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == name)


def _status(cell) -> str:
    notes = [o for o in cell.outputs if is_note(o) and o.get("output_type") == "display_data"]
    return notes[0]["metadata"]["nbcache"]["status"] if notes else "miss"


def test_autoreload_2_reloaded_module_misses_once_then_hits_and_after_a_restart(tmp_path: Path) -> None:
    (tmp_path / "ar_mod.py").write_text("SCALE = 2\ndef f(x):\n    return x * SCALE\n")
    env = {"NBCACHE_DIR": str(tmp_path / "cache")}
    # f(3) runs in microseconds: keep its entries after their first hit (nbcache.run.pays), so the
    # restarted kernel hits too
    head = ["%load_ext nbcache\n%config NbCache.judge_restores = False", "%load_ext autoreload\n%autoreload 2", "import ar_mod"]
    edited = "SCALE = 2\ndef f(x):\n    return x * SCALE + 100\n"
    nb = run_notebook([*head, CELL, _edit("ar_mod", edited), CELL, CELL, _edit("ar_mod", edited.replace("SCALE = 2", "SCALE = 5")), CELL, CELL], tmp_path, env)
    first, after_edit, again, after_const, const_again = (nb.cells[i] for i in (3, 5, 6, 8, 9))
    assert _text(first) == "6\n" and _status(first) == "miss"
    # autoreload reloaded the module before the cell: the cell runs the new code and is stored
    assert _text(after_edit) == "106\n" and _status(after_edit) == "miss", after_edit.outputs
    assert _text(after_edit, "stderr") == ""
    assert _text(again) == "106\n" and _status(again) == "hit"
    # a change to a constant alone (no function changed): autoreload re-ran it, so did the key
    assert _text(after_const) == "115\n" and _status(after_const) == "miss", after_const.outputs
    assert _text(after_const, "stderr") == ""
    assert _text(const_again) == "115\n" and _status(const_again) == "hit"

    restarted = run_notebook([*head, CELL], tmp_path, env)
    assert _text(restarted.cells[3]) == "115\n" and _status(restarted.cells[3]) == "hit"


def test_the_old_code_note_appears_only_when_true_and_names_the_remedy(tmp_path: Path) -> None:
    for name in ("ar_none", "ar_aimported", "ar_left_out", "ar_excluded"):
        (tmp_path / f"{name}.py").write_text("def f(x):\n    return x * 2\n")
    env = {"NBCACHE_DIR": str(tmp_path / "cache")}

    def use(name: str) -> str:
        return f"%%cache\nv_{name} = {name}.f(3)\nprint(v_{name})\n"

    new = "def f(x):\n    return x * 3\n"
    cells = [
        "%load_ext nbcache",
        "import ar_none",
        use("ar_none"),
        _edit("ar_none", new),
        use("ar_none"),  # 4: no autoreload: the kernel runs the old code
        "%load_ext autoreload\n%autoreload 1\n%aimport ar_aimported\nimport ar_left_out",
        use("ar_aimported"),
        use("ar_left_out"),
        _edit("ar_aimported", new),
        _edit("ar_left_out", new),
        use("ar_aimported"),  # 10: reloaded by %autoreload 1: runs the new code, stored
        use("ar_aimported"),  # 11: hit
        use("ar_left_out"),  # 12: mode 1 does not reload it: old code
        "%autoreload 2\n%aimport -ar_excluded\nimport ar_excluded",
        use("ar_excluded"),
        _edit("ar_excluded", new),
        use("ar_excluded"),  # 16: excluded from autoreload: old code
    ]
    nb = run_notebook(cells, tmp_path, env)
    out = [_text(c) for c in nb.cells]
    err = [_text(c, "stderr") for c in nb.cells]

    assert out[4] == "6\n" and err[4].startswith("nbcache: not cached: module ar_none changed on disk"), err[4]
    assert "importlib.reload(ar_none)" in err[4] and "%load_ext autoreload" in err[4]

    assert out[10] == "9\n" and err[10] == "" and _status(nb.cells[10]) == "miss"
    assert out[11] == "9\n" and _status(nb.cells[11]) == "hit"

    assert out[12] == "6\n" and err[12].startswith("nbcache: not cached: module ar_left_out"), err[12]
    assert "%aimport ar_left_out" in err[12] and "importlib.reload" not in err[12]

    assert out[16] == "6\n" and err[16].startswith("nbcache: not cached: module ar_excluded"), err[16]
    assert "%aimport -ar_excluded" in err[16] and "importlib.reload(ar_excluded)" in err[16]
