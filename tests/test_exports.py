"""Every public module's ``__all__`` names things that exist."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MODULES = [
    "nbcache.store.cache", "nbcache.cli", "nbcache.store.compression", "nbcache.errors", "nbcache.store.index",
    "nbcache.store.signing", "nbcache.store.backends", "nbcache.store.backends.remote", "nbcache.units",
    "nbcache.store", "nbcache.store.manifest", "nbcache.store.blobs", "nbcache.store.upkeep", "nbcache.store.outage",
    "nbcache.store.usage",
    "nbcache", "nbcache.key.fingerprint", "nbcache.key.fingerprint.user", "nbcache.run.reducers",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    missing = [item for item in module.__all__ if not hasattr(module, item)]
    assert not missing


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


def test_register_fingerprint_is_public() -> None:
    import nbcache
    from nbcache.key.fingerprint.user import register_fingerprint

    assert "register_fingerprint" in nbcache.__all__
    assert nbcache.register_fingerprint.__doc__ and register_fingerprint.__doc__
