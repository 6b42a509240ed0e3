"""PyTorch's global state: the CPU generator (and CUDA's, once CUDA is in use), the default
dtype, and whether deterministic algorithms are enforced.

torch seeds its CPU generator from OS entropy when it is imported: ``torch.initial_seed()`` is
that seed until ``torch.manual_seed(n)`` makes it ``n``. Seeding is tracked from torch's import
(see :mod:`nbcache.key.state.rng`): ``manual_seed`` and ``set_rng_state`` make the state known,
``torch.seed()`` makes it unknowable again.
"""

from __future__ import annotations

import sys
from typing import Any

import xxhash

from .registry import ABSENT, StateProvider, register
from .rng import GeneratorProvider, original, seeding, wrap

__all__: list[str] = []

# torch.initial_seed() when torch was imported (or last reseeded from entropy) under tracking.
_entropy_seed: list[int | None] = [None]


def _torch() -> Any:
    return sys.modules["torch"]


def _tensor_digest(state: Any) -> str:
    if isinstance(state, (list, tuple)):
        return xxhash.xxh3_128_hexdigest(b"".join(bytes.fromhex(_tensor_digest(s)) for s in state))
    return xxhash.xxh3_128_hexdigest(state.numpy().tobytes())


def _seeded() -> bool:
    if seeding.seeded("torch"):
        return True
    return _entropy_seed[0] is None or _torch().initial_seed() != _entropy_seed[0]


def _fresh() -> None:
    torch = _torch()
    original(torch.seed)()
    _entropy_seed[0] = torch.initial_seed()


def _track(assume_seeded: bool) -> None:
    torch = _torch()
    seeding.mark("torch", assume_seeded)
    _entropy_seed[0] = None if assume_seeded else torch.initial_seed()

    def reseeded(args: Any, kwargs: Any) -> None:
        seeding.mark("torch", False)
        _entropy_seed[0] = torch.initial_seed()

    for module in (torch, torch.random):
        wrap(module, "manual_seed", lambda args, kwargs: seeding.mark("torch", True))
        wrap(module, "set_rng_state", lambda args, kwargs: seeding.mark("torch", True))
        wrap(module, "seed", reseeded)


register(
    GeneratorProvider(
        "torch",
        capture=lambda: _torch().get_rng_state(),
        restore=lambda state: original(_torch().set_rng_state)(state),
        module="torch",
        description="torch's global CPU generator state",
        digest=_tensor_digest,
        seeded=_seeded,
        fresh=_fresh,
        seeds=frozenset({"manual_seed", "set_rng_state", "seed"}),
        reads=frozenset({"get_rng_state"}),
        track=_track,
    )
)


def _cuda_states() -> Any:
    cuda = _torch().cuda
    # Only once CUDA is in use: reading its generators would initialise it.
    return list(cuda.get_rng_state_all()) if cuda.is_available() and cuda.is_initialized() else ABSENT


register(
    GeneratorProvider(
        "torch.cuda",
        capture=_cuda_states,
        restore=lambda states: _torch().cuda.set_rng_state_all(states),
        module="torch",
        description="torch's CUDA generator states",
        digest=_tensor_digest,
        seeded=_seeded,  # torch.manual_seed and torch.seed seed every device
        fresh=lambda: _torch().cuda.seed_all(),
        seeds=frozenset({"manual_seed", "manual_seed_all", "set_rng_state_all", "seed", "seed_all"}),
        reads=frozenset({"get_rng_state_all", "get_rng_state"}),
    )
)

register(
    StateProvider(
        "torch.default_dtype",
        capture=lambda: _torch().get_default_dtype(),
        restore=lambda dtype: _torch().set_default_dtype(dtype),
        module="torch",
        description="torch's default dtype",
        digest=str,
    )
)


def _deterministic() -> tuple[bool, bool]:
    torch = _torch()
    return bool(torch.are_deterministic_algorithms_enabled()), bool(torch.is_deterministic_algorithms_warn_only_enabled())


register(
    StateProvider(
        "torch.deterministic",
        capture=_deterministic,
        restore=lambda flags: _torch().use_deterministic_algorithms(flags[0], warn_only=flags[1]),
        module="torch",
        description="torch's deterministic algorithms setting",
    )
)
