"""``nbcache.register_fingerprint``: how values of a type of yours (or a library's) are fingerprinted.

The function given returns a *token*: anything nbcache can fingerprint (bytes, strings, numbers,
tuples, arrays, frames...) that is equal for two values exactly when the values are equal for
what a cell may do with them. The value's fingerprint is its class's qualified name plus the
token's fingerprint. Like the adapters nbcache ships, a registration by name waits until the
library is imported, so registering costs nothing in a notebook that never uses it.
"""

from __future__ import annotations

from typing import Any, Callable

from ...errors import FingerprintError
from .core import _USER, _qualname, _Walk
from .registry import REGISTRY, Kind

__all__ = ["register_fingerprint"]


def register_fingerprint(type_or_name: type | str, fn: Callable[[Any], Any]) -> None:
    """Fingerprint values of ``type_or_name`` and of its subclasses by ``fn(value)``.

    ``type_or_name`` is a class, or the dotted name of one (``"shapely.Polygon"``) when its
    library may not be imported yet. ``fn`` returns anything nbcache can fingerprint; it must be
    deterministic (no ids, no addresses, no iteration over a set of strings) so that the same
    value gives the same key in every kernel. A registration replaces nbcache's own encoding of
    that type and the previous registration of it.
    """
    if not callable(fn):
        raise TypeError(f"nbcache: register_fingerprint needs a function, not {type(fn).__qualname__}")
    if isinstance(type_or_name, str):
        if "." not in type_or_name.strip("."):
            raise ValueError(f"nbcache: register_fingerprint needs a dotted name such as 'package.Class', not {type_or_name!r}")
        try:
            REGISTRY.register_named(type_or_name, _kind(type_or_name, fn))
        except (ImportError, AttributeError, TypeError) as exc:  # its library is imported: told now
            raise ValueError(f"nbcache: register_fingerprint({type_or_name!r}): {exc}") from None
    elif isinstance(type_or_name, type):
        if REGISTRY.exact.get(type_or_name) is not None and REGISTRY.exact[type_or_name].stand_in is None:
            raise ValueError(f"nbcache: the fingerprint of {type_or_name.__qualname__} is built in and cannot be replaced")
        REGISTRY.register_user(type_or_name, _kind(_qualname(type_or_name), fn))
    else:
        raise TypeError(f"nbcache: register_fingerprint needs a class or a dotted name, not {type(type_or_name).__qualname__}")


def _kind(name: str, fn: Callable[[Any], Any]) -> Kind:
    def encode(w: _Walk, v: Any) -> None:
        if w.remember(v):
            return
        try:
            token = fn(v)
        except FingerprintError:
            raise
        except Exception as exc:
            raise FingerprintError(
                f"the fingerprint function registered for {name} raised {type(exc).__name__}: {exc}",
                type_name=type(v).__qualname__,
            ) from exc
        if token is v:
            raise FingerprintError(
                f"the fingerprint function registered for {name} returned the value itself",
                type_name=type(v).__qualname__,
            )
        w.tag(_USER)
        w.text(_qualname(type(v)))
        w.value(token)

    return Kind(encode)
