"""The engine's vocabulary: the notebook it runs on, the options of one run, what came of it.

A :class:`Host` is everything the engine needs from a notebook: its namespace, a way to run a
cell and to show outputs again, and two channels to the user (a quiet note, a one-line warning).
:mod:`nbcache.jupyter.host` implements one over IPython; a plain dict and ``exec`` make another,
which is how the engine is tested directly. :class:`RunOptions` are the per-cell flags of
``%%cache``, a :class:`Cell` is one cell once analysed and keyed, and an :class:`Outcome` is what
one run ended as, for the note, the dashboard and the frontend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

from ..key.analysis import CellAnalysis
from ..key.cellkey import CellKey
from ..store.cache import Entry
from .capture import Recorder

if TYPE_CHECKING:
    from .record import Observed

__all__ = ["Cell", "Host", "Outcome", "RunOptions", "Status", "warn_once"]

Status = Literal["hit", "stored", "skipped", "error"]


class Host(Protocol):
    """What the engine needs from the notebook it caches cells of."""

    namespace: dict[str, Any]

    def transform(self, source: str) -> str:
        """Turn the cell's source (IPython syntax) into Python."""

    def execute(self, source: str, python: str, recorder: Recorder) -> None:
        """Run the cell; values for the display hook go to ``recorder.result`` and are shown."""

    def recorder(self) -> Recorder:
        """A recorder tapping this host's output."""

    def replay(self, records: list[dict[str, Any]], results: list[Any]) -> None:
        """Show recorded outputs again, in order; ``result`` records show ``results[i]``."""

    def is_internal(self, name: str) -> bool:
        """Names the host manages itself (``_``, ``Out``, ``get_ipython``...): never inputs or outputs."""

    def note(self, message: str, outcome: Outcome) -> None:
        """A quiet status line (a hit): shown unless the user asked for quiet."""

    def warn(self, message: str) -> None:
        """A caching problem, one line, starting with ``nbcache:``."""


@dataclass(frozen=True)
class RunOptions:
    force: bool = False
    skip: bool = False
    quiet: bool = False
    label: str | None = None
    explain: bool = False
    deps: tuple[str, ...] = ()
    """Files and folders whose content is part of the key (``--deps``)."""
    cell: str | None = None
    """Identity of the cell for --explain (a notebook cell id); the label or first line otherwise."""
    admit: Callable[[Observed], str | None] | None = None
    """After a miss ran: why not to store this run (None: store it). Automatic mode's rules."""
    warn_uncached: bool = True
    """Warn when the cell cannot be cached (False in automatic mode: the reason stays in the outcome)."""
    judge: bool = True
    """Apply the "does this cache pay?" rule (nbcache.run.pays); False keeps every entry."""
    max_file_size: int = 10**9
    """Bytes: a file the cell wrote that is larger is recorded by its digest, not copied."""


@dataclass(frozen=True)
class Cell:
    """One cell on its way through the engine, once analysed and keyed."""

    source: str
    python: str
    """The source turned into Python by the host."""
    analysis: CellAnalysis
    key: CellKey
    name: str
    """Which cell this is, for --explain: the label, the notebook cell id, else the first line."""
    options: RunOptions


@dataclass(frozen=True)
class Outcome:
    """What happened to one run, for the note, the dashboard and the frontend."""

    status: Status
    key: str | None = None
    reason: str | None = None
    runtime: float = 0.0
    """Seconds the cell took now (a miss), or the restore took (a hit)."""
    original_runtime: float = 0.0
    """Seconds the cell took when the entry was made (a hit)."""
    names: tuple[str, ...] = ()
    entry: Entry | None = field(default=None, repr=False)
    not_worth: bool = False
    """The cell ran without the cache because restoring it does not pay (nbcache.run.pays)."""
    files: tuple[str, ...] = ()
    """Files a hit wrote or removed to put the disk as the run left it (as the entry names them)."""

    @property
    def saved(self) -> float:
        return max(0.0, self.original_runtime - self.runtime) if self.status == "hit" else 0.0


def warn_once(host: Host, exc: BaseException, message: str) -> None:
    """Warn of a store problem unless the user already heard of it: the store marks the errors
    of a problem that is still going on with ``reported`` (one outage, one message)."""
    if not getattr(exc, "reported", False):
        host.warn(message)
