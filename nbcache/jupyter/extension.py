"""``%load_ext nbcache``: what it sets up in one shell, and the one way the rest of nbcache finds it.

Per shell, one :class:`Session` holds the ``%%cache`` magic (its settings, the engine and the open
cache), automatic mode (``%cache_all``, which follows ``NbCache.auto``; ``NBCACHE_AUTO=1`` turns it
on at load), the bridge to the JupyterLab extension, and the dashboard's magic, as IPython's
autoreload keeps its state in one ``ModuleReloader``. :func:`load` and :func:`unload` are mirror images, and
:func:`session` is the accessor. The modules this one wires (:mod:`~nbcache.jupyter.magic`,
:mod:`~nbcache.jupyter.comm`, :mod:`~nbcache.jupyter.dashboard`, :mod:`~nbcache.jupyter.auto`) know
nothing of each other or of this module: each is handed the engine or the cache opener it needs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from ..key import state
from ..key.modules import register_reloader, unregister_reloader
from ..run.engine import Engine
from ..store.cache import Cache
from .auto import AutoMode
from .comm import KernelBridge
from .dashboard import DashboardMagics
from .host import CellSyntaxErrors
from .magic import ENV_AUTO, NbCache, drop_empty_cache_cell
from .reloads import AutoreloadWatch

__all__ = ["Session", "active", "load", "session", "unload"]


@dataclass(frozen=True)
class Session:
    """What ``%load_ext nbcache`` set up in one shell."""

    shell: Any
    magics: NbCache
    dashboard: DashboardMagics
    auto: AutoMode
    bridge: KernelBridge | None
    """None without a kernel (a plain IPython terminal): no frontend to talk to."""
    autoreload: AutoreloadWatch
    syntax_errors: CellSyntaxErrors

    @property
    def engine(self) -> Engine:
        return self.magics.engine

    def open_cache(self) -> Cache:
        return self.magics.open_cache()


_sessions: dict[int, Session] = {}


def session(shell: Any = None) -> Session | None:
    """The session of ``shell`` (the running shell by default), or None where nbcache is not loaded."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    return _sessions.get(id(shell)) if shell is not None else None


def active(shell: Any = None) -> Session:
    """:func:`session`, for callers that need one: a clear error where nbcache is not loaded."""
    found = session(shell)
    if found is None:
        raise UsageError("nbcache: the extension is not loaded in this shell; run %load_ext nbcache first")
    return found


def load(shell: Any) -> None:
    if id(shell) in _sessions:
        return
    magics = NbCache(shell=shell)
    shell.register_magics(magics)
    shell.input_transformers_cleanup.append(drop_empty_cache_cell)
    dashboard = DashboardMagics(shell, magics.open_cache)  # %cache_dashboard
    shell.register_magics(dashboard)
    auto = AutoMode(shell, magics.engine, magics.open_cache, magics)  # %cache_all, NbCache.auto
    bridge: KernelBridge | None = None
    autoreload: AutoreloadWatch | None = None
    try:
        # The JupyterLab extension's comm target; nothing without a kernel.
        bridge = KernelBridge.attach(shell, magics.engine, magics.open_cache, auto=_AutoSwitch(magics, auto))
        autoreload = AutoreloadWatch(shell)  # what %autoreload keeps current, for the module keys
        register_reloader(autoreload)
        syntax_errors = CellSyntaxErrors(shell)  # a syntax error in a cached cell shows as in any cell
    except BaseException:
        # Half a load would leave magics that no unload can find: undo it, and let the error show.
        if bridge is not None:
            bridge.detach()
        if autoreload is not None:
            unregister_reloader(autoreload)
        _unregister_magics(shell, magics, dashboard)
        _drop_transformer(shell)
        raise
    _sessions[id(shell)] = Session(shell, magics, dashboard, auto, bridge, autoreload, syntax_errors)
    # Seeding of the global generators is tracked from here on (unseeded draws are cached).
    state.track(assume_seeded=_seeded_before(shell))
    magics.observe(_switch, names=["auto", "min_runtime"])
    if os.environ.get(ENV_AUTO, "").strip().lower() in ("1", "true", "yes", "on"):
        magics.auto = True
    _switch({"owner": magics})


def unload(shell: Any) -> None:
    found = _sessions.pop(id(shell), None)
    if found is None:
        return
    if not _sessions:
        state.untrack()
    if found.bridge is not None:
        found.bridge.detach()
    found.magics.unobserve(_switch, names=["auto", "min_runtime"])
    found.auto.disable()
    unregister_reloader(found.autoreload)
    found.syntax_errors.remove()
    _unregister_magics(shell, found.magics, found.dashboard)
    _drop_transformer(shell)
    found.engine.listeners.clear()


def _switch(change: Any) -> None:
    """``NbCache.auto`` (or ``min_runtime``) changed: automatic mode follows, the frontend hears."""
    magics = change["owner"]
    found = next((s for s in _sessions.values() if s.magics is magics), None)
    if found is None:
        return
    if magics.auto:
        found.auto.enable()
    else:
        found.auto.disable()
    if found.bridge is not None:
        found.bridge.auto_changed()


class _AutoSwitch:
    """What the frontend bridge may see and do of automatic mode: its state, and the toggle."""

    def __init__(self, magics: NbCache, auto: AutoMode):
        self._magics = magics
        self._auto = auto

    @property
    def on(self) -> bool:
        return self._auto.on

    @property
    def min_runtime(self) -> float:
        return float(self._magics.min_runtime)

    @property
    def running(self) -> bool:
        return self._auto.running

    def set(self, on: bool) -> None:
        self._magics.auto = on


def _unregister_magics(shell: Any, magics: NbCache, dashboard: DashboardMagics) -> None:
    _unregister(shell, dashboard, "line", "cache_dashboard")
    _unregister(shell, magics, "cell", "cache")
    _unregister(shell, magics, "cell", "nocache")
    _unregister(shell, magics, "line", "cache_all")


_SEEDING = re.compile(r"seed|set_?state|set_rng_state")


def _seeded_before(shell: Any) -> bool:
    """Whether a cell run before nbcache was loaded may have seeded a global generator (nothing
    tracked it then): any cell so far that mentions seeding."""
    cells = shell.user_ns.get("In") or []
    return any(isinstance(cell, str) and _SEEDING.search(cell) for cell in cells)


def _drop_transformer(shell: Any) -> None:
    """Undo ``load``'s input transformer for the empty ``%%cache`` cell."""
    if drop_empty_cache_cell in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(drop_empty_cache_cell)


def _unregister(shell: Any, magics: Any, kind: str, name: str) -> None:
    """Undo ``shell.register_magics(magics)`` (IPython has no public call for it)."""
    manager = shell.magics_manager
    if getattr(manager.magics[kind].get(name), "__self__", None) is magics:
        del manager.magics[kind][name]
    manager.registry.pop(type(magics).__name__, None)
    if magics in shell.configurables:  # Magics.__init__ put it there
        shell.configurables.remove(magics)
