"""Python's own kinds of objects: plain instances, code, methods, partials, wrappers, the rest.

A plain instance (one that pickles as nothing but its class and ``__dict__``) is walked as class +
``__dict__``, which is what its pickle holds, ten times faster than pickling it. Functions,
classes and modules are encoded by :mod:`.code`; a bound method as its function and its object;
a ``functools.partial`` as its function and arguments; a wrapper (``lru_cache``, anything with a
``__wrapped__``) as its type and the wrapped function, since it pickles by name only. Everything
else goes through pickle (:mod:`.pickled`).

:func:`plain_kind` and :func:`python_kind` are what the registry asks for the types that no
registration decides (see :mod:`.registry`).
"""

from __future__ import annotations

import functools
import types
import weakref
from typing import Any

from .code import _code_like_digest
from .core import _INSTANCE, _METHOD, _PARTIAL, _WRAPPER, _qualname, _Walk
from .pickled import _pickled
from .registry import REGISTRY, Kind

__all__ = ["CODE_TYPES", "plain_kind", "python_kind"]

# Instances of these (and of metaclasses) are code, encoded by .code.
CODE_TYPES = (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType)

_PLAIN: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _plain_class(t: type) -> bool:
    """Whether instances of ``t`` pickle as nothing but their class and ``__dict__`` (no reduce
    or state hooks, no slots, not a subclass of a builtin container)."""
    plain = _PLAIN.get(t)
    if plain is None:
        try:
            plain = (
                t.__reduce_ex__ is object.__reduce_ex__
                and t.__reduce__ is object.__reduce__
                and getattr(t, "__getstate__", None) is getattr(object, "__getstate__", None)
                and not hasattr(t, "__getnewargs_ex__")
                and not hasattr(t, "__getnewargs__")
                and t.__dictoffset__ != 0
                and all(b is object or (b.__module__ != "builtins" and "__slots__" not in vars(b)) for b in t.__mro__)
            )
            _PLAIN[t] = plain
        except TypeError:  # not weak-referenceable
            return False
    return plain


def _instance(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_INSTANCE)
    w.update(_code_like_digest(w.fp, type(v)))
    w.value(v.__dict__)


def _code_value(w: _Walk, v: Any) -> None:
    w.update(_code_like_digest(w.fp, v))


def _method(w: _Walk, v: types.MethodType) -> None:
    if w.remember(v):
        return
    w.tag(_METHOD)
    w.value(v.__func__)
    w.value(v.__self__)


def _wrapper(w: _Walk, v: Any) -> None:
    if w.remember(v):
        return
    w.tag(_WRAPPER)
    w.text(_qualname(type(v)))
    w.value(v.__wrapped__)
    params = getattr(v, "cache_parameters", None)
    w.value(params() if callable(params) else None)


def _partial(w: _Walk, v: functools.partial[Any]) -> None:
    if w.remember(v):
        return
    w.tag(_PARTIAL)
    w.value(v.func)
    w.value(v.args)
    w.value(v.keywords)


# Inside a pickle only code stands as its own digest (a wrapper does too, whatever its kind: see
# _HashingPickler); the rest is pickled as usual.
_PLAIN_KIND = Kind(_instance, stand_in=None)
_CODE_KIND = Kind(_code_value, stand_in=_code_like_digest)
_METHOD_KIND = Kind(_method, stand_in=None)
_PARTIAL_KIND = Kind(_partial, stand_in=None)
_WRAPPER_KIND = Kind(_wrapper, stand_in=None, pickled=True)
_PICKLED_KIND = Kind(_pickled, stand_in=None, pickled=True)
# ``pickled`` keeps what takes_pickle_path has always said, which is only roughly whether the
# encoding goes through pickle: True for a wrapper (whose pickle digest then comes out None), False
# for every partial, one with a __wrapped__ (encoded as a wrapper) and a subclass (which may add
# state, so it goes through pickle) too. It decides which pickle digests an entry's manifest holds.
_WRAPPED_PARTIAL_KIND = Kind(_wrapper, stand_in=None)
_PARTIAL_SUBCLASS_KIND = Kind(_pickled, stand_in=None)


def plain_kind(t: type) -> Kind | None:
    return _PLAIN_KIND if _plain_class(t) else None


def python_kind(v: Any) -> Kind:
    """The kind of a value no registration decides, by ``isinstance``, which sees a proxy's
    ``__class__``: a ``weakref.proxy`` of a function is encoded as the function."""
    if isinstance(v, CODE_TYPES):
        return _CODE_KIND
    if isinstance(v, types.MethodType):
        return _METHOD_KIND
    if callable(v) and getattr(v, "__wrapped__", None) is not None:
        return _WRAPPED_PARTIAL_KIND if isinstance(v, functools.partial) else _WRAPPER_KIND
    if type(v) is functools.partial:
        return _PARTIAL_KIND
    return _PARTIAL_SUBCLASS_KIND if isinstance(v, functools.partial) else _PICKLED_KIND


REGISTRY.plain = plain_kind
REGISTRY.python = python_kind
