"""Every public module's ``__all__`` names things that exist."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

def _modules() -> list[str]:
    import pkgutil

    import nbcache

    return sorted(m.name for m in pkgutil.walk_packages(nbcache.__path__, "nbcache.") if ".labextension" not in m.name)


MODULES = _modules()


def test_every_module_is_walked() -> None:
    # The walk above must see the subpackages' modules, or the test below would check nothing.
    assert {"nbcache.store.cache", "nbcache.key.fingerprint.registry", "nbcache.run.engine", "nbcache.jupyter.extension"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = [item for item in module.__all__ if not hasattr(module, item)]
    assert not missing


def test_the_public_api_is_as_it_was() -> None:
    import nbcache

    assert sorted(nbcache.__all__) == [
        "__version__", "_jupyter_labextension_paths", "checkpoint", "dashboard", "explain",
        "load_ipython_extension", "register_adapter", "register_fingerprint", "register_state", "stats",
        "unload_ipython_extension", "wait_for_writes",
    ]


def test_dashboard_api_names() -> None:
    from dataclasses import fields

    from nbcache.store.cache import Cache, EntryStats, Totals

    assert [f.name for f in fields(EntryStats)] == [
        "key", "label", "cell", "size", "hits", "misses", "runtime", "restore_time", "created", "last_used",
    ]
    assert [f.name for f in fields(Totals)] == ["entries", "size", "size_limit", "hits", "misses", "time_saved"]
    assert callable(Cache.stats) and callable(Cache.totals)


def test_one_entry_stats_record() -> None:
    import nbcache.store
    from nbcache.store import cache, index, usage

    assert nbcache.store.EntryStats is cache.EntryStats is index.EntryStats is usage.EntryStats
    assert nbcache.store.Totals is cache.Totals is usage.Totals


def test_store_import_stays_light() -> None:
    heavy = ("numpy", "pandas", "matplotlib", "IPython", "ipywidgets", "zstandard", "fsspec")
    code = f"import sys, nbcache.store, nbcache.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_register_state_is_public_and_importing_nbcache_stays_light() -> None:
    import nbcache

    assert "register_state" in nbcache.__all__ and callable(nbcache.register_state)
    code = "import sys, nbcache; print(sorted(m for m in sys.modules if m.startswith('nbcache.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # the registry loads on first use, not on import


def test_state_providers_import_no_library() -> None:
    libraries = ("numpy", "pandas", "matplotlib", "torch", "sklearn", "polars")
    code = (
        "import sys; from nbcache.key import state; state.snapshot(); state.track(assume_seeded=False); "
        f"print(sorted(m for m in {libraries!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
def test_register_fingerprint_is_public() -> None:
    import nbcache
    from nbcache.key.fingerprint.user import register_fingerprint

    assert "register_fingerprint" in nbcache.__all__
    assert nbcache.register_fingerprint.__doc__ and register_fingerprint.__doc__
