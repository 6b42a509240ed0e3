"""Automatic mode (``%cache_all``) through a real InteractiveShell: every cell as under ``%%cache``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import Shell, Transcript

SLOW = "import time\ntime.sleep(0.3)\nprint('computing', n)\ntotal = sum(range(n))\ntotal\n"


def entries(shell: Shell) -> list[object]:
    return list(shell.magics.open_cache().entries())


def report(shell: Shell) -> dict[str, object]:
    from nbcache.jupyter.auto import report as auto_report

    return json.loads(auto_report())


def prompts(text: str) -> str:
    """Prompt numbers blanked: which cell it was is not what is compared."""
    return re.sub(r"(Out|In)\[\d+\]", r"\1[#]", text)


def test_cache_all_stores_slow_cells_only_and_a_restart_hits(shell: Shell) -> None:
    shell.run("%cache_all")  # NbCache.min_runtime is 0.25 s
    shell.run("n = 10")
    first = shell.run(SLOW)
    assert shell.status == "stored" and report(shell)["status"] == "stored"
    assert first.stdout == f"computing 10\nOut[{shell.ip.execution_count - 1}]: 45\n"
    assert len(entries(shell)) == 1  # `n = 10` was quicker than min_runtime: not stored
    assert report(shell)["status"] == "stored"

    shell.restart()
    fast = shell.run("n = 10")
    assert fast.events == [] and report(shell)["status"] == "ran"
    second = shell.run(SLOW)
    assert shell.status == "hit" and report(shell)["status"] == "hit" and report(shell)["saved"] > 0.2
    assert prompts(second.stdout) == prompts(first.stdout)
    assert shell.ns["total"] == 45 and shell.ns["_"] == 45
    assert len(second.notes) == 1 and second.notes[0].startswith("nbcache: restored from cache")


def test_warm_cells_show_and_leave_what_a_plain_run_does(shell: Shell) -> None:
    cells = [
        "import sys\nfrom IPython.display import display, HTML\ndata = [3, 1, 2]\nalias = data",
        "print('sorting')\ndata.sort()\ndisplay(HTML('<b>sorted</b>'))\nprint('warn', file=sys.stderr)\ndata",
        "del alias\nlabel = 'x' * 3\nlabel;",
        "print(data, 'alias' in dir(), label, _)",
        "class Point:\n    def __init__(self, x):\n        self.x = x\np = Point(4)",
        "q = Point(p.x + 1)\nq.x",
        "print(type(q) is Point, isinstance(q, Point), q.x)",
    ]

    statuses: list[str | None] = []

    def run_all() -> list[Transcript]:
        statuses.clear()
        out = []
        for cell in cells:
            shell.magics.engine.last = None
            out.append(shell.run(cell))
            statuses.append(shell.status)
        return out

    plain = run_all()
    shell.restart()
    shell.run("%config NbCache.min_runtime = 0")
    shell.run("%cache_all")
    run_all()  # cold: fills the cache
    assert statuses == ["stored"] * len(cells), statuses
    shell.restart()
    warm = run_all()
    assert statuses == ["hit"] * len(cells), statuses
    assert all(t.notes == [] for t in warm)  # quick cells hit without a note
    for cell, got, want in zip(cells, warm, plain):
        assert [prompts(str(e)) for e in got.normalized()] == [prompts(str(e)) for e in want.normalized()], cell
        assert got.error is None
    assert shell.ns["data"] == [1, 2, 3] and "alias" not in shell.ns


def test_cache_all_off_and_config_and_environment(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    shell.run("%config NbCache.min_runtime = 0")
    shell.run("%cache_all on")
    shell.run("a = 1")
    assert len(entries(shell)) == 1
    shell.run("%cache_all off")
    shell.run("b = 2")
    assert len(entries(shell)) == 1 and shell.ns["b"] == 2
    shell.run("%config NbCache.auto = True")
    shell.run("c = 3")
    assert len(entries(shell)) == 2
    shell.run("%config NbCache.auto = False")
    bad = shell.run("%cache_all sometimes")
    assert "nbcache: %cache_all takes 'on' or 'off'" in bad.stderr + bad.stdout
    # NBCACHE_AUTO=1 turns it on when the extension loads
    shell.run("%unload_ext nbcache")
    monkeypatch.setenv("NBCACHE_AUTO", "1")
    shell.run("%load_ext nbcache")
    assert shell.magics.auto is True
    shell.magics.directory = str(Path.cwd() / "cache")
    shell.magics.min_runtime = 0
    shell.run("d = 4")
    assert len(entries(shell)) == 3


def test_nocache_and_skip_opt_a_cell_out(shell: Shell) -> None:
    shell.run("%config NbCache.min_runtime = 0")
    shell.run("%cache_all")
    t = shell.run("%%nocache\nprint('fresh')\nm = 5\n")
    assert t.stdout == "fresh\n" and shell.ns["m"] == 5
    shell.run("%%cache --skip\nk = 6\n")
    assert entries(shell) == [] and shell.ns["k"] == 6
    err = shell.run("%%nocache --force\nm = 1\n")
    assert "nbcache: %%nocache takes no options" in err.stderr + err.stdout


def test_cells_that_are_never_cached_run_without_a_word(shell: Shell) -> None:
    shell.run("input = lambda prompt='': 'bob'")  # stands in for the frontend's prompt
    shell.run("%config NbCache.min_runtime = 0")
    shell.run("%cache_all")
    cells = [
        "who = input('name? ')\nprint('hello', who)",
        "%load_ext nbcache",
        "%config NbCache.quiet = False",
        "%%capture captured\n%env\n",  # %%capture is fine, but %env alone would be too: checked below
        "from ipywidgets import interact\ndef show(x):\n    return x\nw = interact(show, x=3)",
    ]
    transcripts = [shell.run(cell) for cell in cells]
    assert transcripts[0].stdout == "hello bob\n"
    for cell, t in zip(cells, transcripts):
        assert not t.stderr.strip(), (cell, t.stderr)
        assert t.notes == [], cell
    # only the %%capture cell (a cell magic of Python code) went through the cache
    stored = [e.source for e in entries(shell)]
    assert stored == ["%%capture captured\n%env\n"], stored
    assert report(shell)["status"] == "ran" and "interactive widgets" in str(report(shell)["reason"])


def test_errors_and_interrupts_are_never_stored_and_show_the_plain_traceback(shell: Shell) -> None:
    cell = "def f():\n    return 1 / 0\nprint('before')\nf()\n"
    plain = shell.run(cell)
    shell.run("%config NbCache.min_runtime = 0")
    shell.run("%cache_all")
    auto = shell.run(cell)
    assert isinstance(auto.error, ZeroDivisionError) and report(shell)["status"] == "error"
    assert prompts(auto.stdout) == prompts(plain.stdout)
    assert "run_pending" not in auto.stdout and "skipping hidden" not in auto.stdout
    interrupted = shell.run("print('working')\nraise KeyboardInterrupt\n")
    assert isinstance(interrupted.error, KeyboardInterrupt)
    assert entries(shell) == []
    # the next error shows its own traceback (the rendering of the last one was dropped)
    again = shell.run("raise ValueError('second')")
    assert "ValueError: second" in again.stdout and "ZeroDivisionError" not in again.stdout


def test_no_cache_available_is_said_once_and_every_cell_runs(shell: Shell, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache should be")
    shell.magics.directory = str(blocker / "cache")
    shell.run("%config NbCache.min_runtime = 0")
    on = shell.run("%cache_all")
    lines = [line for line in on.stderr.splitlines() if line.startswith("nbcache:")]
    assert len(lines) == 1 and "every cell runs without it" in lines[0], on.stderr
    later = [shell.run(cell) for cell in ("x = 1", "y = x + 1\ny", "print(y)")]
    assert [t.stderr for t in later] == ["", "", ""]
    assert later[2].stdout == "2\n" and shell.status is None


def test_cache_cells_keep_their_options_in_automatic_mode(shell: Shell) -> None:
    shell.run("%config NbCache.min_runtime = 0")
    shell.run("%config NbCache.judge_restores = False")  # value = 7 does not pay: keep its entry after the hit
    shell.run("%cache_all")
    shell.run("%%cache --name mine\nvalue = 7\n")
    shell.run("%%cache --name mine\nvalue = 7\n")
    assert shell.status == "hit"
    assert [e.label for e in entries(shell)] == ["mine"]


def test_a_cell_that_writes_a_file_is_stored_and_its_hit_writes_the_file(shell: Shell) -> None:
    shell.run("%config NbCache.min_runtime = 0")
    shell.run("%config NbCache.judge_restores = False")
    shell.run("%cache_all")
    cell = "from pathlib import Path\nPath('out.txt').write_text('hello')\n"
    shell.run(cell)
    assert len(entries(shell)) == 1
    Path("out.txt").unlink()
    shell.restart()
    shell.run(cell)
    assert shell.status == "hit" and Path("out.txt").read_text() == "hello"


def test_a_cheap_cell_that_turns_slow_is_cached_from_then_on(shell: Shell) -> None:
    shell.run("%config NbCache.min_runtime = 0.05")
    shell.run("%cache_all")
    cell = "import time\ntime.sleep(delay)\nresult = delay * 2\n"
    shell.run("delay = 0")
    shell.run(cell)  # cheap: a hint is kept, nothing stored
    assert entries(shell) == [] and shell.magics.engine.last.status == "skipped"
    shell.run("delay = 0.06")
    shell.magics.engine.last = None
    shell.run(cell)  # runs as it is (the hint), turns out slow: the hint goes
    assert shell.magics.engine.last is None and entries(shell) == []
    shell.run(cell)  # keyed again: stored
    assert shell.status == "stored"
    shell.run(cell)
    assert shell.status == "hit" and shell.ns["result"] == 0.12


def test_hints_survive_a_restart(shell: Shell) -> None:
    shell.run("%config NbCache.min_runtime = 0.05")
    shell.run("%cache_all")
    shell.run("w = 1")
    shell.restart()
    shell.magics.engine.last = None
    shell.run("w = 1")
    assert shell.magics.engine.last is None and shell.ns["w"] == 1  # ran as it is
    assert "before" in str(report(shell)["reason"])


def test_unload_removes_what_automatic_mode_registered(shell: Shell) -> None:
    ip = shell.ip
    shell.run("%cache_all")
    assert any(type(t).__name__ == "_Transformer" for t in ip.ast_transformers)
    callbacks = len(ip.events.callbacks["pre_run_cell"])
    shell.run("%unload_ext nbcache")
    assert not any(type(t).__name__ == "_Transformer" for t in ip.ast_transformers)
    assert len(ip.events.callbacks["pre_run_cell"]) == callbacks - 1
    assert "nocache" not in ip.magics_manager.magics["cell"]
    assert "cache_all" not in ip.magics_manager.magics["line"]
    shell.run("%load_ext nbcache")
    assert shell.magics.auto is False


def test_help_of_the_magics() -> None:
    from nbcache.jupyter.magic import NbCache

    for words in ("%cache_all off", "NbCache.min_runtime", "%%nocache", "never"):
        assert words in (NbCache.cache_all.__doc__ or "")
    assert "%%cache --skip" in (NbCache.nocache.__doc__ or "")
