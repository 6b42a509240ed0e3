"""The type-encoder registry: how a value of each type is fingerprinted, decided in one place.

Three places classify a value and must agree: the walk (which encoder writes it), the hashing
pickler (what an object inside another object's pickle is replaced with) and
:func:`~.pickled.takes_pickle_path`. All three ask :meth:`Registry.kind` for the value's
:class:`Kind`. It is resolved once per type, in this order:

1. a type registered exactly: the scalars and containers, ``numpy.ndarray``, ``pandas.DataFrame``;
2. a plain instance, which pickles as class + ``__dict__`` and is walked as such;
3. a type of a library with an adapter: :meth:`Registry.register_lazy` names the adapter module,
   imported the first time a type of that library is seen (so nothing is imported that the
   notebook did not import); then the first class of the type's MRO that the library registered
   with :meth:`Registry.register_base`. Only the library's own types match its bases: a subclass
   defined elsewhere (a ``DataFrame`` subclass with ``_metadata``) may hold state the library's
   encoder does not know, and goes through pickle, which keeps it;
4. Python's own kinds (:mod:`.objects`): code, methods, partials, wrappers, and pickle for the
   rest. These are told by the value, not only its type, as ``isinstance`` tells them: a proxy
   (``weakref.proxy``, wrapt's ``FunctionWrapper``) of a function is a function here.

A user-facing ``register_fingerprint(type_or_name, fn)`` is meant to be a thin layer over this:
:meth:`Registry.register` for a type, :meth:`Registry.register_lazy` for a library not imported yet.
"""

from __future__ import annotations

import functools
import importlib
import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Union

__all__ = ["REGISTRY", "Encoder", "Kind", "Registry", "StandIn", "own_fingerprint"]

if TYPE_CHECKING:
    from .core import Fingerprinter, _Walk

Encoder = Callable[["_Walk", Any], None]
StandIn = Callable[["Fingerprinter", Any], bytes]


def own_fingerprint(fp: Fingerprinter, obj: Any) -> bytes:
    """The stand-in of most registered types inside a pickle: the object's own fingerprint."""
    return fp.digest(obj)


@dataclass(frozen=True, slots=True)
class Kind:
    """How the values of one type (or one value of Python's own kinds) are fingerprinted."""

    encode: Encoder
    # What the object is replaced with inside another object's pickle, or None for its pickle as
    # usual. By default its own fingerprint: a library's pickle of it need not be canonical (a
    # frame pickles its block layout), and its encoder is the one that knows what is its value.
    stand_in: StandIn | None = own_fingerprint
    # Whether it is encoded through its pickle, so that a pickle round trip may change its
    # fingerprint (:func:`~.pickled.takes_pickle_path`).
    pickled: bool = False


# What a type resolves to: a Kind, or, for Python's own kinds, a function of the value.
_Resolved = Union[Kind, Callable[[Any], Kind]]


class Registry:
    """Types -> :class:`Kind`: exact registrations, library adapters loaded lazily, and the rest."""

    def __init__(self) -> None:
        self.exact: dict[type, Kind] = {}
        # The encoders of the exact types, read by the walk before anything else: the scalars and
        # containers are most of what it sees.
        self.exact_encoders: dict[type, Encoder] = {}
        self._bases: dict[str, dict[type, Kind]] = {}  # library -> base class -> kind
        self._adapters: dict[str, str] = {}  # library -> adapter module, until it is imported
        self._libraries: set[str] = set()
        # Weak: a notebook redefines its classes over and over.
        self._resolved: weakref.WeakKeyDictionary[type, _Resolved] = weakref.WeakKeyDictionary()
        # Python's own kinds, filled in by .objects: the kind of a plain class's instances (None
        # for another class), and the kind of any other value.
        self.plain: Callable[[type], Kind | None] = lambda t: None
        self.python: Callable[[Any], Kind] = _unset

    def register(self, cls: type, kind: Kind) -> None:
        """Values of exactly ``cls`` (not of its subclasses) are ``kind``."""
        self.exact[cls] = kind
        self.exact_encoders[cls] = kind.encode
        self._resolved.clear()

    def register_base(self, cls: type, kind: Kind) -> None:
        """Values of ``cls`` and of its subclasses from the same library are ``kind``."""
        self._bases.setdefault(_library(cls), {})[cls] = kind
        self._resolved.clear()

    def register_lazy(self, library: str, adapter: str) -> None:
        """The types of ``library`` (a top-level module name) are registered by the module
        ``adapter``, imported when a value of one of them is first seen."""
        self._adapters[library] = adapter
        self._libraries.add(library)
        self._resolved.clear()

    def kind(self, v: Any) -> Kind:
        """The kind of ``v``: resolved once for its type, and for Python's own kinds by ``v``."""
        t = type(v)
        found = self.exact.get(t) or self._resolved.get(t)
        if found is None:
            found = self._resolved[t] = self._resolve(t)
        return found if isinstance(found, Kind) else found(v)

    def _resolve(self, t: type) -> _Resolved:
        library = _library(t)
        if library not in self._libraries:
            return self.plain(t) or self.python
        adapter = self._adapters.get(library)
        if adapter is not None:
            importlib.import_module(adapter)  # it registers its types (another thread waits)
            self._adapters.pop(library, None)
        kind = self.exact.get(t) or self.plain(t) or self._base(library, t)
        if kind is not None:
            return _in_library(kind)
        return lambda v: _in_library(self.python(v))

    def _base(self, library: str, t: type) -> Kind | None:
        bases = self._bases.get(library, {})
        for cls in t.__mro__:
            kind = bases.get(cls)
            if kind is not None:
                return kind
        return None


@functools.lru_cache(maxsize=None)
def _in_library(kind: Kind) -> Kind:
    """``kind`` for an object of a library with an adapter: every such object, encoded by the
    adapter or not, stands as its own fingerprint inside a pickle, and is trusted to come back
    from a pickle round trip with the same one (an adapter's own kinds already are)."""
    if kind.stand_in is not None and not kind.pickled:
        return kind
    return replace(kind, stand_in=kind.stand_in or own_fingerprint, pickled=False)


def _library(t: type) -> str:
    module = getattr(t, "__module__", None)
    return module.partition(".")[0] if isinstance(module, str) else ""


def _unset(v: Any) -> Kind:  # pragma: no cover - replaced when the package is imported
    raise RuntimeError("nbcache.key.fingerprint.objects was not imported")


REGISTRY = Registry()
