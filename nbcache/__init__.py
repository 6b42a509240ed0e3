"""nbcache: a cell-level cache for Jupyter.

``%load_ext nbcache``, then put ``%%cache`` on a slow cell. The first run executes it and stores
what it produced; later runs, after a restart or on another machine, restore the variables and
replay the outputs, as long as nothing the cell depends on has changed.

Data flow, one module each: ``analysis`` (source -> reads, writes) -> ``fingerprint`` and ``key``
(values -> key) -> ``cache`` over ``store`` (entries -> bytes) -> ``capture`` (outputs, replay),
``serialize`` (values <-> bytes); ``engine`` ties them together without IPython, and ``magic`` is
the thin IPython adapter.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "dashboard", "load_ipython_extension", "stats", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbcache``: register ``%%cache`` and nbcache's configuration."""
    from .magic import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbcache``: remove everything ``load_ipython_extension`` registered."""
    from .magic import unload

    unload(ipython)


def dashboard() -> Any:
    """A live ipywidgets dashboard of the active cache (as ``%cache_dashboard``)."""
    from .dashboard_magic import dashboard as open_dashboard

    return open_dashboard()


def stats() -> Any:
    """The active cache's entries and their usage as a pandas DataFrame."""
    from .dashboard_magic import stats as usage_frame

    return usage_frame()
