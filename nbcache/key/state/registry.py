"""The registry of state providers: one per kind of interpreter state a cell may read or change.

A provider knows one kind of state: how to ``capture`` it (a picklable value), how to tell two
captures apart (``digest``), what a cell changed (``delta``) and how to make a change again
(``restore``). A provider belongs to a library (``module``) and is active only while that library
is imported: nbcache never imports a library to look at its settings, and a library imported
later is picked up by the next cell.

Each provider has a role:

- ``setting``: shapes what a cell computes or shows (print options, rcParams, a default dtype).
  An entry requires the state it ran under, and a hit makes the changes the cell made.
- ``ambient``: environment variables and the working directory. A hit makes the cell's changes;
  the entry depends on them only as far as the cell read them (see :mod:`nbcache.key.deps`).
- ``rng``: a global random generator (:class:`~nbcache.key.state.rng.GeneratorProvider`).

Other libraries add providers with :func:`register_state` (from a notebook, or from the
library's own code), or through the entry point group ``nbcache.state``: the entry point's name
is the module whose import activates it, its value a provider (or a list of them, or a function
returning either). It is loaded the first time a cell runs with that module imported.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import sys
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable, Iterator, Literal, Mapping

import xxhash

__all__ = ["ABSENT", "NOTHING", "Role", "StateProvider", "changed_items", "mapping_delta", "options_provider", "reads_noted", "providers", "register", "register_state", "unregister"]

Role = Literal["setting", "ambient", "rng"]


class _Nothing:
    """What a provider's ``delta`` returns when the cell changed nothing."""

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


class _Absent:
    """What ``capture`` returns when the state is not in use (CUDA before it is initialised)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def pickle_digest(state: Any) -> str:
    """The default digest: settings are plain values, which pickle encodes exactly and fast."""
    try:
        return xxhash.xxh3_128_hexdigest(pickle.dumps(state, protocol=5))
    except Exception:  # noqa: BLE001 - a value pickle cannot encode: the canonical fingerprint
        from ..fingerprint import Fingerprinter

        return Fingerprinter().digest(state).hex()


def same(a: Any, b: Any) -> bool:
    """Whether two captured values are the same state (``==`` where it gives a plain answer)."""
    try:
        equal = a == b
        if isinstance(equal, bool):
            return equal and type(a) is type(b)
    except Exception:  # noqa: BLE001 - arrays and the like: compare digests
        pass
    return pickle_digest(a) == pickle_digest(b)


@dataclass(frozen=True, eq=False)
class StateProvider:
    """One kind of interpreter state. Only ``name``, ``capture`` and ``restore`` are required."""

    name: str
    """Stable identifier, stored in entries (``numpy.printoptions``)."""
    capture: Callable[[], Any]
    """The current state, as a picklable value (:data:`ABSENT` when not in use)."""
    restore: Callable[[Any], None]
    """Make current what ``delta`` returned (by default: a captured state)."""
    module: str | None = None
    """The module whose import activates the provider (None: always active)."""
    description: str = ""
    """How ``--explain`` names it ("numpy print options"); the name by default."""
    role: Role = "setting"
    delta: Callable[[Any, Any], Any] | None = None
    """``(before, after) -> change`` or :data:`NOTHING`; by default ``after`` when it differs."""
    digest: Callable[[Any], str] | None = None
    """Digest of a captured state, compared on lookup; by default a digest of its pickle."""
    observe: Callable[[], ContextManager[Callable[[], bool]]] | None = None
    """Watches a run and tells whether it read the state. None: every cell depends on it."""
    requirement: Callable[[Any, Any], str] | None = None
    """``(before, after) -> requirement``: what an entry needs of the state before the cell;
    by default the digest of ``before``. With it, ``satisfied(requirement, now)`` says whether
    the state now meets it."""
    satisfied: Callable[[str, Any], bool] | None = None

    @property
    def label(self) -> str:
        return self.description or self.name

    def active(self) -> bool:
        return self.module is None or self.module in sys.modules

    def state_digest(self, state: Any) -> str:
        return (self.digest or pickle_digest)(state)

    def required(self, before: Any, after: Any) -> str:
        return self.requirement(before, after) if self.requirement is not None else self.state_digest(before)

    def meets(self, required: str, now: Any) -> bool:
        return self.satisfied(required, now) if self.satisfied is not None else self.state_digest(now) == required

    def apply(self, change: Any) -> None:
        """Make a change that :meth:`change` returned (on a hit)."""
        self.restore(change)

    def change(self, before: Any, after: Any) -> Any:
        if self.delta is not None:
            return self.delta(before, after)
        return NOTHING if same(before, after) else after


def changed_items(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """The items of ``after`` that ``before`` lacks or holds with another value."""
    if after is None:
        return {}
    before = before or {}
    return {key: value for key, value in after.items() if key not in before or not same(before[key], value)}


def mapping_delta(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> Any:
    """A ``delta`` for states that are mappings of options: the options the cell set."""
    return changed_items(before, after) or NOTHING


def options_provider(name: str, module: str, description: str, read: Callable[[], Mapping[str, Any]], write: Callable[..., Any]) -> StateProvider:
    """A setting that is a mapping of options read with ``read()`` and set with ``write(**options)``
    (``np.get_printoptions``/``np.set_printoptions``): a hit sets only the options that differ."""

    def restore(options: Mapping[str, Any]) -> None:
        changed = changed_items(dict(read()), options)
        if changed:
            write(**changed)

    return StateProvider(name, lambda: dict(read()), restore, module=module, description=description, delta=mapping_delta)


@contextlib.contextmanager
def reads_noted(obj: Any, watching: type, seen: list[bool]) -> Iterator[Callable[[], bool]]:
    """Make ``obj`` an instance of ``watching`` (a subclass of its type that sets ``seen[0]`` on a
    read) while the block runs; yields whether it was read. An object whose class cannot be
    switched counts as read: every cell then depends on it."""
    base = type(obj)
    try:
        obj.__class__ = watching
    except TypeError:
        yield lambda: True
        return
    try:
        yield lambda: seen[0]
    finally:
        if type(obj) is watching:
            obj.__class__ = base


# -- the registry ------------------------------------------------------------------------------
_providers: dict[str, StateProvider] = {}
_builtins_loaded = False
_entry_points: dict[str, list[Any]] | None = None  # module name -> entry points not loaded yet
problems: list[str] = []
"""Providers that could not be loaded or failed (for tests and diagnosis; a cell never fails)."""

# One small module per family of providers, imported on first use (they import no library).
_FAMILIES = ("rng", "python", "numpy", "pandas", "matplotlib", "torch", "sklearn", "polars")


def register(provider: StateProvider) -> StateProvider:
    """Add ``provider`` (replacing one of the same name)."""
    _providers[provider.name] = provider
    return provider


def unregister(name: str) -> None:
    _providers.pop(name, None)


def register_state(name: str, capture: Callable[[], Any], restore: Callable[[Any], None], **options: Any) -> StateProvider:
    """:func:`nbcache.register_state`: a ``setting`` provider from two functions (``options``:
    ``module``, ``description``, ``digest``)."""
    if not isinstance(name, str) or not name:
        raise ValueError("nbcache: register_state needs a non-empty name")
    if not callable(capture) or not callable(restore):
        raise TypeError(f"nbcache: register_state({name!r}): capture and restore must be callables")
    options["description"] = options.get("description") or name
    return register(StateProvider(name, capture, restore, **options))


def providers() -> list[StateProvider]:
    """The active providers, in registration order (built-ins first)."""
    _load_builtins()
    _load_entry_points()
    return [p for p in list(_providers.values()) if p.active()]


def all_providers() -> list[StateProvider]:
    """Every registered provider, active or not."""
    _load_builtins()
    _load_entry_points()
    return list(_providers.values())


def find(name: str) -> StateProvider | None:
    _load_builtins()
    _load_entry_points()
    return _providers.get(name)


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for family in _FAMILIES:
            importlib.import_module(f"{__package__}.{family}")


def _load_entry_points() -> None:
    global _entry_points
    if _entry_points is None:
        _entry_points = {}
        try:
            from importlib.metadata import entry_points

            for ep in entry_points(group="nbcache.state"):
                _entry_points.setdefault(ep.name, []).append(ep)
        except Exception as exc:  # noqa: BLE001 - broken metadata must not break a cell
            problems.append(f"entry points: {exc}")
    for module in [m for m in _entry_points if m in sys.modules]:
        for ep in _entry_points.pop(module):
            try:
                for provider in _as_providers(ep.load()):
                    register(provider)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"entry point {ep.name} = {ep.value}: {exc}")


def _as_providers(obj: Any) -> Iterable[StateProvider]:
    if isinstance(obj, StateProvider):
        return [obj]
    if callable(obj):
        return _as_providers(obj())
    if isinstance(obj, (list, tuple)) and all(isinstance(p, StateProvider) for p in obj):
        return list(obj)
    raise TypeError(f"not a StateProvider: {type(obj).__qualname__}")


def reset_entry_points() -> None:
    """Forget which entry points were seen (a distribution installed since)."""
    global _entry_points
    _entry_points = None
