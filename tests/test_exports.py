"""Every public module's ``__all__`` names things that exist."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "nbcache.store.cache", "nbcache.cli", "nbcache.store.compression", "nbcache.errors", "nbcache.store.index",
    "nbcache.store.signing", "nbcache.store.backends", "nbcache.store.backends.remote", "nbcache.units",
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
