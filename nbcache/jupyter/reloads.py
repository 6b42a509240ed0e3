"""IPython's ``%autoreload`` as nbcache sees it: which modules it keeps current, and what to tell
a user whose kernel still runs a module's old code.

``%autoreload`` (modes 1 and 2, ``%aimport``) reloads edited modules before each cell runs, so by
the time ``%%cache`` keys the cell the kernel runs the new code. IPython 9 patches functions in
place (their identity stays, their code object changes), and a change to a constant leaves no
function changed at all, so nbcache also asks the reloader itself: :class:`AutoreloadWatch` reads
the ``ModuleReloader`` that ``%load_ext autoreload`` created (IPython keeps it on the magics
object; it has no public accessor) and implements :class:`nbcache.key.modules.Reloader`.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["AutoreloadWatch"]


class AutoreloadWatch:
    """A :class:`~nbcache.key.modules.Reloader` over the shell's ``%autoreload``, if loaded."""

    def __init__(self, shell: Any):
        self.shell = shell

    def _reloader(self) -> Any:
        magics = getattr(getattr(self.shell, "magics_manager", None), "registry", {}).get("AutoreloadMagics")
        return getattr(magics, "_reloader", None)

    @staticmethod
    def _covers(reloader: Any, name: str) -> bool:
        if not getattr(reloader, "enabled", False) or name in getattr(reloader, "skip_modules", {}):
            return False
        return bool(getattr(reloader, "check_all", False)) or name in getattr(reloader, "modules", {})

    def reconciled(self, name: str) -> float | None:
        reloader = self._reloader()
        if reloader is None or not self._covers(reloader, name):
            return None
        mtime = getattr(reloader, "modules_mtimes", {}).get(name)
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if mtime is None or (path is not None and getattr(reloader, "failed", {}).get(path) == mtime):
            return None  # its last reload failed: the module holds a mix of old and new code
        return float(mtime)

    def remedy(self, names: list[str]) -> str:
        reload = " or ".join(f"importlib.reload({name})" for name in names)
        reloader = self._reloader()
        if reloader is None:
            return f"{reload} loads the new code; %load_ext autoreload and %autoreload 2 reload edited modules before every cell"
        if not getattr(reloader, "enabled", False):
            return f"autoreload is off: %autoreload 2 turns it on, or {reload} loads the new code"
        failed = getattr(reloader, "failed", {})
        for name in names:
            module = sys.modules.get(name)
            if getattr(module, "__file__", None) in failed:
                return f"autoreload could not reload {name} (see the error it printed): fix the module, or {reload}"
        skipped = [name for name in names if name in getattr(reloader, "skip_modules", {})]
        if skipped:
            return f"%aimport -{skipped[0]} excludes it from autoreload: {reload} loads the new code"
        missing = [name for name in names if not self._covers(reloader, name)]
        if missing:
            return f"%autoreload 1 reloads only %aimport modules: %aimport {' '.join(missing)}, or %autoreload 2 for all"
        # covered, yet old: edited before autoreload first saw it, so it never reloaded it
        return f"it was edited before autoreload saw it, so autoreload does not reload it: {reload} loads the new code"
