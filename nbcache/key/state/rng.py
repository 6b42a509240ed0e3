"""Global random generators: their states, whether the user seeded them, and Python's ``random``.

A generator the user seeded (``random.seed(n)``, ``np.random.seed(n)``, ``torch.manual_seed(n)``,
or a state set with ``setstate``) is in a state a plain run reproduces: an entry that draws from
it is keyed on that state, and a hit leaves it exactly where the run left it. A generator nobody
seeded (a fresh kernel's ``random``, ``numpy.random`` and ``torch``, seeded from OS entropy) is in
a state no one can know: any draw from it is as valid as another, so its draws are cached, the
entry requires only that it is still unseeded, and a hit leaves it in a fresh unknowable state.

Whether a generator was seeded is tracked from the moment nbcache is loaded (:func:`track`): the
seeding functions are wrapped as their library is imported (:mod:`nbcache.key.state.lazy`), and
behave exactly as before. What happened before nbcache was loaded is not known: a generator is
then taken as seeded if any earlier cell mentions seeding (``assume_seeded``), and always while
nothing tracks seeding at all (the engine driven without the extension), which keeps the exact
semantics.
"""

from __future__ import annotations

import array
import functools
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import xxhash

from . import lazy
from .registry import StateProvider, all_providers, pickle_digest, providers, register

__all__ = ["FRESH", "GeneratorProvider", "generators", "rng_variant", "seeding", "track", "untrack"]

FRESH = "\0fresh"
"""The change a hit makes to a generator the run left unseeded: reseed it from OS entropy."""


class Seeding:
    """Which generators are in a state that descends from the user's seed."""

    def __init__(self) -> None:
        self._flags: dict[str, bool] = {}
        self.tracking = False

    def seeded(self, name: str) -> bool:
        # Unknown (not tracked, or imported before tracking without a flag): seeded, which
        # keeps the exact semantics: a needless miss at worst, never a wrong hit.
        return self._flags.get(name, True) if self.tracking else True

    def mark(self, name: str, seeded: bool) -> None:
        if self.tracking:
            self._flags[name] = seeded


seeding = Seeding()
_undo: list[Callable[[], None]] = []


@dataclass(frozen=True, eq=False)
class GeneratorProvider(StateProvider):
    """A global random generator. ``restore`` sets an exact state; :meth:`apply` also takes
    :data:`FRESH`."""

    role: Any = "rng"
    seeded: Callable[[], bool] = field(default=lambda: True)
    """Whether the current state descends from the user's seed."""
    fresh: Callable[[], None] = field(default=lambda: None)
    """Reseed from OS entropy, leaving the generator unseeded."""
    seeds: frozenset[str] = frozenset()
    """Names of the calls that seed it (a cell calling one seeds it itself)."""
    reads: frozenset[str] = frozenset()
    """Names of the calls that read its state without drawing (the result depends on it)."""
    track: Callable[[bool], None] | None = None
    """Start tracking seeding, once the library is imported; the argument: whether it was
    imported before tracking started and may have been seeded then."""

    def apply(self, change: Any) -> None:
        if isinstance(change, str) and change == FRESH:
            self.fresh()
            seeding.mark(self.name, False)
        else:
            self.restore(change)
            seeding.mark(self.name, True)


def generators() -> list[GeneratorProvider]:
    return [p for p in providers() if isinstance(p, GeneratorProvider)]


def rng_variant(key: str, digests: Mapping[str, str]) -> str:
    """The key of an entry that drew from seeded global generators without seeding them: their
    states before the cell (``digests``, by generator) are part of its key."""
    parts = [key] + [f"{name}={digest}" for name, digest in sorted(digests.items())]
    return xxhash.xxh3_128_hexdigest("\0".join(parts).encode())


def current_digests() -> dict[str, str]:
    """Digests of the seeded generators' states now (the only ones an entry can be keyed on)."""
    out = {}
    for gen in generators():
        try:
            if gen.seeded():
                out[gen.name] = gen.state_digest(gen.capture())
        except Exception:  # noqa: BLE001 - a broken generator provider: no variant for it
            continue
    return out


def rng_variants(key: str) -> list[str]:
    """The keys an entry of ``key`` may have under the current states of the seeded generators
    (one per non-empty subset of them: the ones it drew from)."""
    digests = current_digests()
    names = sorted(digests)
    variants = []
    for mask in range(1, 1 << len(names)):
        subset = {n: digests[n] for i, n in enumerate(names) if mask >> i & 1}
        variants.append(rng_variant(key, subset))
    return variants


# -- tracking -----------------------------------------------------------------------------------
def wrap(module: Any, attr: str, after: Callable[[tuple[Any, ...], dict[str, Any]], None]) -> None:
    """Replace ``module.attr`` by a function that calls it, then ``after(args, kwargs)``. The
    wrapper pickles and fingerprints as the original (same module and name)."""
    original = getattr(module, attr, None)
    if original is None or getattr(original, "__nbcache_original__", None) is not None:
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        after(args, kwargs)
        return result

    wrapper.__module__ = module.__name__
    wrapper.__qualname__ = wrapper.__name__ = attr
    wrapper.__nbcache_original__ = original  # type: ignore[attr-defined]
    setattr(module, attr, wrapper)

    def undo() -> None:
        if getattr(module, attr, None) is wrapper:
            setattr(module, attr, original)

    _undo.append(undo)


def seed_value(args: tuple[Any, ...], kwargs: Mapping[str, Any], keyword: str = "seed") -> Any:
    return args[0] if args else kwargs.get(keyword, kwargs.get("a"))


def original(function: Any) -> Any:
    """The function a wrapper stands for (the function itself when not wrapped)."""
    return getattr(function, "__nbcache_original__", function)


def track(assume_seeded: bool) -> None:
    """Track seeding from now on. ``assume_seeded``: whether generators already imported may
    have been seeded before (an earlier cell mentions seeding)."""
    if seeding.tracking:
        return
    seeding.tracking = True
    for gen in [p for p in all_providers() if isinstance(p, GeneratorProvider)]:
        if gen.track is None:
            continue
        module = gen.module or "builtins"
        already = module in sys.modules
        lazy.when_imported(module, functools.partial(_start, gen.track, already and assume_seeded))


def _start(track: Callable[[bool], None], assume_seeded: bool, module: Any) -> None:
    track(assume_seeded)


def untrack() -> None:
    """Stop tracking: the seeding functions are the originals again."""
    lazy.forget()
    while _undo:
        _undo.pop()()
    seeding._flags.clear()
    seeding.tracking = False


# -- Python's random ----------------------------------------------------------------------------
def _track_random(assume_seeded: bool) -> None:
    seeding.mark("random", assume_seeded)
    wrap(random, "seed", lambda args, kwargs: seeding.mark("random", seed_value(args, kwargs, "a") is not None))
    wrap(random, "setstate", lambda args, kwargs: seeding.mark("random", True))


def _random_digest(state: Any) -> str:
    """Of ``random.getstate()``: its 625 words as bytes (a pickle of them costs several times more,
    on every miss and on the lookup of a seeded cell)."""
    try:
        version, internal, gauss = state
        words = array.array("I", internal)
        if sys.byteorder == "big":
            words.byteswap()
        return xxhash.xxh3_128_hexdigest(words.tobytes() + repr((version, gauss)).encode())
    except (TypeError, ValueError, OverflowError):
        return pickle_digest(state)


register(
    GeneratorProvider(
        "random",
        capture=random.getstate,
        digest=_random_digest,
        restore=lambda state: original(random.setstate)(state),
        description="the global random state",
        seeded=lambda: seeding.seeded("random"),
        fresh=lambda: original(random.seed)(),
        seeds=frozenset({"seed", "setstate"}),
        reads=frozenset({"getstate"}),
        track=_track_random,
    )
)
