"""Interpreter state: every provider captures, compares and restores through its library's own API;
generators' seeding is tracked; providers come from the registry, register_state and entry points.

The real-kernel checks (a hit leaves each kind of state as a plain run does, across a restart) are
scenarios in test_scenarios.py; these pin each provider and the rules behind them directly.
"""

from __future__ import annotations

import decimal
import locale
import os
import random
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from nbcache.key import state
from nbcache.key.state import lazy, registry, rng


@pytest.fixture
def tracked() -> Iterator[None]:
    """Seeding tracked as the extension does it (no earlier cell seeded anything)."""
    state.untrack()
    state.track(assume_seeded=False)
    yield
    state.untrack()


def roundtrip(change: Callable[[], Any], undo: Callable[[], Any], name: str) -> Any:
    """Capture, ``change``, capture, ``undo``; apply the recorded change: returns what it recorded."""
    before = state.snapshot()
    change()
    after = state.snapshot()
    recorded = state.changes(before, after)
    assert name in recorded, sorted(recorded)
    undo()
    assert state.snapshot().digests.get(name) == before.digests.get(name)
    assert state.apply({name: recorded[name]}) == []
    assert state.snapshot().digests.get(name) == after.digests.get(name)
    return recorded[name]


# -- each provider, through its library's API ---------------------------------------------------
def test_numpy_print_options_and_errstate() -> None:
    np = pytest.importorskip("numpy")
    try:
        assert roundtrip(lambda: np.set_printoptions(precision=3), lambda: np.set_printoptions(precision=8), "numpy.printoptions") == {"precision": 3}
        assert str(np.array([1 / 3])) == "[0.333]"
        assert roundtrip(lambda: np.seterr(divide="raise"), lambda: np.seterr(divide="warn"), "numpy.errstate") == {"divide": "raise"}
        assert np.geterr()["divide"] == "raise"
    finally:
        np.set_printoptions(precision=8)
        np.seterr(divide="warn")


def test_torch_generator_dtype_and_determinism() -> None:
    torch = pytest.importorskip("torch")
    try:
        torch.manual_seed(0)
        roundtrip(lambda: torch.rand(3), lambda: torch.manual_seed(0), "torch")
        assert torch.rand(1).item() == pytest.approx(torch.manual_seed(0) and torch.rand(4)[3].item())
        roundtrip(lambda: torch.set_default_dtype(torch.float64), lambda: torch.set_default_dtype(torch.float32), "torch.default_dtype")
        assert torch.zeros(1).dtype == torch.float64
        roundtrip(lambda: torch.use_deterministic_algorithms(True, warn_only=True), lambda: torch.use_deterministic_algorithms(False), "torch.deterministic")
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.set_default_dtype(torch.float32)
        torch.use_deterministic_algorithms(False)
    # No GPU here: CUDA's generators are not in use, so not captured (reading them would start CUDA).
    assert "torch.cuda" not in state.snapshot().states


def test_pandas_options_rcparams_sklearn_polars() -> None:
    pd = pytest.importorskip("pandas")
    mpl = pytest.importorskip("matplotlib")
    sklearn = pytest.importorskip("sklearn")
    pl = pytest.importorskip("polars")
    try:
        assert roundtrip(lambda: pd.set_option("display.max_rows", 7), lambda: pd.reset_option("display.max_rows"), "pandas.options") == {"display.max_rows": 7}
        assert roundtrip(lambda: mpl.rcParams.update({"lines.linewidth": 4.5}), mpl.rcdefaults, "matplotlib.rcParams") == {"lines.linewidth": 4.5}
        assert roundtrip(lambda: sklearn.set_config(display="text"), lambda: sklearn.set_config(display="diagram"), "sklearn.config") == {"display": "text"}
        roundtrip(lambda: pl.Config.set_tbl_rows(2), pl.Config.restore_defaults, "polars.config")
        assert os.environ.get("POLARS_FMT_MAX_ROWS") == "2"
    finally:
        pd.reset_option("display.max_rows")
        mpl.rcdefaults()
        sklearn.set_config(display="diagram")
        pl.Config.restore_defaults()


def test_warnings_filters_decimal_locale() -> None:
    saved_filters, saved_locale = list(warnings.filters), locale.setlocale(locale.LC_NUMERIC)
    context = decimal.getcontext().copy()
    try:
        roundtrip(lambda: warnings.filterwarnings("ignore", message="nbcache-test"), lambda: warnings.filters.pop(0), "warnings.filters")
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn("nbcache-test")
        assert caught == []
        roundtrip(lambda: setattr(decimal.getcontext(), "prec", 5), lambda: decimal.setcontext(context.copy()), "decimal.context")
        assert str(decimal.Decimal(1) / decimal.Decimal(7)) == "0.14286"
        roundtrip(lambda: locale.setlocale(locale.LC_NUMERIC, "C.UTF-8"), lambda: locale.setlocale(locale.LC_NUMERIC, saved_locale), "locale")
        assert locale.setlocale(locale.LC_NUMERIC) in ("C.UTF-8", "C.utf8")
    finally:
        warnings.filters[:] = saved_filters
        warnings._filters_mutated()  # type: ignore[attr-defined]
        decimal.setcontext(context)
        locale.setlocale(locale.LC_NUMERIC, saved_locale)


def test_decimal_flags_are_restored_but_not_required() -> None:
    decimal.getcontext().clear_flags()
    before = state.snapshot()
    decimal.Decimal(1) / decimal.Decimal(3)  # sets Inexact and Rounded
    after = state.snapshot()
    assert "decimal.context" in state.changes(before, after)  # a hit sets the flags again
    assert before.digests["decimal.context"] == after.digests["decimal.context"]  # a result does not depend on them
    decimal.getcontext().clear_flags()


def test_environment_and_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    before = state.snapshot()
    os.environ["NBCACHE_TEST_VAR"] = "1"
    os.chdir("sub")
    recorded = state.changes(before, state.snapshot())
    assert recorded["environ"] == {"NBCACHE_TEST_VAR": "1"} and recorded["cwd"] == "sub"
    del os.environ["NBCACHE_TEST_VAR"]
    os.chdir(tmp_path)
    assert state.apply({"environ": recorded["environ"], "cwd": recorded["cwd"]}) == []
    assert os.environ.pop("NBCACHE_TEST_VAR") == "1" and Path.cwd() == tmp_path / "sub"


# -- requirements -----------------------------------------------------------------------------
def test_a_setting_before_the_cell_is_required_and_its_change_named() -> None:
    np = pytest.importorskip("numpy")
    before = state.snapshot()
    needs = state.requirements(before, state.snapshot())
    assert needs.requires["state:numpy.printoptions"] == before.digests["numpy.printoptions"]
    assert state.unmet(needs.requires) == []
    try:
        np.set_printoptions(precision=2)
        assert state.unmet(needs.requires) == ["numpy print options changed"]
    finally:
        np.set_printoptions(precision=8)


def test_rcparams_are_required_only_by_a_cell_that_reads_them() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    with state.observe() as computing:
        sum(range(10))
    with state.observe() as drawing:
        Figure().add_subplot().plot([1, 2])
    snap = state.snapshot()
    assert "state:matplotlib.rcParams" not in state.requirements(snap, snap, observation=computing).requires
    assert "state:matplotlib.rcParams" in state.requirements(snap, snap, observation=drawing).requires
    import matplotlib

    assert type(matplotlib.rcParams) is matplotlib.RcParams  # the recording class is gone


def test_a_setting_of_a_library_the_cell_imports_is_required_as_it_was_right_after_the_import(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from nbcache.key import state
        before = state.snapshot()
        with state.observe() as seen:
            import numpy as np
            np.set_printoptions(precision=3)
        needs = state.requirements(before, state.snapshot(), observation=seen)
        required = needs.requires["state:numpy.printoptions"]
        # numpy's import added warnings filters: the cell added them, so they are no change
        print(required.startswith("at import:"), state.unmet(needs.requires))
        np.set_printoptions(precision=8)
        print(state.unmet(needs.requires))  # the defaults again: as a fresh import has them
        np.set_printoptions(precision=4)
        print(state.unmet(needs.requires))
        """
    )
    lines = _python(code, tmp_path)
    assert lines == [
        "True ['numpy print options changed since numpy was imported (the cell imports it)']",
        "[]",
        "['numpy print options changed since numpy was imported (the cell imports it)']",
    ]


def test_an_entry_needing_an_unknown_provider_is_never_a_hit() -> None:
    assert state.unmet({"state:no.such.provider": "x"}) == ["the entry depends on state 'no.such.provider', which no provider here knows"]


# -- generators -------------------------------------------------------------------------------
def test_seeding_of_random_is_tracked(tracked: None) -> None:
    gen = registry.find("random")
    assert isinstance(gen, rng.GeneratorProvider) and not gen.seeded()
    random.seed(5)
    assert gen.seeded()
    random.seed()
    assert not gen.seeded()  # new entropy: unknowable again
    random.setstate(random.getstate())
    assert gen.seeded()
    assert random.seed.__module__ == "random" and random.seed.__name__ == "seed"  # pickles as the original


def test_untrack_puts_the_original_functions_back() -> None:
    original = random.seed
    state.track(assume_seeded=False)
    assert random.seed is not original
    state.untrack()
    assert random.seed is original
    assert registry.find("random").seeded()  # type: ignore[union-attr]  # untracked: the exact semantics


def test_seeding_of_numpy_is_tracked_and_fresh_gives_new_entropy(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from nbcache.key import state
        from nbcache.key.state import registry, rng
        state.track(assume_seeded=False)
        import numpy as np
        gen = registry.find("numpy.random")
        np.random.rand()
        first = np.random.get_state()[1].copy()
        gen.apply(rng.FRESH)
        print(gen.seeded(), (np.random.get_state()[1] == first).all())  # new entropy, still unseeded
        np.random.set_state(np.random.get_state())
        print(gen.seeded())
        state.untrack(); state.track(assume_seeded=False)
        np.random.mtrand._rand.seed(3)  # past the wrapped functions: the generator tells itself
        print(gen.seeded())
        """
    )
    assert _python(code, tmp_path) == ["False False", "True", "True"]


def test_seeding_of_torch_is_tracked(tracked: None) -> None:
    torch = pytest.importorskip("torch")
    gen = registry.find("torch")
    assert isinstance(gen, rng.GeneratorProvider)
    torch.seed()
    assert not gen.seeded()
    torch.manual_seed(1)
    assert gen.seeded()
    gen.apply(rng.FRESH)
    assert not gen.seeded()
    torch.set_rng_state(torch.get_rng_state())
    assert gen.seeded()


def test_unseeded_draws_require_only_that_the_generator_stays_unseeded(tracked: None) -> None:
    random.seed()
    before = state.snapshot()
    random.random()
    after = state.snapshot()
    needs = state.requirements(before, after)
    assert needs.requires["rng:random"] == "unseeded" and "random" not in needs.variant
    assert state.changes(before, after)["random"] == rng.FRESH
    assert state.unmet(needs.requires) == []
    random.seed(1)
    assert state.unmet(needs.requires) == ["the global random state is seeded now, and the entry drew from it unseeded"]


def test_seeded_draws_key_the_entry_on_the_state_and_restore_it_exactly(tracked: None) -> None:
    random.seed(7)
    before = state.snapshot()
    random.random()
    after = state.snapshot()
    needs = state.requirements(before, after)
    assert needs.variant == {"random": before.digests["random"]} and "rng:random" not in needs.requires
    assert state.changes(before, after)["random"] == random.getstate()


def test_generators_imported_after_tracking_start_unseeded(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from nbcache.key import state
        from nbcache.key.state import registry
        state.track(assume_seeded=True)  # assume_seeded is for generators imported before
        import numpy.random, torch
        print(registry.find("numpy.random").seeded(), registry.find("torch").seeded(), registry.find("random").seeded())
        numpy.random.seed(1); torch.manual_seed(1)
        print(registry.find("numpy.random").seeded(), registry.find("torch").seeded())
        print(type(numpy.random.__loader__).__name__, type(torch.__spec__.loader).__name__)  # their own loaders
        """
    )
    assert _python(code, tmp_path) == ["False False True", "True True", "SourceFileLoader SourceFileLoader"]


# -- the registry ----------------------------------------------------------------------------
def test_register_state_adds_a_provider_that_is_captured_and_restored() -> None:
    import nbcache

    dial = {"level": 1}
    provider = nbcache.register_state("test.dial", lambda: dial["level"], lambda v: dial.__setitem__("level", v))
    try:
        before = state.snapshot()
        dial["level"] = 3
        after = state.snapshot()
        assert state.changes(before, after)["test.dial"] == 3
        assert state.requirements(before, after).requires["state:test.dial"] == before.digests["test.dial"]
        dial["level"] = 1
        state.apply({"test.dial": 3})
        assert dial["level"] == 3 and provider.label == "test.dial"
    finally:
        registry.unregister("test.dial")


def test_register_state_refuses_bad_arguments() -> None:
    import nbcache

    with pytest.raises(ValueError, match="^nbcache: register_state needs a non-empty name"):
        nbcache.register_state("", lambda: 1, lambda v: None)
    with pytest.raises(TypeError, match="^nbcache: register_state\\('x'\\): capture and restore must be callables"):
        nbcache.register_state("x", 1, lambda v: None)  # type: ignore[arg-type]


def test_a_provider_is_active_only_while_its_library_is_imported() -> None:
    provider = registry.register(registry.StateProvider("test.lib", lambda: 1, lambda v: None, module="nbcache_no_such_lib"))
    try:
        assert provider not in registry.providers() and "test.lib" not in state.snapshot().states
    finally:
        registry.unregister("test.lib")


def test_a_failing_provider_never_breaks_a_snapshot() -> None:
    def broken() -> Any:
        raise RuntimeError("boom")

    registry.register(registry.StateProvider("test.broken", broken, lambda v: None))
    try:
        snap = state.snapshot()
        assert "test.broken" not in snap.states and "random" in snap.states
        assert any("test.broken: capture failed: boom" in p for p in registry.problems)
    finally:
        registry.unregister("test.broken")


def test_a_snapshot_digests_a_state_only_when_asked_and_once() -> None:
    digested: list[Any] = []

    def digest(value: Any) -> str:
        digested.append(value)
        return f"digest of {value}"

    registry.register(registry.StateProvider("test.counted", lambda: 7, lambda v: None, digest=digest))
    try:
        snap = state.snapshot()  # what a cell too quick to be stored pays: captures, no digests
        assert snap.states["test.counted"] == 7 and digested == []
        assert snap.digests["test.counted"] == "digest of 7" and snap.digests.get("test.counted") == "digest of 7"
        assert "test.counted" in snap.digests and "test.counted" in dict(snap.digests)
        assert digested == [7]
        assert "random" in snap.digests and "environ" not in snap.digests  # ambient state: compared by value
    finally:
        registry.unregister("test.counted")


def test_a_failing_digest_is_a_missing_digest_and_a_requirement_that_never_holds() -> None:
    def broken(value: Any) -> str:
        raise RuntimeError("no digest")

    registry.register(registry.StateProvider("test.undigested", lambda: 7, lambda v: None, digest=broken))
    try:
        before = state.snapshot()
        after = state.snapshot()
        assert "test.undigested" not in before.digests and before.digests.get("test.undigested") is None
        assert any("test.undigested: digest failed: no digest" in p for p in registry.problems)
        needs = state.requirements(before, after)
        assert needs.requires["state:test.undigested"] == state.UNDIGESTED
        assert state.unmet(needs.requires) == ["test.undigested could not be digested when the cell ran, so it cannot be known to be the same"]
    finally:
        registry.unregister("test.undigested")


def test_an_entry_point_provider_is_loaded_once_its_module_is_imported(tmp_path: Path) -> None:
    _plugin(tmp_path)
    code = textwrap.dedent(
        """
        from nbcache.key import state
        print("knob" in state.snapshot().states)
        import knoblib
        print(state.snapshot().states.get("knob"))
        """
    )
    assert _python(code, tmp_path) == ["False", "1"]
    (tmp_path / "knoblib-1.0.dist-info" / "entry_points.txt").unlink()  # without it: nothing
    assert _python(code, tmp_path) == ["False", "None"]


def test_an_entry_point_provider_through_real_kernels(tmp_path: Path) -> None:
    from conftest import comparable, run_notebook

    _plugin(tmp_path)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    cells = ["%load_ext nbcache", "import knoblib", "%%cache\nknoblib.set_knob(5)\n", "print(knoblib.get_knob())"]
    first = run_notebook(cells, tmp_path, env=env)
    second = run_notebook(cells, tmp_path, env=env)
    hit = [o for o in second.cells[2].outputs if o.get("metadata", {}).get("nbcache", {}).get("status") == "hit"]
    assert hit, second.cells[2].outputs
    assert comparable(second.cells[3].outputs) == comparable(first.cells[3].outputs) == [{"output_type": "stream", "name": "stdout", "text": "5\n"}]


def _plugin(folder: Path) -> None:
    """An installed distribution (a dist-info on sys.path) whose entry point provides a state
    that nothing else in nbcache sees (kept where no key reaches: on ``sys``)."""
    (folder / "knoblib.py").write_text(
        "import sys\n\ndef get_knob():\n    return getattr(sys, '_knob', 1)\n\ndef set_knob(v):\n    sys._knob = v\n"
    )
    (folder / "knoblib_state.py").write_text(
        "import knoblib\nfrom nbcache.key.state.registry import StateProvider\n\n"
        "def provider():\n"
        "    return StateProvider('knob', knoblib.get_knob, knoblib.set_knob, module='knoblib')\n"
    )
    info = folder / "knoblib-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: knoblib\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nbcache.state]\nknoblib = knoblib_state:provider\n")


# -- post-import hooks ------------------------------------------------------------------------
def test_when_imported_runs_after_the_import_and_leaves_the_loader_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nbcache_hooked_mod.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[Any] = []
    lazy.when_imported("nbcache_hooked_mod", lambda m: seen.append(m.VALUE + 1))
    assert seen == []
    import nbcache_hooked_mod  # type: ignore[import-not-found]

    assert seen == [42]
    assert type(nbcache_hooked_mod.__loader__).__name__ == "SourceFileLoader"
    assert lazy._FINDER not in sys.meta_path  # nothing left waiting
    lazy.when_imported("nbcache_hooked_mod", lambda m: seen.append("now"))
    assert seen == [42, "now"]
    sys.modules.pop("nbcache_hooked_mod", None)


def _python(code: str, cwd: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_loaded_modules_in_order_without_private_parts_of_listed_packages() -> None:
    before = state.Snapshot({}, modules=("sys", "os"))
    after = state.Snapshot({}, modules=("sys", "os", "pkg", "pkg._impl", "pkg.sub", "other._private", "nbcache.run.x", "preamble"))
    assert state.loaded_modules(before, after) == ["pkg", "pkg.sub", "other._private", "preamble"]


def test_warnings_filters_are_required_only_by_a_cell_that_issues_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nbcache_warns_on_import.py").write_text("import warnings\nwarnings.warn('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    snap = state.snapshot()

    def required(observation: Any) -> bool:
        return "state:warnings.filters" in state.requirements(snap, snap, observation=observation).requires

    with state.observe() as quiet:
        with warnings.catch_warnings():  # bookkeeping inside warnings.py: not a use
            warnings.simplefilter("ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with state.observe() as importing:
            import nbcache_warns_on_import  # type: ignore[import-not-found]  # noqa: F401
        with state.observe() as warning:
            warnings.warn("a cell's own warning")
    sys.modules.pop("nbcache_warns_on_import", None)
    assert (required(quiet), required(importing), required(warning)) == (False, False, True)
    assert type(warnings) is type(os)  # the watching class is gone


def test_random_digest_is_of_the_state_and_the_same_in_every_process() -> None:
    from nbcache.key.state.rng import _random_digest

    random.seed(1234)
    first = _random_digest(random.getstate())
    random.random()
    assert _random_digest(random.getstate()) != first  # a draw changes it
    random.seed(1234)
    assert _random_digest(random.getstate()) == first
    code = "import random; from nbcache.key.state.rng import _random_digest; random.seed(1234); print(_random_digest(random.getstate()))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == first
    version, internal, _gauss = random.getstate()
    assert _random_digest((version, internal, 0.5)) != first  # gauss_next is state too


def test_warnings_filters_digest_follows_every_change_of_the_filters() -> None:
    from nbcache.key.state.python import _filters, _filters_digest

    saved = list(warnings.filters)
    try:
        before = _filters_digest(_filters())
        assert _filters_digest(_filters()) == before  # the same filters (remembered)
        warnings.filterwarnings("ignore", message="nbcache-digest-test")
        added = _filters_digest(_filters())
        assert added != before
        warnings.filters.pop(0)
        assert _filters_digest(_filters()) == before
        warnings.filters.insert(0, ("ignore", None, UserWarning, None, 0))  # the same length, another filter
        warnings.filters.pop(1)
        assert _filters_digest(_filters()) not in (before, added)
    finally:
        warnings.filters[:] = saved
        warnings._filters_mutated()  # type: ignore[attr-defined]


def test_nested_observations_of_the_filters_each_see_their_own_warnings() -> None:
    from nbcache.key.state.python import _filter_readers, _observe_filters

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _observe_filters() as outer:
            with _observe_filters() as inner:
                pass  # neither has read the filters: their flags are equal lists
            warnings.warn("nbcache-nested-test")
        assert (outer(), inner()) == (True, False)
    assert _filter_readers == []
