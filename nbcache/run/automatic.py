"""Automatic mode's rules: which cells it never caches, and which runs it does not store.

Under ``%cache_all`` every code cell goes through the engine as under ``%%cache``, except cells
whose effect a hit could not reproduce or that are not worth it. Two checks, both plain Python:

- :func:`never_cached` reads the cell's code (after IPython's transformations) before anything
  runs. Cells that install packages or load extensions (``%pip``, ``%conda``, ``%load_ext``), run
  other files (``%run``), talk to IPython's machinery (other line magics, ``get_ipython()``), run
  shell commands (``!cmd``) or other languages (``%%bash``-style cell magics), await at top level,
  ask for input (``input()``, ``getpass()``), or wire interactive widgets (``interact``,
  ``.observe``, ``.on_click``...) run as they would without nbcache, and nothing is said.
- :class:`Admission` looks at a run that missed, after it ran: a run shorter than
  ``min_runtime`` is cheaper to run again than to store and restore, and a run that started a
  process or wrote files would not do so again on a hit. Such runs are not stored.

Both err on the side of not caching: a cell run needlessly is only slow.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Callable

from ..units import format_duration
from .record import Observed

__all__ = ["Admission", "never_cached", "own_cell_magic"]

# Line magics whose whole effect is in what nbcache captures: code run in the namespace, the
# environment, the working directory. Every other line magic changes IPython itself (%matplotlib,
# %config, %load_ext, %autoreload), installs something (%pip, %conda) or runs other files (%run).
_CACHED_LINE_MAGICS = frozenset({"time", "env", "cd", "pwd"})
# Cell magics whose body is Python run in the namespace; ``cache`` and ``nocache`` are ours and
# decide for themselves.
_CACHED_CELL_MAGICS = frozenset({"time", "capture"})
_OURS = frozenset({"cache", "nocache"})
_WHY_LINE_MAGIC = {
    "pip": "it installs packages (%pip)",
    "conda": "it installs packages (%conda)",
    "mamba": "it installs packages (%mamba)",
    "micromamba": "it installs packages (%micromamba)",
    "uv": "it installs packages (%uv)",
    "load_ext": "it loads an extension (%load_ext)",
    "reload_ext": "it loads an extension (%reload_ext)",
    "unload_ext": "it unloads an extension (%unload_ext)",
    "run": "it runs another file (%run)",
}
_PROMPTS = frozenset({"input", "raw_input", "getpass"})
# Programs libraries run to learn about the machine, which change nothing: joblib counts cores
# with lscpu, ctypes.util.find_library asks ldconfig, torch and others ask nvidia-smi.
_PROBES = frozenset({"lscpu", "nproc", "getconf", "uname", "sysctl", "ldconfig", "nvidia-smi", "hostname", "which", "whoami", "id"})
# ipywidgets' interactive API and the callbacks that make a widget do something when used.
_WIDGET_CALLS = frozenset(
    {
        "interact",
        "interactive",
        "interact_manual",
        "interactive_output",
        "observe",
        "on_click",
        "on_submit",
        "on_msg",
        "on_trait_change",
        "on_displayed",
        "link",
        "dlink",
        "jslink",
        "jsdlink",
    }
)


def never_cached(tree: ast.Module, transform: Callable[[str], str] | None = None, source: str | None = None) -> str | None:
    """Why automatic mode runs this cell as it is (None: it goes through the cache).

    ``tree`` is the cell after IPython's transformations; ``transform`` turns the body of a cell
    magic (``%%time``) into Python the same way, so that what it runs is checked too. ``source``,
    the text ``tree`` was parsed from, lets a cell with no ``await`` or ``async`` in it skip that
    search."""
    if source is None or "await" in source or "async" in source:
        for statement in tree.body:
            reason = _top_level_await(statement)
            if reason:
                return reason
    nodes = list(ast.walk(tree))
    # The get_ipython() calls IPython wrote for %magics; any other use of the shell is the cell's own.
    magics = {
        id(n.value) for n in nodes if isinstance(n, ast.Attribute) and n.attr in ("run_line_magic", "run_cell_magic") and _is_get_ipython(n.value)
    }
    for node in nodes:
        if isinstance(node, ast.Call):
            reason = _call(node) or _nested(node, transform)
            if reason is None and _is_get_ipython(node) and id(node) not in magics:
                reason = "it talks to IPython directly (get_ipython())"
        elif isinstance(node, ast.Attribute) and _is_get_ipython(node.value):
            reason = _ipython_attribute(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            reason = next(filter(None, map(_decorator, node.decorator_list)), None)
        else:
            reason = None
        if reason:
            return reason
    return None


def _nested(node: ast.Call, transform: Callable[[str], str] | None) -> str | None:
    """The rules applied to the code ``%time CODE`` and ``%%time``/``%%capture`` run."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and _is_get_ipython(func.value)):
        return None
    texts = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
    if func.attr == "run_line_magic" and len(texts) >= 2 and texts[0] in _CACHED_LINE_MAGICS:
        code = texts[1]
    elif func.attr == "run_cell_magic" and len(texts) >= 3 and texts[0] in _CACHED_CELL_MAGICS:
        code = texts[2]
        if code is not None and transform is not None:
            code = transform(code)
    else:
        return None
    try:
        inner = ast.parse(code or "")
    except SyntaxError:
        return None  # IPython reports it when the magic runs
    return never_cached(inner, transform)


def _top_level_await(node: ast.AST) -> str | None:
    if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
        return "it awaits at top level"
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        return None  # an await in there belongs to that function
    for child in ast.iter_child_nodes(node):
        found = _top_level_await(child)
        if found:
            return found
    return None


def _call(node: ast.Call) -> str | None:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name in _PROMPTS:
        return f"it asks for input ({name}())"
    if name in _WIDGET_CALLS:
        return f"it sets up interactive widgets ({name})"
    if isinstance(func, ast.Attribute) and _is_get_ipython(func.value) and func.attr in ("run_line_magic", "run_cell_magic"):
        return _magic(func.attr, node.args)
    return None


def _magic(method: str, args: list[ast.expr]) -> str | None:
    """``%name`` and ``%%name`` as IPython transformed them: ``get_ipython().run_line_magic(name, ...)``."""
    name = args[0].value if args and isinstance(args[0], ast.Constant) else None
    if not isinstance(name, str):
        return "it talks to IPython directly (get_ipython())"
    if method == "run_line_magic":
        return None if name in _CACHED_LINE_MAGICS else _WHY_LINE_MAGIC.get(name, f"%{name} acts on IPython itself")
    return None if name in _CACHED_CELL_MAGICS or name in _OURS else f"%%{name} is a cell magic"


def _ipython_attribute(attr: str) -> str | None:
    if attr in ("run_line_magic", "run_cell_magic"):
        return None  # the call is checked with its arguments
    if attr in ("system", "getoutput"):
        return "it runs a shell command"
    return "it talks to IPython directly (get_ipython())"


def _decorator(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else None
    return f"it sets up interactive widgets (@{name})" if name in _WIDGET_CALLS else None


def _is_get_ipython(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_ipython"


def own_cell_magic(tree: ast.Module) -> bool:
    """Whether the cell is ``%%cache`` or ``%%nocache``: the magic itself decides."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return False
    call = tree.body[0].value
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "run_cell_magic"
        and _is_get_ipython(call.func.value)
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and call.args[0].value in _OURS
    )


@dataclass(frozen=True)
class Admission:
    """Whether a run that missed is stored (the engine's ``RunOptions.admit``)."""

    min_runtime: float
    """Seconds; a shorter run is not stored (0 stores every run)."""

    def __call__(self, observed: Observed) -> str | None:
        if observed.runtime < self.min_runtime:
            return f"it ran in {format_duration(observed.runtime)}, less than NbCache.min_runtime ({self.min_runtime:g} s)"
        watch = observed.watch
        others = [p for p in watch.programs if p not in _PROBES]
        if watch.spawned and (others or not watch.programs):
            # What another process does (files it writes, a server it calls) is invisible here.
            return f"it started a process ({others[0] if others else 'a program'}), whose effects a hit would not repeat"
        return None
