"""Why a cell hit or missed: the answer to ``%%cache --explain`` and :func:`nbcache.explain`.

On a hit, which entry was restored. On a miss, what differs from the most recent entry of the
same cell (same label, notebook cell id, or first line of code): the code, which input by name,
which function or module (they are inputs, or imported modules), which file or environment
variable the entry had read, which module attribute, which global random state or setting,
which library version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Literal

from ..key.cellkey import UNBOUND, CellKey
from ..key.state import unmet
from ..store.cache import Entry
from .contents import Extra

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True)
class Explanation:
    status: Literal["hit", "miss"]
    key: str
    reasons: tuple[str, ...]
    compared_to: str | None = None
    """Key of the entry this run was compared with (the one restored, on a hit)."""
    files: tuple[str, ...] = ()
    """On a hit, the files it wrote or removed to leave the disk as the run did."""

    def lines(self) -> list[str]:
        if self.status == "hit":
            put_back = [f"nbcache: hit: files put back: {', '.join(self.files)}"] if self.files else []
            return [f"nbcache: hit: restored entry {self.key[:12]}", *put_back]
        if not self.reasons:
            return ["nbcache: miss: no earlier entry of this cell"]
        against = f" (compared with entry {self.compared_to[:12]})" if self.compared_to else ""
        return [f"nbcache: miss: {reason}{against}" for reason in self.reasons]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(str(self))  # type: ignore[attr-defined]


def _when(created: float) -> str:
    return dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")


def _input_reason(name: str, before: str | None, after: str | None) -> str:
    if before is None:
        return f"input {name!r} is new"
    if after is None:
        return f"input {name!r} is no longer read"
    if after == UNBOUND:
        return f"input {name!r} is no longer defined"
    if before == UNBOUND:
        return f"input {name!r} is now defined"
    return f"input {name!r} changed"


def explain(
    key: CellKey, entries: Iterable[Entry], *, hit: Entry | None = None, invalid: Iterable[str] = (), files: tuple[str, ...] = ()
) -> Explanation:
    """Explain a lookup of ``key``: ``hit`` if it was restored; ``invalid`` lists why the entry
    with this very key could not be used; otherwise compare with the latest of ``entries``."""
    if hit is not None:
        return Explanation("hit", key.key, (f"entry stored {_when(hit.created)}",), hit.key, files)
    invalid = tuple(invalid)
    if invalid:
        return Explanation("miss", key.key, invalid, key.key)
    previous = max((e for e in entries if e.key != key.key), key=lambda e: e.created, default=None)
    if previous is None:
        return Explanation("miss", key.key, ())
    reasons: list[str] = []
    changed = {part for part in set(key.components) | set(previous.components) if previous.components.get(part) != key.components.get(part)}
    # A module whose source changed explains its attributes' new values: say it once.
    edited = {part.split(":", 1)[1] for part in changed if part.startswith("module:")}
    for part in sorted(changed):
        old, new = previous.components.get(part), key.components.get(part)
        if part.startswith("attr:") and part.split(":", 1)[1].rpartition(".")[0] in edited:
            continue
        if part == "source":
            reasons.append("the code changed")
        elif part == "python":
            reasons.append(f"the Python version changed ({old} -> {new})")
        elif part.startswith("module:"):
            name = part.split(":", 1)[1]
            if (old or "").startswith("lib:") and (new or "").startswith("lib:"):
                reasons.append(f"library {name} changed version ({old[4:]} -> {new[4:]})")  # type: ignore[index]
            else:
                reasons.append(f"module {name} changed")
        elif part.startswith("deps:"):
            reasons.append(f"dependency {part.split(':', 1)[1]} changed")
        elif part.startswith("attr:"):
            reasons.append(f"module attribute {part.split(':', 1)[1]} changed")
        elif part == "format":
            reasons.append("nbcache's format changed")
        else:
            reasons.append(f"{part} changed")
    added_or_dropped: list[str] = []
    for name in sorted(set(key.inputs) | set(previous.inputs)):
        old, new = previous.inputs.get(name), key.inputs.get(name)
        if old != new:
            (added_or_dropped if old is None or new is None else reasons).append(_input_reason(name, old, new))
    # An input is new or no longer read only because code changed (the cell's, or a function's
    # it calls, which now reads another global): that change is the reason worth naming.
    if not reasons:
        reasons.extend(added_or_dropped)
    if not reasons:
        # Same code and inputs: an entry keyed by the generator states it drew from, or gone.
        reasons.extend(unmet(Extra.of(previous).rng))
    if not reasons:
        reasons.append("the entry was removed or could not be read")
    return Explanation("miss", key.key, tuple(reasons), previous.key)
