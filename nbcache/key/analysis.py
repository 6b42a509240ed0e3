"""Static analysis of a cell: which names it reads from the namespace, which it binds or deletes.

The input is Python source after IPython's transformations (``!cmd`` and ``%magic`` lines have
become ``get_ipython()`` calls). The analysis follows the cell's top-level control flow in order,
so a name counts as an *input* only when some path reads it before the cell has bound it::

    x = 1; print(x)            -> reads nothing: x is bound before its use
    if c: y = 1 \n print(y)    -> reads c and y: y may be unbound on the path where c is false
    def f(): return z          -> reads z: a function body reads globals when it is called,
                                  and nbcache cannot know when, so the read counts at the def

Reads inside comprehensions, lambdas, nested functions and class bodies count; Python's own
``symtable`` decides their scoping (``global``, ``nonlocal``, class scopes), so the rules are the
interpreter's rather than a copy of them. The analysis errs on the side of reading too much: an
extra input can only cost a needless miss, a missing one could give a stale hit.

Code the analysis cannot see through (``eval``, ``exec``, ``globals()``, ``locals()``, ``vars()``)
sets :attr:`CellAnalysis.dynamic_reason`; the engine then runs the cell without caching it.
"""

from __future__ import annotations

import ast
import re
import symtable
from dataclasses import dataclass
from typing import Callable, Iterable, cast

from ..errors import AnalysisError
from .paths import fstring_folder

__all__ = ["CellAnalysis", "analyze", "normalized_source"]

# Names whose use means the cell reads the namespace in ways static analysis cannot follow.
_DYNAMIC_CALLS = frozenset({"eval", "exec", "globals", "locals", "vars"})

# Line magics whose argument is Python code that runs in the user's namespace.
_CODE_LINE_MAGICS = frozenset({"time", "timeit", "prun", "debug"})
# Cell magics whose body is Python code that runs in the user's namespace.
_CODE_CELL_MAGICS = frozenset({"time", "timeit", "prun", "capture", "debug", "cache"})

# IPython expands ``$name`` and ``{expr}`` in shell commands and magic arguments.
_DOLLAR_NAME = re.compile(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)")
_BRACED = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")
# Leading options of a line magic (``%timeit -n 3 -r 1 f(x)``).
_MAGIC_OPTIONS = re.compile(r"^(\s*-\w+(\s+(?!-)[^\s-][^\s]*)?)*\s*")


@dataclass(frozen=True)
class CellAnalysis:
    """What a cell reads and writes, as far as its source shows."""

    reads: tuple[str, ...]
    """Names the cell may read from the namespace before binding them, in first-use order."""
    writes: frozenset[str]
    """Names the cell binds at top level (assignments, imports, defs, loop targets...)."""
    deletes: frozenset[str]
    """Names the cell deletes at top level with ``del``."""
    bound: frozenset[str]
    """Names bound on every path through the cell: after it runs, they hold what the cell put there."""
    normalized: str
    """The cell's code with comments and formatting removed: what the key covers."""
    dynamic_reason: str | None = None
    """Why the reads cannot be known statically (``eval`` and friends), or None."""
    imports: frozenset[str] = frozenset()
    """Modules the cell imports anywhere (``import a.b``, ``from c import d``): their code is an input."""
    commands: tuple[str, ...] = ()
    """Shell command lines the cell runs (``!cmd``, ``x = !cmd``), as written."""
    called: frozenset[str] = frozenset()
    """Names of everything the cell calls (``f(...)`` -> ``f``, ``np.random.seed(...)`` -> ``seed``)."""
    attributes: frozenset[tuple[str, str]] = frozenset()
    """``(name, attribute)`` for every ``name.attribute`` in the cell, read or assigned
    (``helpers.SCALE``): what the cell touches of the modules it reads."""
    strings: tuple[str, ...] = ()
    """The cell's string constants and the constant folder of each f-string: what may name the
    files it reads and writes (see :mod:`nbcache.key.paths`)."""


def normalized_source(tree: ast.AST) -> str:
    """The AST without positions: equal for sources that differ only in comments and layout."""
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def analyze(
    source: str,
    *,
    transform: Callable[[str], str] | None = None,
) -> CellAnalysis:
    """Analyse transformed cell source.

    ``transform`` turns IPython source into Python (``shell.transform_cell``); it is used for the
    bodies of cell magics nested in the cell (``%%time`` as the cell's first line).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise AnalysisError(f"cannot parse the cell: {exc.msg} (line {exc.lineno})") from exc
    walker = _FlowWalker(transform)
    bound = walker.block(tree.body, set())
    imports: set[str] = set()
    called: set[str] = set()
    attributes: set[tuple[str, str]] = set()
    strings: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                strings.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            strings.extend(fstring_folder(node))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            attributes.add((node.value.id, node.attr))
        elif isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imports.add(node.module)
            imports.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                called.add(func.id)
            elif isinstance(func, ast.Attribute):
                called.add(func.attr)
    return CellAnalysis(
        reads=tuple(walker.reads),
        writes=frozenset(walker.writes),
        deletes=frozenset(walker.deletes),
        bound=frozenset(bound),
        normalized=normalized_source(tree),
        dynamic_reason=walker.dynamic_reason,
        imports=frozenset(imports),
        commands=tuple(walker.commands),
        called=frozenset(called),
        attributes=frozenset(attributes),
        strings=tuple(strings),
    )


def _nested_global_reads(node: ast.AST) -> set[str]:
    """Names that the nested scopes inside ``node`` look up in the module namespace."""
    wrapped = node if isinstance(node, ast.stmt) else ast.Expr(value=node)  # type: ignore[arg-type]
    module = ast.Module(body=[wrapped], type_ignores=[])
    try:
        table = symtable.symtable(ast.unparse(module), "<cell>", "exec")
    except SyntaxError:
        # Some constructs (``nonlocal`` of an enclosing function) only compile in context.
        # Fall back to every name loaded anywhere below the node: more inputs, never fewer.
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    names: set[str] = set()
    stack = list(table.get_children())
    while stack:
        scope = stack.pop()
        stack.extend(scope.get_children())
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and symbol.is_global():
                names.add(symbol.get_name())
            elif scope.get_type() == "class" and symbol.is_referenced() and symbol.is_local():
                # A class body looks a name up in the class namespace, then in globals: a read
                # before the class binds it reaches the module namespace.
                names.add(symbol.get_name())
    return names


class _FlowWalker:
    """Walks top-level statements in execution order, tracking the names definitely bound."""

    def __init__(self, transform: Callable[[str], str] | None):
        self.transform = transform
        self.reads: dict[str, None] = {}  # ordered set
        self.writes: set[str] = set()
        self.deletes: set[str] = set()
        self.commands: list[str] = []
        self.dynamic_reason: str | None = None

    # -- bookkeeping -------------------------------------------------------------------------
    def read(self, name: str, bound: set[str]) -> None:
        if name not in bound:
            self.reads.setdefault(name, None)

    def read_all(self, names: Iterable[str], bound: set[str]) -> None:
        for name in sorted(names):
            self.read(name, bound)

    def bind(self, name: str, bound: set[str]) -> None:
        bound.add(name)
        self.writes.add(name)

    # -- statements --------------------------------------------------------------------------
    def block(self, stmts: list[ast.stmt], bound: set[str]) -> set[str]:
        for stmt in stmts:
            self.stmt(stmt, bound)
        return bound

    def stmt(self, node: ast.stmt, bound: set[str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for expr in [*node.decorator_list, *_defaults(node.args), *_annotations(node)]:
                self.expr(expr, bound)
            self.read_all(_nested_global_reads(node), bound)
            self.bind(node.name, bound)
        elif isinstance(node, ast.ClassDef):
            for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
                self.expr(expr, bound)
            self.read_all(_nested_global_reads(node), bound)
            self.bind(node.name, bound)
        elif isinstance(node, ast.Assign):
            self.expr(node.value, bound)
            for target in node.targets:
                self.target(target, bound)
        elif isinstance(node, ast.AugAssign):
            self.expr(node.value, bound)
            if isinstance(node.target, ast.Name):
                self.read(node.target.id, bound)
            self.target(node.target, bound)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expr(node.value, bound)
            self.expr(node.annotation, bound)
            if node.value is not None or not isinstance(node.target, ast.Name):
                self.target(node.target, bound)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter, bound)
            inner = set(bound)
            self.target(node.target, inner)
            self.block(node.body, inner)
            # The body may run zero times; the else-branch runs after the loop either way.
            self.block(node.orelse, set(bound))
        elif isinstance(node, ast.While):
            self.expr(node.test, bound)
            self.block(node.body, set(bound))
            self.block(node.orelse, set(bound))
        elif isinstance(node, ast.If):
            self.expr(node.test, bound)
            then = self.block(node.body, set(bound))
            other = self.block(node.orelse, set(bound))
            bound.update(then & other)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr, bound)
                if item.optional_vars is not None:
                    self.target(item.optional_vars, bound)
            self.block(node.body, bound)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            start = set(bound)
            trynode = cast(ast.Try, node)  # TryStar has the same fields
            body = self.block(trynode.body, set(start))
            outcomes = [self.block(trynode.orelse, body)]
            for handler in trynode.handlers:
                inner = set(start)
                if handler.type is not None:
                    self.expr(handler.type, inner)
                if handler.name:
                    self.bind(handler.name, inner)
                outcomes.append(self.block(handler.body, inner))
            after = set.intersection(*outcomes)
            final = self.block(trynode.finalbody, set(start))
            bound.update(after | (final - start))
        elif isinstance(node, ast.Match):
            self.expr(node.subject, bound)
            for case in node.cases:
                inner = set(bound)
                for sub in ast.walk(case.pattern):
                    if isinstance(sub, ast.expr):
                        self.expr(sub, inner)
                    name = getattr(sub, "name", None) or getattr(sub, "rest", None)
                    if isinstance(name, str):
                        self.bind(name, inner)
                if case.guard is not None:
                    self.expr(case.guard, inner)
                self.block(case.body, inner)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                self.bind(alias.asname or alias.name.split(".")[0], bound)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    self.bind(alias.asname or alias.name, bound)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound.discard(target.id)
                    self.deletes.add(target.id)
                else:
                    self.expr(target, bound)
        elif isinstance(node, (ast.Global, ast.Nonlocal, ast.Pass, ast.Break, ast.Continue)):
            pass
        else:  # Expr, Return, Raise, Assert and anything newer: visit every expression in order
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, bound)
                elif isinstance(child, ast.stmt):
                    self.stmt(child, bound)

    def target(self, node: ast.expr, bound: set[str]) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id, bound)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self.target(elt, bound)
        elif isinstance(node, ast.Starred):
            self.target(node.value, bound)
        else:  # obj.attr = ..., obj[key] = ...: the object and the key are read
            self.expr(node, bound)

    # -- expressions -------------------------------------------------------------------------
    def expr(self, node: ast.expr, bound: set[str]) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.read(node.id, bound)
            elif isinstance(node.ctx, ast.Store):
                self.bind(node.id, bound)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, bound)
            self.bind(node.target.id, bound)
        elif isinstance(node, ast.Lambda):
            for expr in _defaults(node.args):
                self.expr(expr, bound)
            self.read_all(_nested_global_reads(node), bound)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            # The first iterable is evaluated in the enclosing scope, the rest in the
            # comprehension's own scope.
            self.expr(node.generators[0].iter, bound)
            self.read_all(_nested_global_reads(node), bound)
            for sub in ast.walk(node):
                if isinstance(sub, ast.NamedExpr):  # := in a comprehension binds in the cell
                    self.writes.add(sub.target.id)
        elif isinstance(node, ast.Call):
            self.call(node, bound)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, bound)
                elif isinstance(child, ast.comprehension):  # pragma: no cover - handled above
                    self.expr(child.iter, bound)
                elif isinstance(child, ast.keyword):
                    self.expr(child.value, bound)

    def call(self, node: ast.Call, bound: set[str]) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in _DYNAMIC_CALLS and func.id not in bound:
            if func.id in ("vars",) and node.args:
                pass  # vars(obj) reads obj only
            elif self.dynamic_reason is None:
                self.dynamic_reason = f"the cell calls {func.id}(), which reads variables nbcache cannot see"
        self.expr(func, bound)
        for arg in node.args:
            self.expr(arg, bound)
        for kw in node.keywords:
            self.expr(kw.value, bound)
        self.ipython_call(node, bound)

    def ipython_call(self, node: ast.Call, bound: set[str]) -> None:
        """Reads hidden in the strings of ``get_ipython().run_line_magic(...)`` and friends."""
        func = node.func
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            if isinstance(func, ast.Attribute) and func.attr in ("user_ns", "user_global_ns"):
                self.dynamic_reason = self.dynamic_reason or "the cell reads the namespace through get_ipython()"
            return
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
        method = func.attr
        if method == "run_line_magic" and len(args) >= 2 and args[0] is not None and args[1] is not None:
            self.expanded_reads(args[1], bound)
            if args[0] in _CODE_LINE_MAGICS:
                self.code_reads(_MAGIC_OPTIONS.sub("", args[1], count=1), bound)
        elif method == "run_cell_magic" and len(args) >= 3 and args[0] is not None:
            if args[1] is not None:
                self.expanded_reads(args[1], bound)
            if args[2] is not None:
                if args[0] in _CODE_CELL_MAGICS:
                    body = self.transform(args[2]) if self.transform else args[2]
                    self.code_reads(body, bound)
                else:
                    self.expanded_reads(args[2], bound)
        elif method in ("system", "getoutput") and args and args[0] is not None:
            self.expanded_reads(args[0], bound)
            self.commands.append(args[0])

    def expanded_reads(self, text: str, bound: set[str]) -> None:
        """Names read by IPython's ``$name`` and ``{expr}`` expansion of a command or argument."""
        for name in _DOLLAR_NAME.findall(text):
            self.read(name, bound)
        for expression in _BRACED.findall(text):
            self.code_reads(expression, bound)

    def code_reads(self, code: str, bound: set[str]) -> None:
        try:
            tree = ast.parse(code.strip())
        except SyntaxError:
            return
        # Code run by a magic sees the namespace as it is: analyse it as its own little cell.
        sub = _FlowWalker(self.transform)
        sub.block(tree.body, set(bound))
        for name in sub.reads:
            self.read(name, bound)
        self.writes.update(sub.writes)
        self.commands.extend(sub.commands)
        self.dynamic_reason = self.dynamic_reason or sub.dynamic_reason


def _defaults(args: ast.arguments) -> list[ast.expr]:
    return [*args.defaults, *(d for d in args.kw_defaults if d is not None)]


def _annotations(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if args.vararg:
        every.append(args.vararg)
    if args.kwarg:
        every.append(args.kwarg)
    found = [a.annotation for a in every if a.annotation is not None]
    if node.returns is not None:
        found.append(node.returns)
    return found
