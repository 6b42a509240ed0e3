"""Runs real public notebooks with every code cell under ``%%cache`` and compares with plain runs.

The notebooks are the example notebooks that scikit-learn and statsmodels publish with their
source releases (BSD-3-Clause): scikit-learn's gallery examples (the scripts its web site offers
as "Download Jupyter notebook", cells split at ``# %%`` the way sphinx-gallery splits them) and
statsmodels' ``examples/notebooks/*.ipynb``. They are not copied into this repository: the
source archives are downloaded from the package registry (pinned by URL and SHA-256) into
``build/public-notebooks/`` the first time the tests run, and read from there.

For each notebook, each run in a fresh kernel:

- ``plain``, ``plain2``: the code cells as published, nbcache not loaded (twice: an output that
  differs between two plain runs is not deterministic, and is not compared);
- ``cold``: every code cell under ``%%cache``, empty cache;
- ``warm``: the same again (a new kernel, the cache ``cold`` filled);
- ``edited_plain``, ``edited_plain2``: the notebook with one edit (``PublicNotebook.edit``), plain;
- ``edited``: the edited notebook under ``%%cache``, on the cache ``cold`` filled.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import re
import tarfile
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import comparable
from scenarios_harness import _execute, status

CACHE = "%%cache\n"


@dataclass(frozen=True)
class Source:
    """A source release on the package registry, pinned by its address and digest."""

    name: str
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


SKLEARN = Source(
    "scikit-learn 1.9.1",
    "https://files.pythonhosted.org/packages/d2/eb/eaf5e07fcc0da7149b0e084f24e54edd7441b9a89ce7e034032ae97fe3a0/scikit_learn-1.9.1.tar.gz",
    "629cada3e33e2b9bf376cdc7614a47a4140b8aedc1d836579e359736fbd82977",
)
STATSMODELS = Source(
    "statsmodels 0.15.0",
    "https://files.pythonhosted.org/packages/a8/1f/a3cbf6ed7cf6286afec694bfef561f3e51483197716717fb8476f1f0c50e/statsmodels-0.15.0.tar.gz",
    "5d257fe58d0772bc46a557880ca78e2a8e07fec7bfd9d11074aef8e33e1aecbc",
)


@dataclass(frozen=True)
class PublicNotebook:
    id: str
    source: Source
    member: str
    """The notebook's path inside the source archive."""
    edit: tuple[str, str]
    """``(old, new)``: ``old`` is replaced by ``new`` in exactly one code cell."""
    warm_misses: tuple[int, ...] = ()
    """Cells allowed to miss after a restart (each with its reason in ``NOTEBOOKS``)."""


NOTEBOOKS = [
    PublicNotebook(
        "statsmodels-ols",
        STATSMODELS,
        "examples/notebooks/ols.ipynb",
        ("sig = 0.5", "sig = 0.8"),  # the noise of the second example; sections after it start afresh
    ),
    PublicNotebook(
        "statsmodels-glm",
        STATSMODELS,
        "examples/notebooks/glm.ipynb",
        ("family=sm.families.Binomial()", "family=sm.families.Binomial(link=sm.families.links.Probit())"),
    ),
    PublicNotebook(
        "sklearn-lasso-lars-ic",
        SKLEARN,
        "examples/linear_model/plot_lasso_lars_ic.py",
        ('LassoLarsIC(criterion="aic")', 'LassoLarsIC(criterion="aic", max_iter=3)'),
    ),
    PublicNotebook(
        "sklearn-scaling-importance",
        SKLEARN,
        "examples/preprocessing/plot_scaling_importance.py",
        ("KNeighborsClassifier(n_neighbors=20)", "KNeighborsClassifier(n_neighbors=5)"),
    ),
    PublicNotebook(
        "sklearn-forest-importances",
        SKLEARN,
        "examples/ensemble/plot_forest_importances.py",
        ("n_repeats=10", "n_repeats=4"),  # the slow cell: permutation importance
    ),
]


_download_lock = threading.Lock()


def download(source: Source, folder: Path) -> Path:
    """The source archive, downloaded once into ``folder`` and checked against its digest."""
    with _download_lock:
        return _download(source, folder)


def _download(source: Source, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / source.filename
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == source.sha256:
        return path
    try:
        with urllib.request.urlopen(source.url, timeout=120) as response:
            data = response.read()
    except OSError as exc:
        raise RuntimeError(f"could not download {source.name} from {source.url}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise RuntimeError(f"{source.url}: SHA-256 {digest}, expected {source.sha256}")
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def read_member(archive: Path, member: str) -> str:
    with tarfile.open(archive) as tar:
        for info in tar:
            if info.name.split("/", 1)[-1] == member:
                f = tar.extractfile(info)
                assert f is not None
                return io.TextIOWrapper(f, encoding="utf-8").read()
    raise FileNotFoundError(f"{member} is not in {archive.name}")


def gallery_cells(text: str) -> list[str]:
    """The code cells of a sphinx-gallery script: the module docstring and the comment block that
    opens each ``# %%`` section are text cells; what follows is code."""
    tree = ast.parse(text)
    lines = text.splitlines()
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines = lines[first.end_lineno or 0 :]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if re.match(r"^# ?%%", line):
            blocks.append([])
        else:
            blocks[-1].append(line)
    cells = []
    for block in blocks:
        while block and (not block[0].strip() or block[0].lstrip().startswith("#")):
            block.pop(0)
        code = "\n".join(block).strip("\n")
        if code.strip():
            cells.append(code)
    return cells


def ipynb_cells(text: str) -> list[str]:
    nb = json.loads(text)
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if source.strip():
                cells.append(source)
    return cells


def code_cells(nb: PublicNotebook, downloads: Path) -> list[str]:
    text = read_member(download(nb.source, downloads), nb.member)
    return ipynb_cells(text) if nb.member.endswith(".ipynb") else gallery_cells(text)


def edited(cells: list[str], edit: tuple[str, str]) -> tuple[list[str], int]:
    old, new = edit
    where = [i for i, c in enumerate(cells) if old in c]
    assert len(where) == 1, f"the edit's text {old!r} is in cells {where}, not in exactly one"
    out = list(cells)
    out[where[0]] = out[where[0]].replace(old, new)
    return out, where[0]


# -- which cells cannot depend on an edit ---------------------------------------------------------
# The test's own, deliberately simple and conservative model of the notebook's data flow (not
# nbcache's analysis, which is what is under test): a cell depends on the edit when it reads a
# tainted name; the edited cell and every dependent cell taint each name they bind and each name
# they may mutate (method receivers, call arguments, targets of item/attribute assignment); a
# cell that does not depend on the edit and binds a name at its top level cleans it. Reading a
# function defined in the notebook reads the globals its body reads. Module names are never
# tainted, so an edit in ``NOTEBOOKS`` must leave module state (random streams, options) alone.
def _top_binds(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name.split(".")[0]) for a in stmt.names}
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
    out = set()
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                out.add(node.id)
    return out


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


@dataclass
class _CellFlow:
    reads: set[str]
    """Names loaded before the cell binds them at its top level."""
    writes: set[str]
    """Names bound anywhere, or possibly mutated."""
    clean: set[str]
    """Names bound by a top-level statement."""
    modules: set[str]
    functions: dict[str, set[str]]
    """Functions defined at the top level: the names their bodies load."""


def _flow(source: str) -> _CellFlow:
    from IPython.core.inputtransformer2 import TransformerManager

    tree = ast.parse(TransformerManager().transform_cell(source))
    flow = _CellFlow(set(), set(), set(), set(), {})
    bound: set[str] = set()
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load) and node.id not in bound:
                    flow.reads.add(node.id)
                else:
                    flow.writes.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                flow.modules |= {(a.asname or a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.Call):
                receiver = _base_name(node.func) if isinstance(node.func, ast.Attribute) else None
                arguments = [_base_name(a) for a in [*node.args, *(k.value for k in node.keywords)]]
                flow.writes |= {n for n in [receiver, *arguments] if n}
            elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
                base = _base_name(node)
                if base:
                    flow.writes.add(base)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                flow.writes.add(node.name)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            flow.functions[stmt.name] = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        binds = _top_binds(stmt)
        bound |= binds
        flow.clean |= binds
    return flow


def independent_of(cells: list[str], index: int) -> set[int]:
    """Cells after ``index`` that do not depend on cell ``index`` (see the comment above)."""
    flows = [_flow(c) for c in cells]
    modules = set().union(*(f.modules for f in flows))
    functions: dict[str, set[str]] = {}
    for f in flows[: index + 1]:
        functions.update(f.functions)

    def reads(f: _CellFlow) -> set[str]:
        out, todo = set(f.reads), list(f.reads)
        while todo:
            for name in functions.get(todo.pop(), ()):
                if name not in out:
                    out.add(name)
                    todo.append(name)
        return out

    tainted = (flows[index].writes | flows[index].clean) - modules
    free = set()
    for j in range(index + 1, len(cells)):
        f = flows[j]
        if reads(f) & tainted:
            tainted |= (f.writes | f.clean) - modules
        else:
            free.add(j)
            tainted -= f.clean
        functions.update(f.functions)
    return free


# -- running ----------------------------------------------------------------------------------------
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::FutureWarning"}


def _setup(cache: Path | None) -> str:
    if cache is None:
        return "pass"
    # Every cell is cached here, and most run faster than a restore: the "does it pay?" rule would
    # drop them after the warm run, and the edited run could not show which cells still hit.
    return f"%load_ext nbcache\n%config NbCache.directory = {str(cache)!r}\n%config NbCache.judge_restores = False"


def run(cells: list[str], folder: Path, cache: Path | None) -> list[Any]:
    """The executed code cells (setup cell left out); ``cache``: every cell under ``%%cache``."""
    folder.mkdir(parents=True, exist_ok=True)
    body = cells if cache is None else [CACHE + c for c in cells]
    nb = _execute([_setup(cache), *body], folder, KERNEL_ENV, timeout=300)
    setup = nb.cells[0]
    assert not [o for o in setup.outputs if o.get("output_type") == "error"], setup.outputs
    return list(nb.cells[1:])


@dataclass
class Runs:
    notebook: PublicNotebook
    cells: list[str]
    cells_edited: list[str]
    edit_index: int
    runs: dict[str, list[Any]] = field(default_factory=dict)


def run_notebook_variants(nb: PublicNotebook, downloads: Path, root: Path) -> Runs:
    cells = code_cells(nb, downloads)
    cells_edited, index = edited(cells, nb.edit)
    out = Runs(nb, cells, cells_edited, index)
    cache = root / "cache"
    work = root / "work"

    def plains() -> None:
        for name, c in (("plain", cells), ("plain2", cells), ("edited_plain", cells_edited), ("edited_plain2", cells_edited)):
            out.runs[name] = run(c, work / name, None)

    def cached() -> None:
        for name, c in (("cold", cells), ("warm", cells), ("edited", cells_edited)):
            out.runs[name] = run(c, work / name, cache)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(plains), pool.submit(cached)]:
            f.result()
    return out


# -- reading the runs --------------------------------------------------------------------------------
# What differs from run to run whatever the cache does (the way nbval sanitizes): durations,
# which two plain runs may print alike by chance, and memory addresses.
_VOLATILE = [(re.compile(r"\b\d+(\.\d+)?\s*(seconds|sec|s|ms|µs)\b"), "<duration>"), (re.compile(r" at 0x[0-9a-f]+"), " at <address>")]


def _sanitize(text: Any) -> Any:
    if isinstance(text, list):
        text = "".join(text)
    if not isinstance(text, str):
        return text
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def outputs(cell: Any) -> list[dict[str, Any]]:
    """What the user sees of a cell, nbcache's own notes left out, durations sanitized."""
    shown = comparable(cell.outputs)
    for out in shown:
        out.pop("transient", None)
        if "text" in out:
            out["text"] = _sanitize(out["text"])
        if "data" in out:
            out["data"] = {k: _sanitize(v) if k.startswith("text/") else v for k, v in out["data"].items()}
    return shown


def errored(cell: Any) -> bool:
    return any(o.get("output_type") == "error" for o in cell.outputs)


def deterministic(a: list[Any], b: list[Any]) -> list[int]:
    return [i for i, (x, y) in enumerate(zip(a, b)) if outputs(x) == outputs(y)]


def statuses(cells: list[Any]) -> list[str]:
    return [status(c) for c in cells]
