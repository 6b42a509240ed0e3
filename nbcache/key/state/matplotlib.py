"""matplotlib's rcParams (``plt.rcParams[...]``, ``plt.style.use``, ``plt.rc``): how figures look.

Only a cell that reads rcParams depends on them (drawing a figure reads dozens): while a cell runs,
the rcParams object is switched to a subclass that notes reads, as ``os.environ`` is for the
environment (see :mod:`nbcache.key.deps`). A cell that never plots does not miss because an
earlier cell changed the style.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator

from .registry import StateProvider, changed_items, mapping_delta, pickle_digest, reads_noted, register

__all__: list[str] = []

# rcParams that say how figures are shown, not how they look: showing the first inline figure
# turns "interactive" on, which must not invalidate every entry stored before it.
_VOLATILE = frozenset({"interactive", "backend", "backend_fallback", "toolbar"})


def _params() -> dict[str, Any]:
    rc = sys.modules["matplotlib"].rcParams
    return {key: rc._get(key) for key in rc if key not in _VOLATILE}


def _digest(params: dict[str, Any]) -> str:
    # A Cycler keeps its keys in a set, whose pickle follows string hashes, which differ in every
    # process; its repr is canonical.
    return pickle_digest({k: repr(v) if type(v).__name__ == "Cycler" else v for k, v in params.items()})


def _restore(params: dict[str, Any]) -> None:
    rc: Any = sys.modules["matplotlib"].rcParams  # typed with literal keys; ours are plain strings
    rc.update(changed_items(_params(), params))


@contextlib.contextmanager
def _observe() -> Iterator[Callable[[], bool]]:
    rc = sys.modules["matplotlib"].rcParams
    base = type(rc)
    seen = [False]

    class Recording(base):  # type: ignore[valid-type, misc]
        def _get(self, key: Any) -> Any:
            if key not in _VOLATILE and self is rc:
                seen[0] = True
            return super()._get(key)

    Recording.__name__ = Recording.__qualname__ = base.__name__
    Recording.__module__ = base.__module__
    with reads_noted(rc, Recording, seen) as read:
        yield read


register(
    StateProvider(
        "matplotlib.rcParams",
        _params,
        _restore,
        module="matplotlib",
        description="matplotlib rcParams",
        delta=mapping_delta,
        digest=_digest,
        observe=_observe,
    )
)
