"""numpy's global state: the legacy global generator, print options and floating-point error handling.

``numpy.random``'s legacy generator is seeded from OS entropy when ``numpy.random`` is first
imported; ``np.random.seed(n)`` and ``np.random.set_state(...)`` make its state known. Its bit
generator also keeps the ``SeedSequence`` it was created from until a legacy ``seed`` call drops
it, which catches seeding through ``np.random.mtrand._rand.seed`` too.
"""

from __future__ import annotations

import sys
from typing import Any

from .registry import options_provider, register
from .rng import GeneratorProvider, original, seed_value, seeding, wrap

__all__: list[str] = []


def _random() -> Any:
    return sys.modules["numpy.random"]


def _legacy_seeded() -> bool:
    """Whether a legacy seed call replaced the entropy the generator was created with."""
    try:
        return _random().mtrand._rand._bit_generator._seed_seq is None
    except AttributeError:  # another numpy: no such detail to go by
        return False


def _fresh() -> None:
    """New OS entropy, keeping the generator's creation SeedSequence (so it still reads as unseeded)."""
    random = _random()
    try:
        random.mtrand._rand._bit_generator.state = random.MT19937().state
    except AttributeError:
        original(random.seed)()


def _track(assume_seeded: bool) -> None:
    seeding.mark("numpy.random", assume_seeded)
    random = _random()
    for module in (random, random.mtrand):
        wrap(module, "seed", lambda args, kwargs: seeding.mark("numpy.random", seed_value(args, kwargs) is not None))
        wrap(module, "set_state", lambda args, kwargs: seeding.mark("numpy.random", True))


register(
    GeneratorProvider(
        "numpy.random",
        capture=lambda: _random().get_state(legacy=True),
        restore=lambda state: original(_random().set_state)(state),
        module="numpy.random",
        description="the global numpy.random state",
        seeded=lambda: seeding.seeded("numpy.random") or _legacy_seeded(),
        fresh=_fresh,
        seeds=frozenset({"seed", "set_state"}),
        reads=frozenset({"get_state"}),
        track=_track,
    )
)


def _numpy() -> Any:
    return sys.modules["numpy"]


register(options_provider("numpy.printoptions", "numpy", "numpy print options", lambda: _numpy().get_printoptions(), lambda **o: _numpy().set_printoptions(**o)))
register(options_provider("numpy.errstate", "numpy", "numpy floating-point error handling (errstate)", lambda: _numpy().geterr(), lambda **o: _numpy().seterr(**o)))
