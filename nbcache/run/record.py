"""A miss, after the cell ran: what it did, and the entry that lets a later run do it again.

From the namespace before and after the run come the names the cell wrote, deleted or mutated
in place (the names it read and the globals the code it reached read); from the working-tree
module attributes in its key, those it changed; from the interpreter state before and after, the
changes a hit must make again, the state the result depends on, and the modules it imported;
from the watch, the files and environment variables it read. An input that was in the namespace
before the cell ran is stored as a reference to its name. The result is a :class:`Draft`: the
values to pickle and the fields of the entry to write.
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .. import __version__
from ..errors import FingerprintError
from ..key.cellkey import UNBOUND
from ..key.deps import Watch, record_reads
from ..key.touched import Change, settle
from ..key.fingerprint import Fingerprinter, Substitutes, takes_pickle_path
from ..key.state import Observation, Snapshot, loaded_modules, requirements, rng_variant, snapshot
from ..key.state import changes as state_changes_between
from .attributes import attribute_changes
from .capture import Recorder
from .contents import ATTRS, RESULTS, STATE, Extra
from .host import Cell

__all__ = ["Changes", "Draft", "Observed", "draft"]


@dataclass(frozen=True)
class Observed:
    """What the engine saw of one run of a cell."""

    cell: Cell
    before: Mapping[str, Any]
    """The namespace before the run. Strong references: ids stay unique while we compare."""
    state_before: Snapshot
    watch: Watch
    recorder: Recorder
    runtime: float
    observation: Observation | None = None
    """Which settings the run read (rcParams: only a cell that draws depends on them)."""


@dataclass(frozen=True)
class Changes:
    """What the cell did to the namespace."""

    written: frozenset[str]
    deleted: frozenset[str]
    mutated: frozenset[str]
    pickled: Mapping[str, str]
    """Pickle digests (hex) of mutated values, which the mutation check computes anyway."""

    @property
    def stored(self) -> tuple[str, ...]:
        return tuple(sorted(self.written | self.mutated))


@dataclass(frozen=True)
class Draft:
    """An entry before it is written: the values to pickle, and what the manifest says."""

    observed: Observed
    changes: Changes
    values: dict[str, Any]
    """The stored variables, plus the results and state changes under their reserved names."""
    refs: dict[str, Any]
    """``name -> object`` of pre-existing objects to store as references (see serialize.py)."""
    extra: Extra
    on_disk: Sequence[Change] = ()
    """Paths the run created, changed or removed: their records and blobs join the entry."""
    problems: tuple[str, ...] = ()
    """Why the run's files cannot be recorded (then nothing is stored)."""
    cwd: str = ""
    """The working folder the run started in."""
    relative: frozenset[str] = frozenset()
    """The changed paths the cell named relative to it."""

    def fields(self) -> dict[str, Any]:
        """The entry's fields other than its blobs (``created`` is now)."""
        cell, key = self.observed.cell, self.observed.cell.key
        return dict(
            key=rng_variant(key.key, self.extra.rng) if self.extra.rng else key.key,
            cell=cell.name,
            label=cell.options.label,
            source=cell.source,
            created=time.time(),
            runtime=self.observed.runtime,
            names=self.changes.stored,
            deleted=tuple(sorted(self.changes.deleted)),
            refs=tuple(sorted(self.refs)),
            inputs=dict(key.inputs),
            components=dict(key.components),
            python=key.components["python"],
            nbcache=__version__,
            extra=self.extra.to_json(),
        )


def draft(observed: Observed, namespace: dict[str, Any], internal: Callable[[str], bool], substitutes: Substitutes) -> Draft:
    """The entry for a run that ended with ``namespace``."""
    changes = namespace_changes(observed, namespace, internal, substitutes)
    before, after = observed.state_before, snapshot()
    analysis = observed.cell.analysis
    # The generator states go into the key (a variant of it), the rest into the checked requirements.
    needs = requirements(
        before, after, called=analysis.called, observation=observed.observation, relative_paths=observed.watch.relative
    )
    settled = settle(observed.watch)
    reads = record_reads(observed.watch, commands=analysis.commands, environ=before.environ, settled=settled)
    attrs = attribute_changes(observed.cell.key, substitutes)
    mutated_ids = {id(namespace[name]) for name in changes.mutated} | {id(c[1]) for c in attrs.values() if c[0] == "update"}
    refs = references(observed, internal, mutated_ids)

    values = {name: namespace[name] for name in changes.stored}
    pickled = dict(changes.pickled)
    pickled.update(pickle_digests({name: v for name, v in values.items() if name not in pickled}, substitutes))
    values[RESULTS] = observed.recorder.results
    values[STATE] = state_changes_between(before, after)
    if attrs:
        values[ATTRS] = attrs
    extra = Extra(
        mutated=tuple(changes.mutated),
        reads=reads,
        requires=needs.requires,
        pickled=pickled,
        rng=needs.variant,
        imports=tuple(loaded_modules(before, after)),
        keep=observed.cell.options.force,  # --force keeps it even if restoring does not pay
    )
    return Draft(observed, changes, values, refs, extra, settled.changes, tuple(settled.problems), settled.cwd, settled.relative)


def namespace_changes(observed: Observed, namespace: Mapping[str, Any], internal: Callable[[str], bool], substitutes: Substitutes) -> Changes:
    before, key = observed.before, observed.cell.key
    # Rebound names, found by identity, plus names the cell binds on every path: `x = 1` when x
    # already was 1 rebinds it to the very same object, and a fresh kernel must still get it.
    written = frozenset(
        name
        for name, value in namespace.items()
        if not internal(name) and (name not in before or before[name] is not value or name in observed.cell.analysis.bound)
    )
    deleted = frozenset(name for name in before if name not in namespace and not internal(name))
    # Inputs changed in place (lst.append, df["c"] = ...): store their new value too.
    # (`vec += 1` on an array rebinds vec to the same object: that is a mutation too.)
    mutated = set()
    pickled: dict[str, str] = {}
    for name, digest in key.inputs.items():
        if name not in namespace or digest == UNBOUND or before.get(name) is not namespace[name]:
            continue  # gone, or rebound to a new object (stored by value)
        try:
            now, pickle_digest = Fingerprinter(substitutes).digests(namespace[name])
        except FingerprintError:
            mutated.add(name)
            continue
        if now.hex() != digest:
            mutated.add(name)
            if pickle_digest is not None:
                pickled[name] = pickle_digest.hex()
    return Changes(written, deleted, frozenset(mutated), pickled)


def references(observed: Observed, internal: Callable[[str], bool], mutated_ids: set[int]) -> dict[str, Any]:
    """Pre-existing objects the values may refer to by name: the inputs (the key guarantees the
    same values on a hit) and the notebook's own classes and functions (so identity and
    isinstance hold). A module, or a class or function a module holds, pickles as an import of it
    instead: a reference to a name the key does not cover (``import numpy as np`` again after an
    earlier cell did) would not resolve where that earlier cell has not run. One name per object
    (the first the namespace lists)."""
    refs: dict[str, Any] = {}
    seen: set[int] = set()
    inputs = observed.cell.key.inputs
    for name, value in observed.before.items():
        if internal(name) or id(value) in mutated_ids or id(value) in seen or _is_atomic(value):
            continue  # a mutated object must be stored by value, never as "what is there now"
        if (name in inputs and inputs[name] != UNBOUND) or (
            isinstance(value, (type, types.FunctionType)) and not _importable(value)
        ):
            refs[name] = value
            seen.add(id(value))
    return refs


def _importable(obj: Any) -> bool:
    """Whether pickle finds ``obj`` again by importing its module (``module.qualname`` is it)."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    if module is None or module.__name__ == "__main__":
        return False
    target: Any = module
    for part in getattr(obj, "__qualname__", "").split("."):
        target = getattr(target, part, None)
    return target is obj


def pickle_digests(values: Mapping[str, Any], substitutes: Substitutes) -> dict[str, str]:
    """The pickle digests of the values fingerprinted through pickle: a hit makes the restored
    objects substitutes for them (their own pickle may differ: see nbcache.key.fingerprint)."""
    out = {}
    for name, value in values.items():
        if not takes_pickle_path(value):
            continue
        try:
            digest = Fingerprinter(substitutes).pickle_digest(value)
        except Exception:  # noqa: BLE001 - no digest: only a needless miss later
            continue
        if digest is not None:
            out[name] = digest.hex()
    return out


def _is_atomic(value: Any) -> bool:
    """Immutable scalars: their identity is never observable in a way worth preserving."""
    return value is None or type(value) in (bool, int, float, complex, str, bytes)
