"""The host the engine runs cells on, over an IPython shell: how IPython runs a cell body
(compile, the display hook, ``Out[n]``, tracebacks), how outputs are replayed, where notes go.

Everything here adapts IPython to :class:`nbcache.run.host.Host`; no caching logic lives here.
"""

from __future__ import annotations

import ast
import contextlib
import html
import re
import sys
from typing import Any, Callable, Iterator, cast

from IPython.core.displayhook import DisplayHook

from ..run import widgets
from ..run.capture import Recorder
from ..run.engine import Outcome

__all__ = ["CellSyntaxErrors", "IPythonHost", "cell_id", "mark_cell_syntax_error", "user_frames"]

# Names IPython maintains in the user namespace: never inputs, never stored.
_INTERNAL = re.compile(
    r"_|__|___|_i|_ii|_iii|_i\d+|_\d+|_oh|_ih|_dh|In|Out|exit|quit|get_ipython"
    r"|__builtins__|__builtin__|__name__|__doc__|__package__|__loader__|__spec__"
)


class IPythonHost:
    """Runs a cell body in an IPython shell the way IPython runs a cell."""

    def __init__(
        self,
        shell: Any,
        magic_line: str = "",
        *,
        magic: str | None = "cache",
        transformed: tuple[str, str] | None = None,
        note_below: float = 0.0,
        cell_file: str | None = None,
    ):
        """``magic`` is the cell magic the body ran under (None: the cell is the body, as in
        automatic mode); ``transformed`` is ``(source, python)`` when IPython already turned the
        cell into Python; a hit of a cell that had run for less than ``note_below`` seconds shows
        no note. ``cell_file`` is the name IPython compiled ``transformed`` under, when it did
        (automatic mode: the cell that calls run_pending), so that tracebacks show its lines."""
        self.shell = shell
        self._note_below = note_below
        self.filename: str | None = None
        self.namespace = shell.user_ns
        self._header = None if magic is None else f"%%{magic} {magic_line}".rstrip()
        self._transformed = transformed
        self._cell_file = cell_file

    def transform(self, source: str) -> str:
        if self._transformed is not None and source == self._transformed[0]:
            return self._transformed[1]
        return str(self.shell.transform_cell(source))

    def is_internal(self, name: str) -> bool:
        return _INTERNAL.fullmatch(name) is not None

    def recorder(self) -> Recorder:
        return Recorder(publisher=self.shell.display_pub, widgets=widgets.WidgetTracker())

    def execute(self, source: str, python: str, recorder: Recorder) -> None:
        __tracebackhide__ = True  # noqa: F841 - IPython hides this frame in tracebacks
        shell = self.shell
        # Tracebacks show the body's lines under "Cell In[n]". The magic line becomes a comment,
        # so the text IPython's traceback formatter reads is Python and line numbers match the cell.
        raw = source
        if self._header is not None:
            python = f"# {self._header}\n{python}"
            raw = f"{self._header}\n{source}"
        if self._header is None and self._cell_file is not None:
            filename = self.filename = self._cell_file  # IPython cached this very text under it
        else:
            number = shell.displayhook.prompt_count
            filename = self.filename = shell.compile.cache(python, number, raw_code=raw)
        try:
            # IPython's own parse (its compiler flags): the same message as without %%cache
            tree = shell.compile.ast_parse(python, filename)
        except SyntaxError as exc:
            raise exc.with_traceback(None) from None
        plan = _plan(tree.body, shell.ast_node_interactivity, lambda: DisplayHook.semicolon_at_end_of_expression(python))
        original_hook = sys.displayhook
        hook = shell.displayhook

        def displayhook(value: Any) -> Any:
            if value is None:
                return original_hook(value)
            record = recorder.result(value)
            compute = hook.compute_format_data

            def capture(result: Any) -> Any:
                # What formatting shows is recorded: an object with _ipython_display_ (a plotly
                # figure) displays itself from here and leaves the result's own data empty.
                recorder.paused = False
                try:
                    data, metadata = compute(result)
                finally:
                    recorder.paused = True
                record["data"], record["metadata"] = data, metadata
                return data, metadata

            recorder.paused = True
            try:
                with _formatting(hook, capture):
                    return original_hook(value)
            finally:
                recorder.paused = False

        sys.displayhook = displayhook
        try:
            for node, mode in plan:
                module = ast.Interactive(body=[node]) if mode == "single" else ast.Module(body=[node], type_ignores=[])
                code = shell.compile(module, filename, mode)
                exec(code, shell.user_global_ns, shell.user_ns)
        finally:
            if sys.displayhook is displayhook:
                sys.displayhook = original_hook
            _flush_inline_figures()

    def replay(self, records: list[dict[str, Any]], results: list[Any]) -> None:
        publisher = self.shell.display_pub
        state = next((r for r in records if r["type"] == "widgets"), None)
        try:
            revived = widgets.revive(state["state"]) if state is not None else {}
        except Exception:  # noqa: BLE001 - no live widgets: their text forms are shown
            revived = {}
        # Records are the kernel's sends, in order. A stream's text is flushed (sent) before
        # anything else is sent: another stream's text, a display, the end of an Output widget's
        # capture, the end of the replay. Consecutive records of one stream need no flush between
        # them (the frontend shows one text either way), and a flush waits for the kernel's I/O
        # thread. The last stream's text is left for the kernel, which flushes both streams when
        # the cell ends (or for :meth:`note`, which flushes before it shows anything): a quick hit
        # that prints pays for no flush.
        pending: Any = None
        try:
            for record in records:
                stream = getattr(sys, record["name"]) if record["type"] == "stream" else None
                if pending is not None and stream is not pending:
                    pending.flush()
                    pending = None
                into = revived.get(record.get("into", ""))
                with into if into is not None else contextlib.nullcontext():  # inside an Output widget
                    self._replay_one(publisher, record, results, revived, state)
                    if stream is not None and into is not None:
                        stream.flush()  # before the Output widget stops capturing
                    elif stream is not None:
                        pending = stream
        finally:
            widgets.forget_revived()

    def _replay_one(self, publisher: Any, record: dict[str, Any], results: list[Any], revived: dict[str, Any], state: Any) -> None:
        kind = record["type"]
        if kind == "stream":
            getattr(sys, record["name"]).write(record["text"])
        elif kind == "display":
            data = widgets.view_data(record["data"], revived, state)
            if data:
                publisher.publish(
                    data=data, metadata=record.get("metadata"), transient=record.get("transient"), update=record.get("update", False)
                )
        elif kind == "clear":
            publisher.clear_output(record.get("wait", False))
        elif kind == "result":
            self._show_result(results[record["index"]], record, revived, state)

    def _show_result(self, value: Any, record: dict[str, Any], revived: dict[str, Any], state: Any) -> None:
        """``value`` through the display hook (``Out[n]``, ``_``), showing what it showed then."""
        hook = self.shell.displayhook
        if record.get("data") is None:  # entries made before nbcache recorded it
            hook(value)
            return
        shown = (widgets.view_data(record["data"], revived, state) or {}, record.get("metadata") or {})
        with _formatting(hook, lambda result: shown):
            hook(value)

    def note(self, message: str, outcome: Outcome) -> None:
        if outcome.status == "hit" and outcome.original_runtime < self._note_below:
            return
        sys.stdout.flush()  # the replayed text goes first (see replay)
        sys.stderr.flush()
        self.shell.display_pub.publish(
            data={
                "text/plain": message,
                "text/html": f'<small style="color: var(--jp-ui-font-color2, #888)">{html.escape(message)}</small>',
            },
            metadata={"nbcache": {"status": outcome.status, "key": outcome.key, "saved": outcome.saved}},
        )

    def warn(self, message: str) -> None:
        print(message, file=sys.stderr)


class _CellCode(Exception):
    """Marks a syntax error in a ``%%cache`` cell's own code (see :class:`CellSyntaxErrors`)."""


_MARKED: dict[type, type] = {}


def mark_cell_syntax_error(exc: SyntaxError) -> SyntaxError:
    """The same error, of a subclass of its type with the same name that IPython shows as it
    shows a syntax error in a cell: no frames, the line and its caret. (Raised from within the
    magic it would otherwise show the frames of ``run_cell_magic``.)"""
    base = type(exc)
    marked = _MARKED.get(base)
    if marked is None:
        marked = _MARKED[base] = type(base.__name__, (_CellCode, base), {"__module__": base.__module__})
    copy = marked(exc.msg, (exc.filename, exc.lineno, exc.offset, exc.text, exc.end_lineno, exc.end_offset))
    return cast(SyntaxError, copy)


class CellSyntaxErrors:
    """Installs (and removes) the shell's handler for marked syntax errors, through IPython's
    ``set_custom_exc``; exceptions someone else handles that way keep their handler."""

    def __init__(self, shell: Any):
        self.shell = shell
        self._previous: tuple[tuple[type, ...], Any] = (tuple(shell.custom_exceptions), shell.CustomTB)
        previous_types, previous_handler = self._previous

        def handler(sh: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> Any:
            if isinstance(value, _CellCode):
                if isinstance(value, IndentationError):
                    sh.showindentationerror()
                else:
                    sh.showsyntaxerror()
                return None
            return previous_handler(etype, value, tb, tb_offset=tb_offset)

        shell.set_custom_exc((_CellCode, *previous_types), handler)
        self._installed = shell.CustomTB

    def remove(self) -> None:
        if self.shell.CustomTB == self._installed:
            self.shell.custom_exceptions, self.shell.CustomTB = self._previous


def user_frames(tb: Any, filename: str | None) -> Any:
    """The traceback from the first frame of the cell's own code on (all of it if none)."""
    node = tb
    while node is not None:
        if node.tb_frame.f_code.co_filename == filename:
            return node
        node = node.tb_next
    return tb


def _plan(nodes: list[ast.stmt], interactivity: str, quiet: Callable[[], bool]) -> list[tuple[ast.stmt, str]]:
    """Which statements run as ``exec`` and which as ``single`` (shown), as IPython decides;
    ``quiet()`` tells whether the cell ends with ``;`` (asked only when a result would show)."""
    if not nodes:
        return []
    if interactivity == "last_expr_or_assign":
        last = nodes[-1]
        target = None
        if isinstance(last, ast.Assign) and len(last.targets) == 1:
            target = last.targets[0]
        elif isinstance(last, (ast.AnnAssign, ast.AugAssign)):
            target = last.target
        if isinstance(target, ast.Name):
            show = ast.Expr(ast.Name(id=target.id, ctx=ast.Load()))
            ast.copy_location(show, last)
            ast.fix_missing_locations(show)
            nodes = [*nodes, show]
        interactivity = "last_expr"
    if interactivity == "all":
        plan = [(n, "single") for n in nodes]
    elif interactivity == "last" or (interactivity == "last_expr" and isinstance(nodes[-1], ast.Expr)):
        plan = [(n, "exec") for n in nodes[:-1]] + [(nodes[-1], "single")]
    else:
        plan = [(n, "exec") for n in nodes]
    if plan and plan[-1][1] == "single" and quiet():
        plan[-1] = (plan[-1][0], "exec")  # a trailing ';' silences the result, as in IPython
    return plan


def _flush_inline_figures() -> None:
    """Show figures the cell drew now, inside the recording, rather than after the cell."""
    backend = sys.modules.get("matplotlib_inline.backend_inline")
    if backend is None or "matplotlib.pyplot" not in sys.modules:
        return
    import matplotlib

    if "inline" in str(matplotlib.get_backend()):
        backend.flush_figures()


@contextlib.contextmanager
def _formatting(hook: Any, compute: Callable[[Any], Any]) -> Iterator[None]:
    """The display hook formats with ``compute`` (format data, metadata) while active."""
    hook.compute_format_data = compute
    try:
        yield
    finally:
        if hook.__dict__.get("compute_format_data") is compute:
            del hook.compute_format_data


def cell_id(shell: Any) -> str | None:
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent("shell") if kernel is not None else None
    except Exception:  # noqa: BLE001 - older kernels
        parent = None
    cell_id = ((parent or {}).get("metadata") or {}).get("cellId")
    return str(cell_id) if cell_id else None
