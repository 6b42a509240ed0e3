"""The engine over a plain dict: no IPython, a real cache in a temporary folder.

:class:`DictHost` runs a cell with ``exec`` in a dict, shows the value of a final expression as
IPython's display hook would, and keeps what the user would see (displays, results, notes,
warnings) in order, so each test reads like a notebook session.
"""

from __future__ import annotations

import ast
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
