"""The IPython edge of the dashboard: ``%cache_dashboard``, ``nbcache.dashboard()`` and
``nbcache.stats()`` for the store of the shell's loaded ``%%cache`` magic.

:mod:`nbcache.jupyter.magic` calls :func:`load` and :func:`unload` from its own; ipywidgets and pandas are
imported only when a dashboard or a DataFrame is asked for, so ``%load_ext nbcache`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ..store.usage import collect, to_frame

if TYPE_CHECKING:
    import pandas

    from .dashboard_widget import Dashboard
    from .magic import NbCache

__all__ = ["DashboardMagics", "active", "dashboard", "load", "stats", "unload"]


@magics_class
class DashboardMagics(Magics):
    """``%cache_dashboard`` for one shell."""

    def __init__(self, shell: Any, nbcache: NbCache):
        super().__init__(shell=shell)
        self.nbcache = nbcache

    @line_magic
    def cache_dashboard(self, line: str) -> Dashboard:
        """Show the cache dashboard: entries, hit rates, time saved, disk used.

        The table is sortable (click a column heading), filterable and paginated; each row has a
        button that invalidates its entry, and "Clear all" empties the cache after a confirmation.
        The dashboard refreshes after every cell until it is closed (``dash.close()``).

        Examples::

            %cache_dashboard
            dash = %cache_dashboard
            nbcache.stats()          # the same numbers as a pandas DataFrame
        """
        if line.strip():
            raise UsageError(f"nbcache: %cache_dashboard takes no arguments (got {line.strip()!r})")
        return dashboard(self.shell)


_loaded: dict[int, DashboardMagics] = {}


def load(shell: Any, nbcache: NbCache) -> None:
    if id(shell) in _loaded:
        return
    magics = DashboardMagics(shell, nbcache)
    shell.register_magics(magics)
    _loaded[id(shell)] = magics


def unload(shell: Any) -> None:
    magics = _loaded.pop(id(shell), None)
    if magics is None:
        return
    manager = shell.magics_manager
    if getattr(manager.magics["line"].get("cache_dashboard"), "__self__", None) is magics:
        del manager.magics["line"]["cache_dashboard"]
    manager.registry.pop(type(magics).__name__, None)


def active(shell: Any = None) -> DashboardMagics:
    """The dashboard side of the ``%%cache`` magic loaded in ``shell`` (the running one by default)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    magics = _loaded.get(id(shell)) if shell is not None else None
    if magics is None:
        raise UsageError("nbcache: the extension is not loaded in this shell; run %load_ext nbcache first")
    return magics


def dashboard(shell: Any = None) -> Dashboard:
    """A live dashboard of the active cache (see ``%cache_dashboard?``)."""
    from .dashboard_widget import Dashboard

    magics = active(shell)
    return Dashboard(magics.nbcache._open_cache, shell=magics.shell)


def stats(shell: Any = None) -> pandas.DataFrame:
    """The active cache's entries and their usage, one row per entry, indexed by key."""
    magics = active(shell)
    rows, _totals = collect(magics.nbcache._open_cache())
    return to_frame(rows)
