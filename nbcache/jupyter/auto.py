"""Automatic mode (``%cache_all``): every code cell through the cache, as under ``%%cache``.

How a cell gets there, with IPython's documented hooks only:

1. ``pre_run_cell`` (an event) hands over the cell about to run: its source as typed, IPython's
   Python for it, and its notebook cell id.
2. An AST transformer (``shell.ast_transformers``) sees that cell's parsed code before it runs.
   A cell automatic mode leaves alone goes on unchanged and IPython runs it as always: a cell it
   never caches (:mod:`nbcache.run.automatic`), a cell it knows to be cheap
   (:mod:`nbcache.run.runtimes`), ``%%cache`` and ``%%nocache`` (the magics decide). Any other
   cell becomes one call of :func:`run_pending`, which runs it through the engine exactly as
   ``%%cache`` would: lookup, hit or run, record; it is stored only when
   :class:`~nbcache.run.automatic.Admission` admits the run.
3. ``post_run_cell`` times the cells that ran unchanged (a cheap cell that turned slow loses its
   hint), learns from the engine's outcome, and writes the cell's :class:`CellReport`, which
   ``nbcache run`` reads through :func:`report`.

A cell run through :func:`run_pending` shows the traceback IPython would show for it: the
cell's exception carries the traceback of the cell's own frames, formatted by the shell
(``_render_traceback_``, IPython's documented hook for exceptions that render themselves), so the
replacing call's frames do not appear; the attribute is removed again in ``post_run_cell``.
Load and unload are mirror images:
:meth:`AutoMode.enable` registers the two events, the transformer and an engine listener, and
:meth:`AutoMode.disable` removes them.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

from ..errors import NbCacheError
from ..run.automatic import Admission, never_cached, own_cell_magic
from ..run.engine import Engine, Outcome, RunOptions
from ..run.runtimes import RUNTIMES_FILE, Runtimes, source_digest
from ..store.cache import Cache
from .host import IPythonHost, user_frames

__all__ = ["AutoMode", "CellReport", "report", "run_pending"]

# Shells with automatic mode on, for run_pending (called from the user's namespace) and report.
_active: dict[int, AutoMode] = {}

Mode = Literal["wrapped", "hinted", "never", "magic"]
# A hit of a cell that ran for less than this shows no note: in a Run All of many quick cells
# (NbCache.min_runtime = 0) a note under each would be noise, and publishing one costs more than
# the rest of the hit. (The JupyterLab badge still says hit.)
NOTE_BELOW = 0.25


@dataclass(frozen=True)
class CellReport:
    """How automatic mode dealt with one cell (``nbcache run`` prints these)."""

    execution_count: int | None
    status: Literal["hit", "stored", "ran", "error"]
    seconds: float
    """How long the cell took now (a hit: its restore)."""
    saved: float = 0.0
    """Seconds a hit saved."""
    reason: str | None = None
    """Why a cell that ran was not stored."""


@dataclass
class _Cell:
    """A cell between pre_run_cell and post_run_cell."""

    info: Any
    start: float = field(default_factory=time.perf_counter)
    seen: bool = False
    """Whether the transformer has seen this cell's code (later ASTs are %time's and the like)."""
    mode: Mode | None = None
    digest: str = ""
    reason: str | None = None
    outcome: Outcome | None = None


class _Transformer(ast.NodeTransformer):
    def __init__(self, auto: AutoMode):
        self.auto = auto

    def visit(self, node: ast.AST) -> Any:
        return self.auto.rewrite(node)


class AutoMode:
    """Automatic caching in one shell; ``settings`` is the ``NbCache`` configurable."""

    def __init__(self, shell: Any, engine: Engine, open_cache: Callable[[], Cache], settings: Any):
        self.shell = shell
        self.engine = engine
        self.open_cache = open_cache
        self.settings = settings
        self.on = False
        self.last: CellReport | None = None
        self._stack: list[_Cell] = []
        self._transformer = _Transformer(self)
        self._pending: _Cell | None = None
        self._runtimes: Runtimes | None = None
        self._unavailable = False
        self._rendered: list[BaseException] = []

    # -- on and off ----------------------------------------------------------------------------
    def enable(self) -> None:
        if self.on:
            return
        self.on = True
        events = self.shell.events
        events.register("pre_run_cell", self._pre_run_cell)
        events.register("post_run_cell", self._post_run_cell)
        self.shell.ast_transformers.append(self._transformer)
        self.engine.listeners.append(self._heard)
        _active[id(self.shell)] = self
        self._unavailable = False
        self._hints()  # says so now when there is no cache to use
        atexit.register(self._flush)

    def disable(self) -> None:
        """Mirror of :meth:`enable`. Safe inside a cell: that cell finishes as it started."""
        if not self.on:
            return
        self.on = False
        events = self.shell.events
        for name, callback in (("pre_run_cell", self._pre_run_cell), ("post_run_cell", self._post_run_cell)):
            try:
                events.unregister(name, callback)
            except ValueError:
                pass
        if self._transformer in self.shell.ast_transformers:
            self.shell.ast_transformers.remove(self._transformer)
        if self._heard in self.engine.listeners:
            self.engine.listeners.remove(self._heard)
        if _active.get(id(self.shell)) is self and self._pending is None:
            del _active[id(self.shell)]  # (a cell already replaced still runs: see run_pending)
        self._forget_rendered()
        self._stack.clear()
        self._flush()
        atexit.unregister(self._flush)

    @property
    def running(self) -> bool:
        """Whether the engine is running a cell on automatic mode's behalf right now."""
        return bool(self._stack) and self._stack[-1].mode == "wrapped"

    # -- the hooks -----------------------------------------------------------------------------
    def _pre_run_cell(self, info: Any) -> None:
        self._stack.append(_Cell(info))

    def rewrite(self, node: ast.AST) -> ast.AST:
        """The AST transformer: the cell's code as it runs (unchanged, or one call of run_pending)."""
        if not self._stack or self._stack[-1].seen or not isinstance(node, ast.Module) or not node.body:
            return node
        cell = self._stack[-1]
        cell.seen = True
        if len(self._stack) > 1:
            return node  # a cell run from inside another cell runs as it is
        hints = self._hints()
        if hints is None:
            return node
        cell.digest = source_digest(cell.info.raw_cell)
        cheap = hints.get(cell.digest)
        if cheap is not None and cheap < self.settings.min_runtime:
            cell.mode, cell.start = "hinted", time.perf_counter()
            return node
        if own_cell_magic(node):
            cell.mode = "magic"
            return node
        python = getattr(cell.info, "transformed_cell", None)
        cell.reason = never_cached(node, self.shell.transform_cell, source=python if isinstance(python, str) else None)
        if cell.reason is not None:
            cell.mode = "never"
            return node
        cell.mode = "wrapped"
        self._pending = cell
        call = ast.Expr(
            ast.Call(
                func=ast.Attribute(
                    value=ast.Call(
                        func=ast.Name(id="__import__", ctx=ast.Load()),
                        args=[ast.Constant(__name__)],
                        keywords=[ast.keyword(arg="fromlist", value=ast.Tuple(elts=[ast.Constant("run_pending")], ctx=ast.Load()))],
                    ),
                    attr="run_pending",
                    ctx=ast.Load(),
                ),
                args=[],
                keywords=[],
            )
        )
        ast.copy_location(call, node.body[0])
        return ast.Module(body=[call], type_ignores=[])  # (IPython fixes the missing locations)

    def run_pending(self, cell_file: str | None = None) -> BaseException | None:
        """Run the cell the transformer replaced; the cell's own exception is returned, its
        traceback trimmed to the cell's frames, for the caller to raise. ``cell_file``: the
        file name IPython compiled the cell under."""
        cell, self._pending = self._pending, None
        if cell is None:
            return None
        info = cell.info
        python = getattr(info, "transformed_cell", None) or self.shell.transform_cell(info.raw_cell)
        host = IPythonHost(self.shell, magic=None, transformed=(info.raw_cell, python), note_below=NOTE_BELOW, cell_file=cell_file)
        options = RunOptions(
            quiet=self.settings.quiet,
            cell=getattr(info, "cell_id", None) or None,
            admit=Admission(self.settings.min_runtime),
            warn_uncached=False,
            judge=self.settings.judge_restores,
            max_file_size=self.settings.max_file_size,
        )
        try:
            self.engine.run(host, info.raw_cell, options)
        except BaseException as exc:  # the cell's own error (or an interrupt): nothing was stored
            if isinstance(exc, SyntaxError) and exc.filename == host.filename:
                return exc.with_traceback(None)
            self._render_as_run(exc.with_traceback(user_frames(exc.__traceback__, host.filename)))
            return exc
        return None

    def _heard(self, outcome: Outcome) -> None:
        if self._stack:
            self._stack[-1].outcome = outcome

    def _post_run_cell(self, result: Any) -> None:
        self._forget_rendered()
        info = getattr(result, "info", None)
        index = next((i for i in range(len(self._stack) - 1, -1, -1) if self._stack[i].info is info), None)
        if index is None:
            return  # an empty cell: IPython announced nothing
        cell = self._stack[index]
        del self._stack[index:]
        if index == 0:
            self.last = self._finish(cell, result)

    def _flush(self) -> None:
        if self._runtimes is not None:
            self._runtimes.flush()

    # -- what a cell's run teaches -------------------------------------------------------------
    def _finish(self, cell: _Cell, result: Any) -> CellReport | None:
        count = getattr(result, "execution_count", None)
        failed = bool(getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None))
        seconds = time.perf_counter() - cell.start
        outcome = cell.outcome
        hints = self._runtimes
        if cell.mode == "hinted" and hints is not None and not failed and seconds >= self.settings.min_runtime:
            hints.forget(cell.digest)  # no longer cheap: key it next time
        if cell.mode == "wrapped" and outcome is not None and hints is not None:
            if outcome.status in ("hit", "stored"):
                hints.forget(cell.digest)
            elif outcome.status == "skipped" and outcome.runtime < self.settings.min_runtime:
                hints.remember(cell.digest, outcome.runtime)
        if failed:
            return CellReport(count, "error", seconds)
        if outcome is not None and outcome.status in ("hit", "stored"):
            return CellReport(count, outcome.status, outcome.runtime, outcome.saved)
        if outcome is not None and outcome.status == "skipped":
            return CellReport(count, "ran", outcome.runtime, reason=outcome.reason)
        why = {
            "hinted": f"it ran in under NbCache.min_runtime ({self.settings.min_runtime:g} s) before",
            "never": cell.reason and f"never cached: {cell.reason}",
        }.get(cell.mode or "")
        return CellReport(count, "ran", seconds, reason=why or None)

    def _hints(self) -> Runtimes | None:
        """The runtime hints of the cache in use; None (said once) when there is no cache."""
        try:
            cache = self.open_cache()
        except (NbCacheError, OSError) as exc:
            if not self._unavailable:
                self._unavailable = True
                print(f"nbcache: automatic caching has no cache to use ({exc}); every cell runs without it", file=sys.stderr)
            return None
        self._unavailable = False
        path = _runtimes_path(cache)
        if self._runtimes is None or self._runtimes.path != path:
            self._flush()
            self._runtimes = Runtimes(path)
        return self._runtimes

    # -- tracebacks ----------------------------------------------------------------------------
    def _render_as_run(self, exc: BaseException) -> None:
        """Let ``exc`` show the traceback of its own frames only, as if IPython ran the cell."""
        if isinstance(exc, (SyntaxError, SystemExit)) or hasattr(exc, "_render_traceback_"):
            return  # IPython shows these its own way, or the exception renders itself already
        formatter = getattr(self.shell, "InteractiveTB", None)
        if formatter is None:
            return
        try:
            lines = formatter.structured_traceback(type(exc), exc, exc.__traceback__, tb_offset=0)
            exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - then IPython shows it with our two frames: still right
            return
        self._rendered.append(exc)

    def _forget_rendered(self) -> None:
        for exc in self._rendered:
            try:
                del exc._render_traceback_  # type: ignore[attr-defined]
            except AttributeError:
                pass
        self._rendered.clear()


def _runtimes_path(cache: Cache) -> str | None:
    """Beside the cache's index: in a local cache's folder, else in this machine's folder for the
    remote store's index (None when the index is in memory)."""
    root = getattr(cache.store, "root", None)
    folder = root if isinstance(root, str) else (os.path.dirname(cache.index.path) if cache.index.path else None)
    return os.path.join(folder, RUNTIMES_FILE) if folder is not None else None


def run_pending() -> None:
    """What a cell under automatic mode became: run it through the cache (see :class:`AutoMode`)."""
    __tracebackhide__ = True  # noqa: F841
    from IPython import get_ipython

    shell = get_ipython()
    auto = _active.get(id(shell))
    error = auto.run_pending(sys._getframe(1).f_code.co_filename) if auto is not None else None
    if auto is not None and not auto.on:
        _active.pop(id(shell), None)  # turned off while this cell waited to run
    if error is not None:
        raise error


def report() -> str:
    """The last cell's :class:`CellReport` as JSON (``null`` when automatic mode is off)."""
    from IPython import get_ipython

    auto = _active.get(id(get_ipython()))
    last = auto.last if auto is not None else None
    return json.dumps(asdict(last) if last is not None else None)
