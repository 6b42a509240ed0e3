"""The engine over a plain dict: no IPython, a real cache in a temporary folder.

:class:`DictHost` runs a cell with ``exec`` in a dict, shows the value of a final expression as
IPython's display hook would, and keeps what the user would see (displays, results, notes,
warnings) in order, so each test reads like a notebook session.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from nbcache.errors import StoreError
from nbcache.run.capture import Recorder, decode_outputs
from nbcache.run.engine import Engine, Outcome, RunOptions
from nbcache.store.backends import LocalFolderStore
from nbcache.store.cache import Cache


class _Publisher:
    """Where ``display()`` goes: the recorder taps ``publish`` as it taps IPython's publisher."""

    def __init__(self, host: DictHost):
        self._host = host

    def publish(self, data: Any, metadata: Any = None, *, transient: Any = None, update: bool = False) -> None:
        self._host.shown.append(("display", data))

    def clear_output(self, wait: bool = False) -> None:
        self._host.shown.append(("clear",))


class DictHost:
    def __init__(self, namespace: dict[str, Any] | None = None):
        self.publisher = _Publisher(self)
        # Looked up at each call, so it goes through the recorder's tap as IPython's display() does.
        self.namespace: dict[str, Any] = {"display": lambda data: self.publisher.publish(data)}
        self.namespace.update(namespace or {})
        self.shown: list[tuple[Any, ...]] = []
        self.notes: list[tuple[str, Outcome]] = []
        self.warnings: list[str] = []
        self.runs = 0

    def transform(self, source: str) -> str:
        return source

    def is_internal(self, name: str) -> bool:
        return name == "display" or name.startswith("__")

    def recorder(self) -> Recorder:
        return Recorder(publisher=self.publisher)

    def execute(self, source: str, python: str, recorder: Recorder) -> None:
        self.runs += 1
        body = ast.parse(python).body
        last = body.pop() if body and isinstance(body[-1], ast.Expr) else None
        exec(compile(ast.Module(body=body, type_ignores=[]), "<cell>", "exec"), self.namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), self.namespace)
            if value is not None:  # the display hook: record the value, then show it
                recorder.result(value)["data"] = {"text/plain": repr(value)}
                self.shown.append(("result", value))

    def replay(self, records: list[dict[str, Any]], results: list[Any]) -> None:
        for record in records:
            if record["type"] == "stream":
                getattr(sys, record["name"]).write(record["text"])
                self.shown.append(("stream", record["name"], record["text"]))
            elif record["type"] == "display":
                self.publisher.publish(record["data"])
            elif record["type"] == "clear":
                self.publisher.clear_output(record["wait"])
            elif record["type"] == "result":
                self.shown.append(("result", results[record["index"]]))

    def note(self, message: str, outcome: Outcome) -> None:
        self.notes.append((message, outcome))

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(LocalFolderStore(str(tmp_path / "cache")), key="test-engine-key")


@pytest.fixture
def engine(cache: Cache) -> Engine:
    return Engine(lambda: cache)


def run(engine: Engine, host: DictHost, source: str, **options: Any) -> Outcome:
    return engine.run(host, source, RunOptions(**options))


SHOWING = 'print("first")\ndisplay({"text/plain": "table"})\nprint("last")\nresult = value * 2\nresult\n'


def test_a_miss_stores_and_the_next_run_restores_values_and_outputs_in_order(
    engine: Engine, cache: Cache, capsys: pytest.CaptureFixture[str]
) -> None:
    host = DictHost({"value": 21})
    first = run(engine, host, SHOWING)
    assert first.status == "stored" and first.names == ("result",)
    assert capsys.readouterr().out == "first\nlast\n"
    assert host.shown == [("display", {"text/plain": "table"}), ("result", 42)]
    [entry] = cache.entries()
    assert [r["type"] for r in decode_outputs(cache.read_output_bytes(entry))] == ["stream", "display", "stream", "result"]

    # A new kernel: a fresh namespace and engine over the same cache.
    again = DictHost({"value": 21})
    hit = Engine(lambda: cache).run(again, SHOWING, RunOptions())
    assert hit.status == "hit" and hit.key == first.key
    assert again.runs == 0
    assert again.namespace["result"] == 42
    assert again.shown == [
        ("stream", "stdout", "first\n"),
        ("display", {"text/plain": "table"}),
        ("stream", "stdout", "last\n"),
        ("result", 42),
    ]
    assert capsys.readouterr().out == "first\nlast\n"
    [(message, outcome)] = again.notes
    assert message.startswith("nbcache: restored from cache, saved ") and outcome is hit
    assert again.warnings == []


def test_quiet_hides_the_note_of_a_hit(engine: Engine) -> None:
    host = DictHost({"value": 1})
    run(engine, host, "y = value + 1\n")
    assert run(engine, host, "y = value + 1\n", quiet=True).status == "hit"
    assert host.notes == []


def test_a_changed_input_misses_and_the_old_value_hits_again(engine: Engine) -> None:
    host = DictHost({"n": 2})
    assert run(engine, host, "y = n * 10\n").status == "stored"
    host.namespace["n"] = 3
    assert run(engine, host, "y = n * 10\n").status == "stored"
    assert host.namespace["y"] == 30 and host.runs == 2
    explanation = engine.explain_last()
    assert explanation is not None and explanation.reasons == ("input 'n' changed",)
    host.namespace["n"] = 2
    assert run(engine, host, "y = n * 10\n").status == "hit"
    assert host.namespace["y"] == 20 and host.runs == 2


def test_a_mutated_input_is_updated_in_place_so_its_aliases_see_it(engine: Engine, cache: Cache) -> None:
    data = [1, 2]
    host = DictHost({"data": data, "alias": data})
    assert run(engine, host, "data.append(3)\n").status == "stored"
    [entry] = cache.entries()
    assert entry.names == ("data",)
    # The manifest's `extra` keeps its on-disk shape: existing caches must still read (keys are
    # only ever added: "imports" came with issue 14, and an entry without it reads as empty).
    assert set(entry.extra) == {"mutated", "reads", "requires", "pickled", "rng", "imports"}
    assert entry.extra["mutated"] == ["data"]

    fresh = [1, 2]
    again = DictHost({"data": fresh, "alias": fresh})
    assert run(engine, again, "data.append(3)\n").status == "hit"
    assert again.runs == 0
    assert again.namespace["data"] is fresh and again.namespace["alias"] == [1, 2, 3]


def test_a_deleted_name_is_deleted_again_on_a_hit(engine: Engine, cache: Cache) -> None:
    host = DictHost({"tmp": 5})
    assert run(engine, host, "total = tmp * 2\ndel tmp\n").status == "stored"
    assert "tmp" not in host.namespace
    assert [e.deleted for e in cache.entries()] == [("tmp",)]

    again = DictHost({"tmp": 5})
    assert run(engine, again, "total = tmp * 2\ndel tmp\n").status == "hit"
    assert "tmp" not in again.namespace and again.namespace["total"] == 10 and again.runs == 0


def test_a_cell_that_raises_is_not_stored_and_its_exception_propagates(engine: Engine, cache: Cache) -> None:
    heard: list[Outcome] = []
    engine.listeners.append(heard.append)
    host = DictHost()
    cell = 'print("before")\nx = 1\n1 / 0\n'
    with pytest.raises(ZeroDivisionError):
        run(engine, host, cell)
    assert list(cache.entries()) == []
    assert engine.last is not None and engine.last.status == "error"
    assert [o.status for o in heard] == ["error"] and heard[0].reason == "ZeroDivisionError: division by zero"
    with pytest.raises(ZeroDivisionError):
        run(engine, host, cell)
    assert host.runs == 2 and host.warnings == []


def test_skip_runs_the_cell_without_the_cache(engine: Engine, cache: Cache) -> None:
    host = DictHost({"n": 4})
    for _ in range(2):
        outcome = run(engine, host, "y = n + 1\n", skip=True)
        assert outcome.status == "skipped" and outcome.reason == "--skip was given" and outcome.key is None
    assert host.runs == 2 and host.namespace["y"] == 5
    assert list(cache.entries()) == []
    assert host.warnings == []


def test_an_unavailable_cache_runs_the_cell_with_one_warning() -> None:
    calls = 0

    def broken() -> Cache:
        nonlocal calls
        calls += 1
        error = StoreError("the disk is gone")
        error.reported = calls > 1  # the store marks the repeats of a problem still going on
        raise error

    engine = Engine(broken)
    host = DictHost({"n": 1})
    for _ in range(3):
        outcome = run(engine, host, "y = n + 1\n")
        assert outcome.status == "skipped" and outcome.reason == "the cache is unavailable"
        assert outcome.key is not None
    assert host.runs == 3 and host.namespace["y"] == 2
    assert host.warnings == ["nbcache: the cache is unavailable (the disk is gone); running the cell without it"]


def test_an_input_without_a_fingerprint_runs_uncached_with_one_warning(engine: Engine, cache: Cache) -> None:
    host = DictHost({"gen": (i for i in range(3))})
    outcome = run(engine, host, "first = next(gen)\n")
    assert outcome.status == "skipped" and host.namespace["first"] == 0
    assert list(cache.entries()) == []
    [warning] = host.warnings
    assert warning.startswith("nbcache: not cached: input 'gen' (generator) has no fingerprint")


def test_an_unpicklable_result_is_not_stored_and_the_cell_keeps_its_result(engine: Engine, cache: Cache) -> None:
    host = DictHost()
    outcome = run(engine, host, "import threading\nlock = threading.Lock()\n")
    assert outcome.status == "skipped" and "lock" in host.namespace
    assert list(cache.entries()) == []
    [warning] = host.warnings
    assert warning.startswith("nbcache: not cached: variable 'lock' (lock) cannot be pickled")


def test_a_broken_listener_warns_and_the_outcome_stands(engine: Engine) -> None:
    def broken(outcome: Outcome) -> None:
        raise RuntimeError("listener bug")

    heard: list[Callable[[Outcome], None]] = [broken]
    engine.listeners.extend(heard)
    host = DictHost({"n": 1})
    assert run(engine, host, "y = n\n").status == "stored"
    assert host.warnings == ["nbcache: a status listener failed: listener bug"]


# -- issue 14: what a cell changes beyond its own names --------------------------------------------
def _restart(cache: Cache, namespace: dict[str, Any], setup: str = "") -> tuple[Engine, DictHost]:
    """A new kernel: a fresh engine and namespace over the same cache, ``setup`` run plainly."""
    host = DictHost(namespace)
    exec(setup, host.namespace)
    return Engine(lambda: cache), host


def test_a_global_mutated_through_a_called_function_is_restored_in_place(engine: Engine, cache: Cache) -> None:
    setup = "log = []\nalias = log\ndef add(v):\n    log.append(v)\n"
    host = DictHost()
    exec(setup, host.namespace)
    assert run(engine, host, "add(5)\n").status == "stored"
    assert set(engine.last_lookup.key.inputs) == {"add", "log"}  # type: ignore[union-attr]
    again_engine, again = _restart(cache, {}, setup)
    assert again_engine.run(again, "add(5)\n").status == "hit"
    assert again.namespace["log"] == [5] and again.namespace["alias"] is again.namespace["log"]
    third_engine, third = _restart(cache, {}, setup.replace("log = []", "log = [0]"))
    assert third_engine.run(third, "add(5)\n").status == "stored"  # another value of the global: a miss
    assert third.namespace["log"] == [0, 5]


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "nbcache_engine_helpers.py").write_text("SCALE = 1\nlog = []\n\ndef f(x):\n    return x * SCALE\n\ndef add(v):\n    log.append(v)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "nbcache_engine_helpers"
    sys.modules.pop("nbcache_engine_helpers", None)


def _fresh_import(name: str) -> Any:
    sys.modules.pop(name, None)
    return __import__(name)


def test_working_tree_module_attributes_are_keyed_by_value_and_restored(engine: Engine, cache: Cache, helpers: str) -> None:
    mod = _fresh_import(helpers)
    mod.SCALE = 2
    host = DictHost({"helpers": mod})
    assert run(engine, host, "res = helpers.f(3)\n").status == "stored" and host.namespace["res"] == 6
    mod = _fresh_import(helpers)
    mod.SCALE = 3  # set by an earlier cell of the next session: the stored result is for 2
    e2, h2 = _restart(cache, {"helpers": mod})
    assert e2.run(h2, "res = helpers.f(3)\n").status == "stored" and h2.namespace["res"] == 9
    reasons = e2.explain_last().reasons  # type: ignore[union-attr]
    assert "module attribute nbcache_engine_helpers.SCALE changed" in reasons

    mod = _fresh_import(helpers)
    alias = mod.log
    e3, h3 = _restart(cache, {"helpers": mod})
    assert e3.run(h3, "helpers.add(4)\nhelpers.SCALE = 7\n").status == "stored"
    mod = _fresh_import(helpers)
    alias = mod.log
    e4, h4 = _restart(cache, {"helpers": mod})
    assert e4.run(h4, "helpers.add(4)\nhelpers.SCALE = 7\n").status == "hit"
    assert mod.log == [4] and alias is mod.log and mod.SCALE == 7  # updated in place; rebound


def test_a_hit_imports_again_what_the_run_imported(engine: Engine, cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nbcache_engine_preamble.py").write_text("import os\nos.environ['NBCACHE_PREAMBLE_RAN'] = '1'\nprint('preamble says hi')\nGREETING = 'hi'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NBCACHE_PREAMBLE_RAN", raising=False)
    cell = "from nbcache_engine_preamble import GREETING\n"
    assert run(engine, DictHost(), cell).status == "stored"
    assert capsys.readouterr().out == "preamble says hi\n"
    sys.modules.pop("nbcache_engine_preamble")
    del os.environ["NBCACHE_PREAMBLE_RAN"]
    e2, h2 = _restart(cache, {})
    assert e2.run(h2, cell).status == "hit"
    assert "nbcache_engine_preamble" in sys.modules and os.environ["NBCACHE_PREAMBLE_RAN"] == "1"
    assert capsys.readouterr().out == "preamble says hi\n"  # the replay, once: the import's own print is not shown twice
    sys.modules.pop("nbcache_engine_preamble", None)


def test_a_module_bound_again_is_imported_not_referred_to_by_name(engine: Engine, cache: Cache) -> None:
    import json

    assert run(engine, DictHost({"js": json}), "import json as js\nout = js.dumps([1])\n").status == "stored"
    e2, h2 = _restart(cache, {})  # no earlier cell bound js here
    assert e2.run(h2, "import json as js\nout = js.dumps([1])\n").status == "hit"
    assert h2.namespace["js"] is json and h2.warnings == []


# A draw runs in microseconds and restores in a millisecond: the pays rule (nbcache.run.pays) would
# drop its entry at the first hit. The tests below are about generator states, so keep every entry.
KEEP = RunOptions(judge=False)


@pytest.fixture
def tracked() -> Any:
    from nbcache.key import state

    state.untrack()
    state.track(assume_seeded=False)
    yield
    state.untrack()


def test_an_unseeded_draw_hits_after_a_restart_and_leaves_a_fresh_state(cache: Cache, tracked: None) -> None:
    import random

    random.seed()  # entropy: as in a fresh kernel
    e1, h1 = _restart(cache, {"random": random})
    assert e1.run(h1, "draw = random.random()\n", KEEP).status == "stored"
    left = random.getstate()
    random.seed()
    e2, h2 = _restart(cache, {"random": random})
    assert e2.run(h2, "draw = random.random()\n", KEEP).status == "hit"
    assert h2.namespace["draw"] == h1.namespace["draw"]
    assert random.getstate() != left  # not the state the first run left: a fresh one
    random.seed(11)  # seeded now: the unseeded draw is no longer as valid as another
    e3, h3 = _restart(cache, {"random": random})
    assert e3.run(h3, "draw = random.random()\n", KEEP).status == "stored"
    assert h3.namespace["draw"] == random.Random(11).random()


def test_a_seeded_draw_hits_under_the_same_state_and_restores_it_exactly(cache: Cache, tracked: None) -> None:
    import random

    random.seed(3)
    e1, h1 = _restart(cache, {"random": random})
    assert e1.run(h1, "draw = random.random()\n", KEEP).status == "stored"
    random.seed(3)
    e2, h2 = _restart(cache, {"random": random})
    assert e2.run(h2, "draw = random.random()\n", KEEP).status == "hit"
    plain = random.Random(3)
    plain.random()
    assert random.random() == plain.random()  # where a plain run leaves the generator
    random.seed(4)
    e3, h3 = _restart(cache, {"random": random})
    assert e3.run(h3, "draw = random.random()\n", KEEP).status == "stored"


def test_explain_names_the_changed_function_not_the_global_it_now_reads(engine: Engine) -> None:
    host = DictHost({"k": 2})
    exec("def scale(v):\n    return v * 2\n", host.namespace)
    run(engine, host, "y = scale(3)\n")
    exec("def scale(v):\n    return v * k\n", host.namespace)  # now reads the global k too
    assert run(engine, host, "y = scale(3)\n").status == "stored"
    assert engine.explain_last().reasons == ("input 'scale' changed",)  # type: ignore[union-attr]
