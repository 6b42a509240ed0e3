"""The IPython edge: the ``%%cache`` magic, its configuration, and the host the engine runs on.

Everything here adapts IPython to :mod:`nbcache.run.engine`; no caching logic lives in this module.
"""

from __future__ import annotations

import ast
import contextlib
import html
import os
import re
import sys
from typing import Any, Callable, Iterator, cast

from IPython.core.displayhook import DisplayHook
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Dict, Enum, Unicode, observe

from ..store.cache import DEFAULT_SIZE_LIMIT, Cache
from ..run.capture import Recorder
from ..store.compression import Compression
from ..run.engine import Engine, Outcome, RunOptions
from ..errors import NbCacheError
from ..store.backends import open_store
from ..units import parse_size

__all__ = ["IPythonHost", "NbCache", "load", "unload"]

ENV_DIR = "NBCACHE_DIR"
ENV_SIZE_LIMIT = "NBCACHE_SIZE_LIMIT"
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Names IPython maintains in the user namespace: never inputs, never stored.
_INTERNAL = re.compile(
    r"_|__|___|_i|_ii|_iii|_i\d+|_\d+|_oh|_ih|_dh|In|Out|exit|quit|get_ipython"
    r"|__builtins__|__builtin__|__name__|__doc__|__package__|__loader__|__spec__"
)


@magics_class
class NbCache(Magics):
    """Configuration of nbcache (``%config NbCache.<option> = ...`` or ``ipython_config.py``)."""

    directory = Unicode(
        "",
        help="Where the cache lives. Empty: $NBCACHE_DIR, else .nbcache/ in the kernel's starting directory.",
    ).tag(config=True)
    quiet = Bool(False, help="Do not print the note that says a cell was restored from the cache.").tag(config=True)
    size_limit = Unicode(
        "",
        help="Most the cache may hold, like 20GB or 500MB; least recently used entries are evicted "
        "after each store. Empty: $NBCACHE_SIZE_LIMIT, else 10GB.",
    ).tag(config=True)
    key = Unicode(
        "",
        help="Secret that signs entries (share it within a team). Empty: $NBCACHE_KEY, else a key "
        "created in the Jupyter data directory.",
    ).tag(config=True)
    compression = Enum(
        ["auto", "zstd", "none"], "auto", help="auto: zstd where data compresses, none for incompressible buffers."
    ).tag(config=True)
    storage_options = Dict(
        help="Options for fsspec when the cache is a URL, e.g. {'endpoint_url': 'http://127.0.0.1:9000'}."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self._start_dir = os.getcwd()
        self._cache: Cache | None = None
        self._cache_url: str | None = None
        self.engine = Engine(self._open_cache)

    # -- where the cache is ----------------------------------------------------------------------
    @property
    def cache_url(self) -> str:
        return self.directory or os.environ.get(ENV_DIR) or os.path.join(self._start_dir, ".nbcache")

    def _open_cache(self) -> Cache:
        url = self.cache_url
        if self._cache is None or url != self._cache_url:
            limit_text = self.size_limit or os.environ.get(ENV_SIZE_LIMIT)
            try:
                limit = parse_size(limit_text) if limit_text else DEFAULT_SIZE_LIMIT
                store = open_store(url, self.storage_options or None)
            except ValueError as exc:
                raise NbCacheError(str(exc).removeprefix("nbcache: ")) from exc
            self._cache = Cache(store, key=self.key or None, size_limit=limit, compression=cast(Compression, self.compression))
            self._cache_url = url
        self._cache.ensure_layout()
        return self._cache

    @observe("directory", "size_limit", "key", "compression", "storage_options")
    def _directory_changed(self, change: Any) -> None:
        cache = getattr(self, "_cache", None)  # config applies while __init__ still runs
        if cache is not None:
            cache.close()
        self._cache = None

    # -- the magic -----------------------------------------------------------------------------------
    @magic_arguments()
    @argument("--force", action="store_true", help="Run the cell even if a stored result exists, and store the new one.")
    @argument("--skip", action="store_true", help="Run the cell without the cache: no lookup, nothing stored.")
    @argument("--name", metavar="LABEL", default=None, help="A label for this cell's entries (shown by the CLI and dashboard).")
    @argument("--quiet", action="store_true", help="Do not print the note on a cache hit.")
    @argument("--explain", action="store_true", help="Say why the cell hit or missed: which input, function, module, file or state changed.")
    @argument(
        "--deps",
        nargs="+",
        metavar="PATH",
        default=[],
        help="Files or folders whose content the result depends on (files the cell opens are tracked automatically).",
    )
    @cell_magic
    def cache(self, line: str, cell: str) -> None:
        """Cache a cell: run it once, then restore its variables and outputs instantly.

        The first run executes the cell and stores the variables it assigned, the names it
        deleted and everything it showed (printed text, tables, figures, its Out[] result).
        Later runs with the same code and the same input values restore all of it without
        running the cell, even after a kernel restart. Edit the code, or change a variable
        the cell reads, and it runs again.

        Examples::

            %%cache
            df = load_big_table("data.csv")
            features = extract(df)

            %%cache --name training --quiet
            model = train(features, epochs=20)
            model.score(features)

            %%cache --deps data/ --explain
            table = pd.concat(pd.read_csv(p) for p in sorted(Path("data").glob("*.csv")))

        The key covers the code (not comments or layout), the values of the variables the cell
        reads, the functions and classes it calls (and what they read), the working-tree
        modules it imports, and the versions of the libraries it uses. Files the cell reads,
        folders it lists and environment variables it looks up are recorded and re-checked.
        Changes the cell makes to the global random generators, pandas options, matplotlib
        rcParams, environment variables and the working directory are restored on a hit.

        The cache is in .nbcache/ next to the notebook, or where $NBCACHE_DIR or
        %config NbCache.directory says.
        """
        args = parse_argstring(self.cache, line)
        if not cell.strip():
            raise UsageError("nbcache: the cell under %%cache is empty; write the code to cache below the magic line")
        host = IPythonHost(self.shell, line)
        options = RunOptions(
            force=args.force,
            skip=args.skip,
            quiet=args.quiet or self.quiet,
            label=args.name,
            explain=args.explain,
            deps=tuple(args.deps),
            cell=_cell_id(self.shell),
        )
        try:
            self.engine.run(host, cell, options)
        except BaseException as exc:
            # The cell's own error: show it as IPython would, without nbcache's frames.
            __tracebackhide__ = True  # noqa: F841
            if isinstance(exc, SyntaxError) and exc.filename == host.filename:
                raise exc.with_traceback(None) from None
            raise exc.with_traceback(_user_frames(exc.__traceback__, host.filename))
        # The cell's Out[] value was shown through the display hook by the host (at its place
        # among the outputs), so the magic itself returns nothing.


class IPythonHost:
    """Runs a cell body in an IPython shell the way IPython runs a cell."""

    def __init__(self, shell: Any, magic_line: str = ""):
        self.shell = shell
        self.filename: str | None = None
        self.namespace = shell.user_ns
        self._magic_line = magic_line

    def transform(self, source: str) -> str:
        return str(self.shell.transform_cell(source))

    def is_internal(self, name: str) -> bool:
        return _INTERNAL.fullmatch(name) is not None

    def recorder(self) -> Recorder:
        return Recorder(publisher=self.shell.display_pub)

    def execute(self, source: str, python: str, recorder: Recorder) -> None:
        __tracebackhide__ = True  # noqa: F841 - IPython hides this frame in tracebacks
        shell = self.shell
        # Tracebacks show the body's lines under "Cell In[n]". The magic line becomes a comment,
        # so the text IPython's traceback formatter reads is Python and line numbers match the cell.
        python = f"# %%cache {self._magic_line}".rstrip() + "\n" + python
        raw = f"%%cache {self._magic_line}".rstrip() + "\n" + source
        number = shell.displayhook.prompt_count
        filename = self.filename = shell.compile.cache(python, number, raw_code=raw)
        try:
            tree = ast.parse(python, filename)
        except SyntaxError as exc:
            raise exc.with_traceback(None) from None
        plan = _plan(tree.body, shell.ast_node_interactivity, DisplayHook.semicolon_at_end_of_expression(python))
        original_hook = sys.displayhook
        hook = shell.displayhook

        def displayhook(value: Any) -> Any:
            if value is None:
                return original_hook(value)
            record = recorder.result(value)
            compute = hook.compute_format_data

            def capture(result: Any) -> Any:
                data, metadata = compute(result)
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
        for record in records:
            kind = record["type"]
            if kind == "stream":
                stream = getattr(sys, record["name"])
                stream.write(record["text"])
            elif kind == "display":
                data = _live_widget_views(record["data"])
                if data:
                    publisher.publish(
                        data=data, metadata=record.get("metadata"), transient=record.get("transient"), update=record.get("update", False)
                    )
            elif kind == "clear":
                publisher.clear_output(record.get("wait", False))
            elif kind == "result":
                self._show_result(results[record["index"]], record)
        sys.stdout.flush()
        sys.stderr.flush()

    def _show_result(self, value: Any, record: dict[str, Any]) -> None:
        """``value`` through the display hook (``Out[n]``, ``_``), showing what it showed then."""
        hook = self.shell.displayhook
        if record.get("data") is None:  # entries made before nbcache recorded it
            hook(value)
            return
        shown = (_live_widget_views(record["data"]), record.get("metadata") or {})
        with _formatting(hook, lambda result: shown):
            hook(value)

    def note(self, message: str, outcome: Outcome) -> None:
        self.shell.display_pub.publish(
            data={
                "text/plain": message,
                "text/html": f'<small style="color: var(--jp-ui-font-color2, #888)">{html.escape(message)}</small>',
            },
            metadata={"nbcache": {"status": outcome.status, "key": outcome.key, "saved": outcome.saved}},
        )

    def warn(self, message: str) -> None:
        print(message, file=sys.stderr)


def _user_frames(tb: Any, filename: str | None) -> Any:
    """The traceback from the first frame of the cell's own code on (all of it if none)."""
    node = tb
    while node is not None:
        if node.tb_frame.f_code.co_filename == filename:
            return node
        node = node.tb_next
    return tb


def _plan(nodes: list[ast.stmt], interactivity: str, quiet: bool) -> list[tuple[ast.stmt, str]]:
    """Which statements run as ``exec`` and which as ``single`` (shown), as IPython decides."""
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
    if quiet and plan and plan[-1][1] == "single":
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


def _live_widget_views(data: Any) -> Any:
    """Drop widget views whose model no longer exists (after a restart): keep the text fallback."""
    if not isinstance(data, dict) or _WIDGET_VIEW not in data:
        return data
    model_id = (data[_WIDGET_VIEW] or {}).get("model_id")
    widgets = sys.modules.get("ipywidgets.widgets.widget")
    if widgets is not None and model_id in getattr(widgets, "_instances", {}):
        return data
    return {k: v for k, v in data.items() if k != _WIDGET_VIEW}


@contextlib.contextmanager
def _formatting(hook: Any, compute: Callable[[Any], Any]) -> Iterator[None]:
    """The display hook formats with ``compute`` (format data, metadata) while active."""
    hook.compute_format_data = compute
    try:
        yield
    finally:
        if hook.__dict__.get("compute_format_data") is compute:
            del hook.compute_format_data


def _cell_id(shell: Any) -> str | None:
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent("shell") if kernel is not None else None
    except Exception:  # noqa: BLE001 - older kernels
        parent = None
    cell_id = ((parent or {}).get("metadata") or {}).get("cellId")
    return str(cell_id) if cell_id else None


_loaded: dict[int, NbCache] = {}


def load(shell: Any) -> None:
    if id(shell) in _loaded:
        return
    magics = NbCache(shell=shell)
    shell.register_magics(magics)
    _loaded[id(shell)] = magics
    from . import dashboard as dashboard_magic
    from .comm import attach

    attach(shell, magics)  # the JupyterLab extension's comm target; nothing without a kernel
    dashboard_magic.load(shell, magics)  # %cache_dashboard


def unload(shell: Any) -> None:
    magics = _loaded.pop(id(shell), None)
    if magics is None:
        return
    from . import dashboard as dashboard_magic
    from .comm import detach

    dashboard_magic.unload(shell)
    detach(shell)
    manager = shell.magics_manager
    if manager.magics["cell"].get("cache") == magics.cache:
        del manager.magics["cell"]["cache"]
    manager.registry.pop(type(magics).__name__, None)
    if magics in shell.configurables:
        shell.configurables.remove(magics)
    magics.engine.listeners.clear()
