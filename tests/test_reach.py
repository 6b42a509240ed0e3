"""What the code a cell runs reaches: a table of namespaces and cells -> extra inputs and module attributes."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from nbcache.key.analysis import analyze
from nbcache.key.reach import reach


def reached(setup: str, cell: str, ns: dict[str, Any] | None = None) -> tuple[set[str], set[tuple[str, str]]]:
    ns = {"__name__": "__main__"} if ns is None else ns
    exec(setup, ns)
    analysis = analyze(cell)
    found = reach(analysis.reads, analysis.attributes, ns)
    return set(found.names) - set(analysis.reads), set(found.attrs)


CASES = [
    ("a global the called function mutates", "log = []\ndef add(v):\n    log.append(v)\n", "add(5)", {"log"}),
    ("through a function it calls", "seen = set()\ndef note(v):\n    seen.add(v)\ndef handle(v):\n    note(v)\n", "handle(1)", {"note", "seen"}),
    ("a method of an input's class", "reg = {}\nclass R:\n    def put(self, k):\n        reg[k] = 1\nr = R()\n", "r.put('a')", {"reg"}),
    ("a closure's cell and its globals", "box = []\ndef make():\n    def inner():\n        box.append(1)\n    return inner\nf = make()\n", "f()", {"box"}),
    ("a default argument", "cfg = {}\ndef use(c=cfg):\n    return c\ndef run(fn=use):\n    return fn()\n", "run()", set()),
    ("a staticmethod and a property", "TOTAL = [0]\nclass K:\n    @staticmethod\n    def s():\n        TOTAL[0] += 1\n    @property\n    def p(self):\n        return LIMIT\nk = K()\n", "k.p", {"TOTAL", "LIMIT"}),
    ("a callback in a list input", "out = []\ndef cb():\n    out.append(1)\ncallbacks = [cb]\n", "callbacks[0]()", {"out"}),
    ("library code is not followed", "import json\n", "json.dumps([1])", set()),
    ("a name the function assigns as a global", "def set_flag():\n    global FLAG\n    FLAG = 1\n", "set_flag()", {"FLAG"}),
]


@pytest.mark.parametrize("label, setup, cell, extra", CASES, ids=[c[0] for c in CASES])
def test_globals_reached_by_called_code_are_inputs(label: str, setup: str, cell: str, extra: set[str]) -> None:
    names, attrs = reached(setup, cell)
    assert names == extra and attrs == set()


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    (tmp_path / "nbcache_reach_helpers.py").write_text(
        "import json\nSCALE = 1\nlog = []\n\ndef f(x):\n    return x * SCALE\n\ndef add(v):\n    log.append(json.dumps(v))\n"
    )
    (tmp_path / "nbcache_reach_user.py").write_text("import nbcache_reach_helpers as h\n\ndef g():\n    return h.f(2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import nbcache_reach_helpers  # type: ignore[import-not-found]

    yield nbcache_reach_helpers
    for name in ("nbcache_reach_helpers", "nbcache_reach_user"):
        sys.modules.pop(name, None)


def test_attributes_of_working_tree_modules_the_code_reads_are_keyed(helpers: types.ModuleType) -> None:
    mod = "nbcache_reach_helpers"
    assert reached(f"import {mod} as helpers", "y = helpers.f(3)")[1] == {(mod, "f"), (mod, "SCALE")}
    assert reached(f"from {mod} import add", "add(1)")[1] == {(mod, "log"), (mod, "json")}
    assert reached(f"import {mod} as helpers", "helpers.NEW = 2")[1] == {(mod, "NEW")}  # assigned: it may not exist yet
    # through another module's function: h.f(2) inside g
    assert reached("from nbcache_reach_user import g", "g()")[1] >= {("nbcache_reach_user", "h"), (mod, "f"), (mod, "SCALE")}


def test_library_module_attributes_are_left_to_the_state_providers() -> None:
    assert reached("import json", "json.encoder")[1] == set()
