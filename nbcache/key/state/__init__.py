"""Interpreter state a later cell can observe, beyond the variables: captured, compared, restored.

A cell can change more than its variables: seed or draw from a global generator, change print
options, rcParams, pandas or scikit-learn settings, warnings filters, environment variables or
the working directory. A later cell sees those changes, so a hit must make them too; and a cell's
result may depend on such state, so its entry is valid only under the same. Each kind of state is
a *provider* (:mod:`~nbcache.key.state.registry`: capture, compare, restore), one small module
per family: :mod:`~.rng` (generators, Python's ``random``), :mod:`~.numpy`, :mod:`~.torch`,
:mod:`~.pandas`, :mod:`~.matplotlib`, :mod:`~.sklearn`, :mod:`~.polars` and :mod:`~.python`
(warnings, decimal, locale, environment, working directory). A provider is active only while its
library is imported.

A miss takes a :func:`snapshot` before and after the run, with an :func:`observe` watch around it;
:func:`changes` between the snapshots is what the entry stores and :func:`apply` makes again on a
hit, and :func:`requirements` is what the entry needs of the state before the cell, checked on
lookup by :func:`unmet`. The states of the seeded generators the cell drew from go into a variant
of the key instead (:func:`rng_variant`): each state keeps its own entry.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

from . import lazy
from .registry import ABSENT, NOTHING, StateProvider, all_providers, find, problems, providers, register_state
from .rng import FRESH, GeneratorProvider, rng_variant, rng_variants, track, untrack

__all__ = [
    "Needs",
    "Snapshot",
    "StateProvider",
    "apply",
    "changes",
    "loaded_modules",
    "observe",
    "register_state",
    "requirements",
    "rng_variant",
    "rng_variants",
    "snapshot",
    "track",
    "unmet",
    "untrack",
]

# A requirement on a setting whose library the cell imported itself: the state right after the
# import (``AT_IMPORT`` + digest), which a fresh import gives again, so it holds while the library
# is not imported, or is imported with that state; when that state could not be seen,
# ``NOT_IMPORTED``: it holds only while the library is not imported.
AT_IMPORT = "at import:"
NOT_IMPORTED = "not imported"
UNSEEDED = "unseeded"
# A requirement on a setting whose digest failed when the cell ran: it never holds.
UNDIGESTED = "undigested"


class Digests(Mapping[str, str]):
    """The digests of a snapshot's settings and generators (ambient state is compared by value),
    each computed the first time it is asked for: a cell too quick to be stored needs none, and a
    stored one only its generators' (:func:`requirements` digests the settings it depends on)."""

    def __init__(self, states: Mapping[str, Any], providers: Mapping[str, StateProvider] | None = None):
        self._states = states
        self._providers = providers if providers is not None else {}
        self._known: dict[str, str | None] = {}

    def __getitem__(self, name: str) -> str:
        if name not in self._known:
            provider = self._providers.get(name)
            if provider is None or name not in self._states:
                raise KeyError(name)
            try:
                self._known[name] = provider.state_digest(self._states[name])
            except Exception as exc:  # noqa: BLE001 - a broken provider must not break the cell
                problems.append(f"{name}: digest failed: {exc}")
                self._known[name] = None
        found = self._known[name]
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return (name for name in list(self._providers) if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class Snapshot:
    """The state of every active provider at one moment."""

    states: dict[str, Any]
    digests: Digests = field(default_factory=lambda: Digests({}))
    """Of the settings and generators (ambient state is compared by value), computed when asked."""
    seeded: dict[str, bool] = field(default_factory=dict)
    """Of each generator: whether its state descends from the user's seed."""
    modules: tuple[str, ...] = ()
    """``sys.modules``' names, in import order."""

    @property
    def environ(self) -> dict[str, str]:
        captured = self.states.get("environ")
        if captured is None:
            return dict(os.environ)
        from .python import decoded_environ

        return decoded_environ(captured)

    @property
    def cwd(self) -> str:
        return str(self.states.get("cwd") or os.getcwd())


def snapshot() -> Snapshot:
    states: dict[str, Any] = {}
    digested: dict[str, StateProvider] = {}
    snap = Snapshot(states, Digests(states, digested), modules=tuple(sys.modules))
    for provider in providers():
        try:
            state = provider.capture()
            if state is ABSENT:
                continue
            if provider.role != "ambient":
                digested[provider.name] = provider
            if isinstance(provider, GeneratorProvider):
                snap.seeded[provider.name] = provider.seeded()
        except Exception as exc:  # noqa: BLE001 - a broken provider must not break the cell
            problems.append(f"{provider.name}: capture failed: {exc}")
            continue
        snap.states[provider.name] = state
    return snap


class Observation:
    """Which observed settings a run read (see ``StateProvider.observe``), and the state of the
    settings of each library it imported, right after the import."""

    def __init__(self) -> None:
        self._read: dict[str, Callable[[], bool]] = {}
        self.at_import: dict[str, str] = {}

    def read(self, name: str) -> bool:
        """Whether the run read ``name``; True when it was not watched (assume it did)."""
        probe = self._read.get(name)
        return True if probe is None else probe()


@contextlib.contextmanager
def observe() -> Iterator[Observation]:
    """Watch a run for reads of the settings whose providers can tell."""
    observation = Observation()
    with contextlib.ExitStack() as stack:
        for provider in providers():
            if provider.observe is not None:
                try:
                    observation._read[provider.name] = stack.enter_context(provider.observe())
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{provider.name}: observe failed: {exc}")
        for provider in all_providers():
            if provider.role == "setting" and provider.module and not provider.active():
                _arm(provider)
        start = next(_imports)
        stack.callback(_imported_since, start, observation)
        yield observation


# The state of each setting right after its library's import, with the order of the imports: a
# callback per library waits for its import across runs (one registered and cancelled by every
# run cost more than the rest of the observation), and a run takes the imports after its start.
_imports = itertools.count()
_at_import: dict[str, tuple[int, str]] = {}
_waiting: dict[str, tuple[StateProvider, Callable[[Any], None]]] = {}


def _arm(provider: StateProvider) -> None:
    module = str(provider.module)
    armed = _waiting.get(provider.name)
    if armed is not None and lazy.waiting(module, armed[1]):
        if armed[0] is provider:
            return
        lazy.cancel(module, armed[1])  # registered again since: the new provider captures

    def imported(_module: Any) -> None:
        try:
            _at_import[provider.name] = (next(_imports), provider.state_digest(provider.capture()))
        except Exception as exc:  # noqa: BLE001 - then the entry requires the state as it is after the run
            problems.append(f"{provider.name}: capture at import failed: {exc}")

    _waiting[provider.name] = (provider, imported)
    lazy.when_imported(module, imported)


def _imported_since(start: int, observation: Observation) -> None:
    for name, (order, digest) in list(_at_import.items()):  # (an import on another thread may add one)
        if order > start:
            observation.at_import[name] = digest


def changes(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """The state the cell changed, by provider, in a picklable form; empty when it changed nothing."""
    out: dict[str, Any] = {}
    for provider in providers():
        if provider.name not in after.states:
            continue
        now = after.states[provider.name]
        if isinstance(provider, GeneratorProvider):
            if before.digests.get(provider.name) == after.digests.get(provider.name):
                continue
            # A generator left seeded is restored exactly; one left unseeded (drawn from
            # unseeded, or imported by the cell) is reseeded from entropy on a hit.
            out[provider.name] = now if after.seeded.get(provider.name) else FRESH
            continue
        try:
            change = provider.change(before.states.get(provider.name), now)
        except Exception as exc:  # noqa: BLE001 - a broken provider: its state is not restored
            problems.append(f"{provider.name}: delta failed: {exc}")
            continue
        if change is not NOTHING:
            out[provider.name] = change
    return out


def apply(changed: Mapping[str, Any]) -> list[str]:
    """Make the state changes a cell made (on a hit), in the providers' order. Returns what
    could not be restored (a provider of a library that is not imported, or that failed)."""
    failed = []
    for name, change in _ordered(changed):
        provider = find(name)
        if provider is None or not provider.active():
            failed.append(name)
            continue
        try:
            provider.apply(change)
        except Exception as exc:  # noqa: BLE001
            failed.append(f"{name} ({exc})")
    return failed


def _ordered(changed: Mapping[str, Any]) -> list[tuple[str, Any]]:
    order = {p.name: i for i, p in enumerate(providers())}
    return sorted(changed.items(), key=lambda item: order.get(item[0], len(order)))


@dataclass(frozen=True)
class Needs:
    """What an entry needs of the state before the cell."""

    variant: dict[str, str]
    """States of the seeded generators the cell drew from: part of the key (:func:`rng_variant`)."""
    requires: dict[str, str]
    """Checked on lookup by :func:`unmet`: settings, unseeded generators, the working directory."""


def requirements(
    before: Snapshot,
    after: Snapshot,
    *,
    called: Iterable[str] = (),
    observation: Observation | None = None,
    relative_paths: bool = False,
) -> Needs:
    """What the result of a run depends on. ``called``: the names the cell calls (a cell that
    seeds a generator itself does not depend on its state before; one that calls ``getstate``
    does); ``observation``: which observed settings it read; ``relative_paths``: whether it read
    a file or folder by a relative path."""
    called = set(called)
    variant: dict[str, str] = {}
    requires: dict[str, str] = {}
    for provider in providers():
        name = provider.name
        if isinstance(provider, GeneratorProvider):
            drew = before.digests.get(name) != after.digests.get(name) and name in after.digests
            reads = bool(provider.reads & called)
            if not (drew or reads) or (provider.seeds & called and not reads):
                continue  # untouched, or seeded by the cell before it drew (as far as one can tell)
            if before.seeded.get(name, False):
                variant[name] = before.digests[name]
            else:  # unknowable state: any draw is as valid; valid while it stays unseeded
                requires[f"rng:{name}"] = UNSEEDED
        elif provider.role == "setting":
            if observation is not None and not observation.read(name):
                continue
            if name in before.states:
                try:
                    requires[f"state:{name}"] = provider.required(before.states[name], after.states.get(name))
                except Exception as exc:  # noqa: BLE001 - a broken provider: the entry cannot be trusted
                    problems.append(f"{name}: digest failed: {exc}")
                    requires[f"state:{name}"] = UNDIGESTED
            elif observation is not None and name in observation.at_import:
                requires[f"state:{name}"] = AT_IMPORT + observation.at_import[name]
            else:
                requires[f"state:{name}"] = NOT_IMPORTED
    if relative_paths:
        requires["cwd"] = before.cwd
    return Needs(variant, requires)


def unmet(required: Mapping[str, str]) -> list[str]:
    """Requirements the current state does not meet, described for --explain. Also takes the
    generator digests of a key variant (bare generator names)."""
    missing = []
    for key, value in required.items():
        kind, _, name = key.partition(":")
        if key == "cwd":
            if os.getcwd() != value:
                missing.append(f"the working directory is {os.getcwd()}, not {value} (the cell reads by relative path)")
        elif kind == "state":
            missing.extend(_unmet_setting(name, value))
        elif kind == "rng":
            provider = find(name)
            if provider is not None and provider.active() and isinstance(provider, GeneratorProvider) and provider.seeded():
                missing.append(f"{provider.label} is seeded now, and the entry drew from it unseeded")
        else:  # a key variant's generator state
            provider = find(key)
            if provider is None or not provider.active() or _digest_now(provider) != value:
                label = provider.label if provider is not None else key
                missing.append(f"{label} differs (the cell draws from it without seeding)")
    return missing


def _unmet_setting(name: str, value: str) -> list[str]:
    provider = find(name)
    if provider is None:
        return [f"the entry depends on state {name!r}, which no provider here knows"]
    if value == UNDIGESTED:
        return [f"{provider.label} could not be digested when the cell ran, so it cannot be known to be the same"]
    if value == NOT_IMPORTED:
        if provider.active():
            return [f"{provider.label} may differ: {provider.module} is imported now, and was not when the cell ran"]
        return []
    if value.startswith(AT_IMPORT):
        if provider.active() and _digest_now(provider) != value[len(AT_IMPORT):]:
            return [f"{provider.label} changed since {provider.module} was imported (the cell imports it)"]
        return []
    if not provider.active():
        return [f"{provider.label}: {provider.module} is not imported now, and was when the cell ran"]
    try:
        now = provider.capture()
        met = now is not ABSENT and provider.meets(value, now)
    except Exception:  # noqa: BLE001 - a broken provider: the entry cannot be trusted
        met = False
    return [] if met else [f"{provider.label} changed"]


def _digest_now(provider: StateProvider) -> str | None:
    try:
        state = provider.capture()
        return None if state is ABSENT else provider.state_digest(state)
    except Exception:  # noqa: BLE001
        return None


def loaded_modules(before: Snapshot, after: Snapshot) -> list[str]:
    """The modules the run imported, in the order they were imported. Left out: nbcache's own,
    and private submodules of a package also in the list (``pandas._libs.x`` after ``pandas``),
    which their package imports and no notebook imports itself: importing sklearn and pandas
    loads 1,600 modules, half of them such."""
    known = set(before.modules)
    new = [m for m in after.modules if m not in known and m != "nbcache" and not m.startswith("nbcache.")]
    loaded = set(new)
    return [m for m in new if not _private_part_of(m, loaded)]


def _private_part_of(name: str, loaded: set[str]) -> bool:
    parts = name.split(".")
    return any(part.startswith("_") and ".".join(parts[:i]) in loaded for i, part in enumerate(parts) if i)
