"""Library adapters: the paths handed to libraries that read and write files in native code.

pyarrow, polars, duckdb and h5py open files in C++, Rust or C, where the audit hook of
:mod:`~nbcache.key.deps` sees nothing. Their reading and writing entry points are wrapped so that
the paths they are given are noted (:func:`~nbcache.key.deps.note_read`, ``note_write``,
``note_text`` for SQL) before the library runs, on the thread of a watched run only.

An adapter is installed by :func:`install_ready`, called at the start of every watched run, for
each registered module that the notebook has imported, and right after such a module is imported
once the engine armed the registry (:meth:`Adapters.arm`, at its first watched run: an import
hook of :mod:`nbcache.key.state.lazy`): nbcache never imports a library itself. Entries are by
module (``"pyarrow.parquet"`` is imported separately from ``"pyarrow"``), so a submodule imported
inside a call (``pd.read_parquet`` imports ``pyarrow.parquet``) is wrapped before it is used. Not
seen: names bound before the adapter was installed (``from polars import read_csv`` before the
first watched run), and paths the library finds by itself (a dataset's ``_metadata``, files
behind a filesystem object or a URL).

:func:`register_adapter` adds an adapter for another library: a function given the module, which
wraps what it needs (see :mod:`.wrap`).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType
from typing import Callable, Union

from ...errors import NbCacheWarning

__all__ = ["ADAPTERS", "Adapters", "Installer", "install_ready", "register_adapter"]

Installer = Callable[[ModuleType], None]
"""Wraps the entry points of one module, given the module."""


class Adapters:
    """Module names -> the adapters that wrap them, installed once each module is imported."""

    def __init__(self) -> None:
        self.pending: dict[str, list[Union[Installer, str]]] = {}
        """Adapters not installed yet, by module name (an adapter module's name: imported lazily)."""
        self.installed: set[str] = set()
        self._armed = False

    def register(self, module_name: str, install: Installer) -> None:
        """``install(module)`` wraps ``module_name``'s entry points once it is imported."""
        self.pending.setdefault(module_name, []).append(install)
        self._hook(module_name)

    def register_lazy(self, module_name: str, adapter: str) -> None:
        """The adapter is the ``install`` function of the module named ``adapter``, imported
        only when ``module_name`` is."""
        self.pending.setdefault(module_name, []).append(adapter)
        self._hook(module_name)

    def _hook(self, module_name: str) -> None:
        if self._armed and sys.modules.get(module_name) is None:  # (imported: the next run installs it)
            from ..state.lazy import when_imported

            when_imported(module_name, lambda module: self._install_module(module_name, module))

    def _install_module(self, name: str, module: ModuleType) -> None:
        """Right after ``module``'s code ran (its import is not over: install_ready would wait)."""
        for install in self.pending.pop(name, []):
            self._install(name, module, install)
        self.installed.add(name)

    def arm(self) -> None:
        """Also install each adapter right after its module is imported, from then on (so that
        the run whose ``pd.read_parquet`` imports ``pyarrow.parquet`` sees the path it reads):
        through :func:`nbcache.key.state.lazy.when_imported`. Idempotent and cheap."""
        if self._armed:
            return
        self._armed = True
        for name in list(self.pending):
            self._hook(name)

    def install_ready(self) -> None:
        """Install the adapters of the registered modules that are imported (and fully loaded)."""
        pending = self.pending
        if not pending:
            return
        modules = sys.modules
        ready = [name for name in pending if modules.get(name) is not None]
        for name in ready:
            module = modules[name]
            if getattr(getattr(module, "__spec__", None), "_initializing", False):
                continue  # still being imported (by another thread): at the next run
            for install in pending.pop(name):
                self._install(name, module, install)
            self.installed.add(name)

    @staticmethod
    def _install(name: str, module: ModuleType, install: Union[Installer, str]) -> None:
        from ..deps import unwatched

        try:
            with unwatched():  # the adapter's own import reads nbcache's files, not the cell's
                function = importlib.import_module(install).install if isinstance(install, str) else install
                function(module)
        except Exception as exc:  # noqa: BLE001 - a library's new version must not break a run
            warnings.warn(f"nbcache: the adapter of {name} failed ({exc!r}); its files are not watched", NbCacheWarning, stacklevel=3)


ADAPTERS = Adapters()
for _name in ("pyarrow", "pyarrow.parquet", "pyarrow.dataset", "pyarrow.feather", "pyarrow.orc", "pyarrow.csv", "pyarrow.json", "pyarrow.ipc"):
    ADAPTERS.register_lazy(_name, f"{__name__}.pyarrow")
ADAPTERS.register_lazy("polars", f"{__name__}.polars")
ADAPTERS.register_lazy("duckdb", f"{__name__}.duckdb")
ADAPTERS.register_lazy("h5py", f"{__name__}.h5py")
ADAPTERS.register_lazy("tables", f"{__name__}.tables")
del _name


def install_ready() -> None:
    """Install the adapters of every registered library the notebook has imported (cheap when
    there is nothing new: one dictionary lookup per library not imported)."""
    ADAPTERS.install_ready()


def register_adapter(module_name: str, install_fn: Installer) -> None:
    """Have ``install_fn(module)`` wrap the reading and writing functions of ``module_name`` once
    it is imported, e.g. with :func:`nbcache.key.adapters.wrap.patch` and ``wrap.reads(0,
    "path")``: the paths it hands to its library are then watched like those of pyarrow."""
    ADAPTERS.register(module_name, install_fn)
