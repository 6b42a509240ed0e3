"""``%cache_dashboard``: the dashboard's magic, and the dashboard or the usage DataFrame of a cache.

ipywidgets and pandas are imported only when a dashboard or a DataFrame is asked for, so
``%load_ext nbcache`` stays light. :mod:`nbcache.jupyter.extension` registers the magic with the
cache opener of the shell's ``%%cache`` magic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ..store.usage import collect, to_frame

if TYPE_CHECKING:
    import pandas

    from ..store.cache import Cache
    from .dashboard_widget import Dashboard

__all__ = ["DashboardMagics", "open_dashboard", "usage_frame"]


@magics_class
class DashboardMagics(Magics):
    """``%cache_dashboard`` for one shell."""

    def __init__(self, shell: Any, open_cache: Callable[[], Cache]):
        super().__init__(shell=shell)
        self.open_cache = open_cache

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
        return open_dashboard(self.open_cache, self.shell)


def open_dashboard(open_cache: Callable[[], Cache], shell: Any = None) -> Dashboard:
    """A live dashboard of the cache ``open_cache`` opens (see ``%cache_dashboard?``)."""
    from .dashboard_widget import Dashboard

    return Dashboard(open_cache, shell=shell)


def usage_frame(open_cache: Callable[[], Cache]) -> pandas.DataFrame:
    """The cache's entries and their usage, one row per entry, indexed by key."""
    rows, _totals = collect(open_cache())
    return to_frame(rows)
