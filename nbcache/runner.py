"""``nbcache run NOTEBOOK.ipynb``: Restart & Run All in a fresh kernel, with automatic caching on.

The notebook runs top to bottom through nbclient in a new kernel started in the notebook's folder
(as Jupyter starts it), with ``$NBCACHE_DIR`` from ``--dir`` and ``$NBCACHE_KEY`` from the
command's ``--key KEYFILE``. Before the first cell, a silent
request loads nbcache, turns automatic mode on and makes hits quiet, so that a replayed cell
shows exactly what it showed when it ran (a silent request takes no execution count and leaves
nothing in the namespace). After each cell, another silent request reads automatic mode's report
of it (:func:`nbcache.jupyter.auto.report`). The executed notebook is written (in place by
default, or ``-o OUT``), then one line per slow cell and the totals are printed.

The second run of an unchanged notebook on the same cache replays its slow cells, and writes the
same outputs (cell ids, execution counts and timing metadata aside): a docs build or CI job that
keeps the cache folder between runs re-executes only what changed.

Exit codes: 0 done, 1 a cell raised (unless ``--allow-errors``) or the kernel failed, 2 a usage
error.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .atomic import replaced
from .store.signing import ENV_KEY
from .units import format_duration

__all__ = ["CellLine", "Summary", "add_parser", "main"]

_REPORT = "__import__('nbcache.jupyter.auto', fromlist=['report']).report()"
DEFAULT_MIN_RUNTIME = 0.25


def add_parser(sub: Any) -> None:
    """Register ``run`` on the ``nbcache`` command's subparsers."""
    run = sub.add_parser(
        "run",
        help="execute a notebook in a fresh kernel with automatic caching",
        description="Execute NOTEBOOK top to bottom in a fresh kernel with every cell cached automatically "
        "(%cache_all); a second run replays the slow cells.",
    )
    run.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file to execute")
    where = run.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT", help="write the executed notebook here (default: in place)")
    where.add_argument("--inplace", action="store_true", help="write the executed notebook over NOTEBOOK (the default)")
    run.add_argument("--allow-errors", action="store_true", help="carry on after a cell raises, and exit 0")
    run.add_argument("--kernel", metavar="NAME", help="the kernel to use (default: the notebook's, else python3)")
    run.add_argument("--timeout", metavar="S", type=float, help="seconds a cell may run (default: no limit)")
    run.add_argument("--dir", dest="run_dir", metavar="CACHE", help="the cache (default: $NBCACHE_DIR, else .nbcache next to the notebook)")
    run.add_argument(
        "--min-runtime",
        metavar="S",
        type=float,
        default=None,
        help=f"store only cells that take at least S seconds (default: NbCache.min_runtime, {DEFAULT_MIN_RUNTIME:g})",
    )
    run.set_defaults(main=main)


@dataclass
class CellLine:
    """One executed code cell, as the summary tells it."""

    index: int
    first_line: str
    status: str
    """``hit``, ``stored``, ``ran`` or ``error``."""
    seconds: float
    saved: float = 0.0
    reason: str | None = None


@dataclass
class Summary:
    cells: list[CellLine] = field(default_factory=list)

    def slow(self, threshold: float) -> list[CellLine]:
        return [c for c in self.cells if c.seconds + c.saved >= threshold]

    def lines(self, threshold: float) -> list[str]:
        out = []
        for c in self.slow(threshold):
            gain = "" if c.status != "hit" else f"  saved {format_duration(c.saved)}" if c.saved >= 0.001 else "  saved nothing"
            why = f"  ({c.reason})" if c.status == "ran" and c.reason else ""
            out.append(f"  cell {c.index:>3}  {c.status:<6}  {format_duration(c.seconds):>8}{gain}  {c.first_line[:60]}{why}")
        counts = {s: sum(1 for c in self.cells if c.status == s) for s in ("hit", "stored", "ran", "error")}
        total = sum(c.seconds for c in self.cells)
        saved = sum(c.saved for c in self.cells if c.status == "hit")
        out.append(
            f"{len(self.cells)} cells: {counts['hit']} replayed, {counts['stored']} stored, {counts['ran']} ran"
            + (f", {counts['error']} raised" if counts["error"] else "")
            + f"; cells took {format_duration(total)}"
            + (f", saved {format_duration(saved)}" if saved else "")
        )
        return out


class _Progress:
    """A progress bar on stderr: redrawn in place for a person, a line every tenth otherwise."""

    def __init__(self, total: int):
        self.total = max(total, 1)
        self.done = 0
        self.tty = sys.stderr.isatty()
        self._shown = -1

    def step(self, label: str) -> None:
        width = 30
        filled = width * self.done // self.total
        bar = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
        if self.tty:
            sys.stderr.write(f"\r{bar} {label[:40]:<40}")
        elif self.done * 10 // self.total != self._shown or self.done == self.total:
            self._shown = self.done * 10 // self.total
            sys.stderr.write(f"{bar}\n")
        sys.stderr.flush()
        self.done += 1

    def finish(self) -> None:
        self.done = self.total
        self.step("done")
        if self.tty:
            sys.stderr.write("\n")


def _setup_code(min_runtime: float | None) -> str:
    lines = [
        'get_ipython().run_line_magic("load_ext", "nbcache")',
        'get_ipython().run_line_magic("config", "NbCache.quiet = True")',
    ]
    if min_runtime is not None:
        lines.append(f'get_ipython().run_line_magic("config", "NbCache.min_runtime = {min_runtime!r}")')
    lines.append('get_ipython().run_line_magic("cache_all", "on")')
    return "\n".join(lines)


def _first_line(source: str) -> str:
    return next((line.strip() for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")


def _elapsed(cell: Any) -> float:
    """Seconds nbclient's timing metadata gives the cell (where automatic mode said nothing)."""
    from datetime import datetime

    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError, AttributeError):
        return 0.0
    return max(0.0, (end - start).total_seconds())


class _Run:
    """The nbclient hooks of one run: setup before the first cell, a report after each."""

    def __init__(self, client: Any, setup: str, progress: _Progress):
        self.client = client
        self.setup = setup
        self.progress = progress
        self.summary = Summary()
        self.setup_error: str | None = None

    async def _silent(self, code: str, expressions: dict[str, str] | None = None) -> dict[str, Any]:
        kc = self.client.kc
        msg_id = kc.execute(code, silent=True, store_history=False, user_expressions=expressions or {})
        reply = await self.client.async_wait_for_reply(msg_id)
        return (reply or {}).get("content", {})

    async def on_notebook_start(self, notebook: Any) -> None:
        content = await self._silent(self.setup)
        if content.get("status") != "ok":
            self.setup_error = f"{content.get('ename', 'error')}: {content.get('evalue', '')}"

    async def on_cell_start(self, cell: Any, cell_index: int) -> None:
        if cell.cell_type == "code" and cell.source.strip():
            self.progress.step(f"cell {cell_index}: {_first_line(cell.source)}")

    async def on_cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        content = await self._silent("", {"nbcache": _REPORT})
        data = (content.get("user_expressions") or {}).get("nbcache", {})
        report: dict[str, Any] | None = None
        try:
            report = json.loads(ast.literal_eval(data["data"]["text/plain"]))
        except (KeyError, ValueError, SyntaxError, TypeError):
            report = None
        failed = (execute_reply or {}).get("content", {}).get("status") == "error"
        if report is None or report.get("execution_count") != cell.get("execution_count"):
            report = {"status": "error" if failed else "ran", "seconds": _elapsed(cell)}
        self.summary.cells.append(
            CellLine(
                cell_index,
                _first_line(cell.source),
                "error" if failed else str(report.get("status")),
                float(report.get("seconds") or 0.0),
                float(report.get("saved") or 0.0),
                report.get("reason"),
            )
        )


def main(args: argparse.Namespace) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = os.path.abspath(args.notebook)
    out = os.path.abspath(args.output) if args.output else path
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        print(f"nbcache: no notebook at {args.notebook}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - not JSON, not a notebook
        print(f"nbcache: {args.notebook} is not a notebook ({exc})", file=sys.stderr)
        return 2
    env = dict(os.environ)
    cache = args.run_dir or getattr(args, "dir", None)
    if cache:
        env["NBCACHE_DIR"] = cache if "://" in cache else os.path.abspath(cache)
    secret = getattr(args, "key_secret", None)  # `nbcache --key KEYFILE run ...`
    if secret:
        try:
            env[ENV_KEY] = secret.decode()
        except UnicodeDecodeError:
            print(f"nbcache: the key file {args.key_file} is not text; a kernel reads its key from ${ENV_KEY}", file=sys.stderr)
            return 2
    code_cells = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip())
    progress = _Progress(code_cells)
    client = NotebookClient(
        nb,
        timeout=args.timeout if args.timeout else None,
        kernel_name=args.kernel or "",
        allow_errors=args.allow_errors,
        resources={"metadata": {"path": os.path.dirname(path)}},
    )
    run = _Run(client, _setup_code(args.min_runtime), progress)
    client.on_notebook_start = run.on_notebook_start
    client.on_cell_start = run.on_cell_start
    client.on_cell_executed = run.on_cell_executed
    start = time.perf_counter()
    status, failure = 0, None
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        status, failure = 1, f"a cell raised: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}"
    except (CellTimeoutError, DeadKernelError) as exc:
        status, failure = 1, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - no such kernel, cannot start one...
        print(f"nbcache: could not run {args.notebook}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    progress.finish()
    _write(nb, out)
    threshold = args.min_runtime if args.min_runtime is not None else DEFAULT_MIN_RUNTIME
    print(f"nbcache run: {args.notebook} -> {args.output or args.notebook} in {format_duration(time.perf_counter() - start)}")
    if run.setup_error:
        print(f"nbcache: automatic caching could not be set up in this kernel ({run.setup_error}); the notebook ran without it", file=sys.stderr)
    for line in run.summary.lines(threshold):
        print(line)
    if failure:
        print(f"nbcache: {failure} (--allow-errors carries on)", file=sys.stderr)
    return status


def _write(nb: Any, path: str) -> None:
    """Write atomically: a run that fails while writing leaves the old notebook."""
    import nbformat

    with replaced(path, prefix=".nbcache-run-") as fh:
        nbformat.write(nb, fh)
