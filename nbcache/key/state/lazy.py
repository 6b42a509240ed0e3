"""Run a function right after a module is imported (now, when it already is).

A generator's seeding is tracked from the moment its library is imported, before any cell can
seed it: :func:`when_imported` installs a finder at the front of ``sys.meta_path`` that wraps the
module's loader, runs the callbacks once the module's code has run, and puts the original loader
back, so the module looks as if nbcache had never been there. :func:`forget` removes the finder.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

__all__ = ["cancel", "forget", "waiting", "when_imported"]

_callbacks: dict[str, list[Callable[[Any], None]]] = {}
_lock = threading.RLock()
_busy: set[str] = set()


def when_imported(name: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(module)`` once ``name`` is imported: now if it is, else after its import."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    with _lock:
        _callbacks.setdefault(name, []).append(callback)
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def cancel(name: str, callback: Callable[[Any], None]) -> None:
    """Drop ``callback`` if it has not run yet."""
    with _lock:
        callbacks = _callbacks.get(name, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            _callbacks.pop(name, None)
        if not _callbacks and _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)


def waiting(name: str, callback: Callable[[Any], None]) -> bool:
    """Whether ``callback`` waits for ``name`` to be imported."""
    return callback in _callbacks.get(name, ())


def forget() -> None:
    """Drop the callbacks not run yet, and the finder."""
    with _lock:
        _callbacks.clear()
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)


def _run(name: str, module: Any) -> None:
    with _lock:
        callbacks = _callbacks.pop(name, [])
        if not _callbacks and _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
    for callback in callbacks:
        try:
            callback(module)
        except Exception:  # noqa: BLE001 - nbcache's bookkeeping must never break an import
            pass


class _Finder:
    """Finds nothing itself: asks the finders after it, and wraps the loader of a watched module."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _callbacks or fullname in _busy:
            return None
        _busy.add(fullname)
        try:
            for finder in list(sys.meta_path):
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                spec = find(fullname, path, target) if find is not None else None
                if spec is not None:
                    break
            else:
                return None
        finally:
            _busy.discard(fullname)
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return None
        spec.loader = _Loader(loader, fullname, spec)
        return spec


class _Loader:
    def __init__(self, loader: Any, name: str, spec: Any):
        self._loader, self._name, self._spec = loader, name, spec

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        # The module sees its real loader while its code runs, and keeps it afterwards.
        self._spec.loader = self._loader
        try:
            module.__loader__ = self._loader
        except AttributeError:
            pass
        self._loader.exec_module(module)
        _run(self._name, module)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._loader, attr)


_FINDER = _Finder()
