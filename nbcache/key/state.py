"""Interpreter state a later cell can observe, beyond the variables: captured, compared, restored.

A cell can change more than its variables: it can seed or draw from the global random generators
(``random``, ``numpy.random``), change matplotlib's rcParams or style, pandas' display options,
environment variables, or the working directory. A later cell sees those changes, so a hit must
make them too. :func:`snapshot` before and after a miss, :func:`changes` between the two is what
the entry stores, and :func:`apply` replays it on a hit.

Randomness also flows the other way: a cell that draws from a global generator without seeding
it gives a result that depends on the generator's state *before* the cell. Such an entry records
that state's digest as a requirement, checked on lookup (:func:`unmet`).
"""

from __future__ import annotations

import os
import pickle
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import xxhash

from .fingerprint import Fingerprinter

__all__ = ["Snapshot", "apply", "changes", "presentation_requirements", "requirements", "rng_variant", "snapshot", "unmet"]


@dataclass
class Snapshot:
    random_state: Any
    numpy_state: Any
    pandas_options: dict[str, Any] | None
    rc_params: dict[str, Any] | None
    environ: dict[str, str]
    cwd: str
    digests: dict[str, str] = field(default_factory=dict)


def _numpy_state() -> Any:
    np = sys.modules.get("numpy")
    if np is None:
        return None
    return np.random.get_state(legacy=True) if hasattr(np.random, "get_state") else None


def _pandas_options() -> dict[str, Any] | None:
    """pandas' options, read from its registry directly: ``get_option`` would warn about
    deprecated options, in the user's cell."""
    if "pandas" not in sys.modules:
        return None
    from pandas._config import config

    flat: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", config._global_config)]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                stack.append((name + ".", value))
            else:
                flat[name] = value
    return dict(sorted(flat.items()))


# rcParams that say how figures are shown, not how they look: showing the first inline figure
# turns "interactive" on, which must not invalidate every entry stored before it.
_VOLATILE_RC = frozenset({"interactive", "backend", "backend_fallback", "toolbar"})


def _rc_params() -> dict[str, Any] | None:
    if "matplotlib" not in sys.modules:
        return None
    import matplotlib

    return {key: matplotlib.rcParams[key] for key in matplotlib.rcParams if key not in _VOLATILE_RC}


def _state_digest(state: Any) -> str:
    # Generator states are tuples of ints and one uint32 array: pickle encodes them exactly,
    # at C speed (the generic fingerprint walks 625 Python ints).
    return xxhash.xxh3_128_hexdigest(pickle.dumps(state, protocol=5))


def rng_variant(key: str, digests: Mapping[str, str]) -> str:
    """The key of an entry that drew from global generators without seeding them.

    Its result depends on those generators' states before the cell, so the states are part of
    its key: each state keeps its own entry. ``digests``: the states of the generators it drew
    from (see :func:`rng_variants` for the keys to look up).
    """
    parts = [key] + [f"{name}={digests.get(name, '-')}" for name in GENERATORS]
    return xxhash.xxh3_128_hexdigest("\0".join(parts).encode())


def rng_variants(key: str) -> list[str]:
    """The keys an entry of ``key`` may have under the current generator states: drawn from
    ``numpy.random``, from ``random``, from both (an entry that drew from none has ``key``)."""
    digests = {"random": _state_digest(random.getstate())}
    numpy_state = _numpy_state()
    if numpy_state is not None:
        digests["numpy.random"] = _state_digest(numpy_state)
    subsets = [("numpy.random",), ("random",), GENERATORS]
    return [rng_variant(key, {n: digests[n] for n in subset if n in digests}) for subset in subsets if all(n in digests for n in subset)]


def snapshot() -> Snapshot:
    snap = Snapshot(random.getstate(), _numpy_state(), _pandas_options(), _rc_params(), dict(os.environ), os.getcwd())
    snap.digests["random"] = _state_digest(snap.random_state)
    if snap.numpy_state is not None:
        snap.digests["numpy.random"] = _state_digest(snap.numpy_state)
    return snap


def _changed(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    if after is None:
        return {}
    before = before or {}
    fp = Fingerprinter()
    out = {}
    for key, value in after.items():
        if key not in before:
            out[key] = value
            continue
        old = before[key]
        try:
            same = old == value
            if not isinstance(same, bool):
                raise TypeError("ambiguous comparison")
            same = same and type(old) is type(value)
        except Exception:  # noqa: BLE001 - arrays and the like: compare fingerprints
            try:
                same = fp.digest(old) == fp.digest(value)
            except Exception:  # noqa: BLE001 - no fingerprint: assume it changed
                same = False
        if not same:
            out[key] = value
    return out


def changes(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """The state the cell changed, in a picklable form; empty when it changed nothing."""
    out: dict[str, Any] = {}
    if before.digests.get("random") != after.digests.get("random"):
        out["random"] = after.random_state
    # numpy imported by the cell itself counts too: `import numpy as np; np.random.seed(7)` leaves
    # a seeded generator that later cells draw from. (Unseeded, it starts from OS entropy, and the
    # state of that run is as good a start as any other.)
    if after.numpy_state is not None and before.digests.get("numpy.random") != after.digests.get("numpy.random"):
        out["numpy.random"] = after.numpy_state
    for name, b, a in (("pandas", before.pandas_options, after.pandas_options), ("rcParams", before.rc_params, after.rc_params)):
        diff = _changed(b, a)
        if diff:
            out[name] = diff
    env: dict[str, str | None] = {k: v for k, v in after.environ.items() if before.environ.get(k) != v}
    env.update({k: None for k in before.environ if k not in after.environ})
    if env:
        out["environ"] = env
    if before.cwd != after.cwd:
        out["cwd"] = os.path.relpath(after.cwd, before.cwd)
    return out


GENERATORS = ("random", "numpy.random")


def requirements(before: Snapshot, changed: Mapping[str, Any], seeded: bool, observed: Iterable[str] = ()) -> dict[str, str]:
    """Generator states the result depends on: those of the global generators the cell drew
    from without seeding them (see :func:`rng_variant`). Only those: ``random``'s state differs
    in every new kernel, and a cell that draws from a seeded ``numpy.random`` must still hit.
    A cell that reads a state without drawing depends on it too (``observed``: the generators
    whose ``getstate``/``get_state`` it calls)."""
    observed = set(observed)
    if seeded and not observed:
        return {}
    return {
        name: before.digests[name]
        for name in GENERATORS
        if (name in observed or (name in changed and not seeded)) and name in before.digests
    }


def _mapping_digest(mapping: Mapping[str, Any] | None) -> str:
    try:  # options are plain values: pickle encodes them exactly, at C speed
        return xxhash.xxh3_128_hexdigest(pickle.dumps(mapping, protocol=5))
    except Exception:  # noqa: BLE001
        return Fingerprinter().digest(mapping).hex()


def presentation_requirements(snap: Snapshot) -> dict[str, str]:
    """pandas options and matplotlib rcParams in force before the cell: they shape how tables
    print and how figures look, so an entry is valid only under the same ones."""
    required = {}
    if snap.pandas_options is not None:
        required["pandas.options"] = _mapping_digest(snap.pandas_options)
    if snap.rc_params is not None:
        required["rcParams"] = _mapping_digest(snap.rc_params)
    return required


def unmet(required: Mapping[str, str]) -> list[str]:
    """Requirements the current state does not meet (described for --explain)."""
    if not required:
        return []
    missing = []
    if "random" in required and _state_digest(random.getstate()) != required["random"]:
        missing.append("the global random state differs (the cell draws from it without seeding)")
    if "numpy.random" in required:
        state = _numpy_state()
        if state is None or _state_digest(state) != required["numpy.random"]:
            missing.append("the global numpy.random state differs (the cell draws from it without seeding)")
    if "pandas.options" in required and _mapping_digest(_pandas_options()) != required["pandas.options"]:
        missing.append("pandas options differ")
    if "rcParams" in required and _mapping_digest(_rc_params()) != required["rcParams"]:
        missing.append("matplotlib rcParams differ")
    if "cwd" in required and os.getcwd() != required["cwd"]:
        missing.append(f"the working directory is {os.getcwd()}, not {required['cwd']} (the cell reads by relative path)")
    return missing


def apply(changed: Mapping[str, Any]) -> None:
    """Make the state changes a cell made (on a hit)."""
    if "random" in changed:
        random.setstate(changed["random"])
    if "numpy.random" in changed:
        import numpy as np

        np.random.set_state(changed["numpy.random"])
    # Options and rcParams: set only what differs from now. A cell that imports pandas or
    # matplotlib itself records every option as changed; a hit should not re-set them all.
    if "pandas" in changed:
        import warnings

        import pandas as pd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for key, value in _changed(_pandas_options(), changed["pandas"]).items():
                try:
                    pd.set_option(key, value)
                except Exception:  # noqa: BLE001 - an option this pandas no longer has
                    continue
    if "rcParams" in changed:
        import matplotlib

        rc: Any = matplotlib.rcParams  # typed with literal keys; ours are plain strings
        rc.update(_changed(_rc_params(), changed["rcParams"]))
    for key, value in (changed.get("environ") or {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if "cwd" in changed:
        os.chdir(changed["cwd"])
