"""The type-encoder registry: how a value of each type is fingerprinted, decided in one place.

Three places classify a value and must agree: the walk (which encoder writes it), the hashing
pickler (what an object inside another object's pickle is replaced with) and
:func:`~.pickled.takes_pickle_path`. All three ask :meth:`Registry.kind` for the value's
:class:`Kind`. It is resolved once per type, in this order:

1. a type registered exactly: the scalars and containers, ``numpy.ndarray``, ``pandas.DataFrame``,
   and the types given to :func:`nbcache.register_fingerprint`;
2. a class registered with its subclasses (:meth:`Registry.register_subclasses`), by the type's
   MRO: a type given to ``register_fingerprint``, and the library classes that notebooks subclass
   (``torch.nn.Module``), which decide for each subclass whether their encoding still holds;
3. a plain instance, which pickles as class + ``__dict__`` and is walked as such;
4. a type of a library with an adapter: :meth:`Registry.register_lazy` names the adapter module,
   imported the first time a type of that library (or a class derived from one) is seen, so
   nothing is imported that the notebook did not import; then the first class of the type's MRO
   that the library registered with :meth:`Registry.register_base`. Only the library's own types
   match its bases: a subclass defined elsewhere (a ``DataFrame`` subclass with ``_metadata``)
   may hold state the library's encoder does not know, and goes through pickle, which keeps it;
5. Python's own kinds (:mod:`.objects`): code, methods, partials, wrappers, and pickle for the
   rest. These are told by the value, not only its type, as ``isinstance`` tells them: a proxy
   (``weakref.proxy``, wrapt's ``FunctionWrapper``) of a function is a function here.

A registration by name (:meth:`Registry.register_named`, ``"shapely.Polygon"``) waits, like an
adapter, until its library is imported. Registrations made for users (``user=True``) win over the
adapters' own, even when the adapter is imported later.
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Union

from ...errors import NbCacheWarning

__all__ = ["REGISTRY", "Encoder", "Kind", "Registry", "StandIn", "own_fingerprint"]

if TYPE_CHECKING:
    from .core import Fingerprinter, _Walk

Encoder = Callable[["_Walk", Any], None]
StandIn = Callable[["Fingerprinter", Any], bytes]


def own_fingerprint(fp: Fingerprinter, obj: Any) -> bytes:
    """The stand-in of most registered types inside a pickle: the object's own fingerprint."""
    return fp.stand_in_digest(obj)


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
        # Classes whose subclasses, from anywhere, get a kind decided per subclass (None: not here).
        self._subclasses: dict[type, Callable[[type], Kind | None]] = {}
        self._user: set[type] = set()  # registered for users: the adapters do not replace them
        self._adapters: dict[str, str] = {}  # library -> adapter module, until it is imported
        self._named: dict[str, list[tuple[str, Kind]]] = {}  # library -> (dotted name, kind), until imported
        self._libraries: set[str] = set()
        # Weak: a notebook redefines its classes over and over.
        self._resolved: weakref.WeakKeyDictionary[type, _Resolved] = weakref.WeakKeyDictionary()
        # Python's own kinds, filled in by .objects: the kind of a plain class's instances (None
        # for another class), and the kind of any other value.
        self.plain: Callable[[type], Kind | None] = lambda t: None
        self.python: Callable[[Any], Kind] = _unset

    def register(self, cls: type, kind: Kind, *, user: bool = False) -> None:
        """Values of exactly ``cls`` (not of its subclasses) are ``kind``."""
        if cls in self._user and not user:
            return  # a user's registration stands over the adapter's, whichever came first
        if user:
            self._user.add(cls)
        self.exact[cls] = kind
        self.exact_encoders[cls] = kind.encode
        self._resolved.clear()

    def register_base(self, cls: type, kind: Kind) -> None:
        """Values of ``cls`` and of its subclasses from the same library are ``kind``."""
        self._bases.setdefault(_library(cls), {})[cls] = kind
        self._resolved.clear()

    def register_subclasses(self, cls: type, decide: Callable[[type], Kind | None], *, user: bool = False) -> None:
        """Values of subclasses of ``cls`` defined anywhere are ``decide(subclass)``, unless that
        is None (a subclass that, say, pickles its own way)."""
        if cls in self._user and not user:
            return
        self._subclasses[cls] = decide
        self._resolved.clear()

    def register_user(self, cls: type, kind: Kind) -> None:
        """``kind`` for ``cls`` and its subclasses, over anything an adapter registers for them."""
        self.register(cls, kind, user=True)
        self.register_subclasses(cls, lambda t: kind, user=True)

    def register_lazy(self, library: str, adapter: str) -> None:
        """The types of ``library`` are registered by the module ``adapter``, imported when a
        value of one of them is first seen. ``library`` is a top-level module name (``"torch"``),
        or a subpackage (``"scipy.sparse"``) whose types alone need the adapter: the library's
        other objects are then treated as any other."""
        self._adapters[library] = adapter
        if "." not in library:
            self._libraries.add(library)
        self._resolved.clear()

    def register_named(self, name: str, kind: Kind) -> None:
        """:meth:`register_user` for the class named ``name`` (``"package.module.Class"``), now if
        its library is imported, else when a value of that library is first seen."""
        library = name.partition(".")[0]
        if library in sys.modules:
            self.register_user(_find_class(name), kind)
            return
        self._named.setdefault(library, []).append((name, kind))
        self._resolved.clear()

    def kind(self, v: Any) -> Kind:
        """The kind of ``v``: resolved once for its type, and for Python's own kinds by ``v``."""
        t = type(v)
        found = self.exact.get(t) or self._resolved.get(t)
        if found is None:
            found = self._resolved[t] = self._resolve(t)
        return found if isinstance(found, Kind) else found(v)

    def _resolve(self, t: type) -> _Resolved:
        self._load(t)
        kind = self.exact.get(t) or self._subclass(t)
        if kind is not None:
            return kind
        library = _library(t)
        if library not in self._libraries:
            return self.plain(t) or self.python
        kind = self.plain(t) or self._base(library, t)
        if kind is not None:
            return _in_library(kind)
        return lambda v: _in_library(self.python(v))

    def _load(self, t: type) -> None:
        """Import the adapters, and resolve the registrations by name, of the libraries of ``t``
        and of its bases (a notebook's ``nn.Module`` subclass needs torch's adapter)."""
        for cls in t.__mro__:
            module = getattr(cls, "__module__", None)
            if not isinstance(module, str):
                continue
            if self._adapters:
                parts = module.split(".")
                for end in range(1, len(parts) + 1):
                    adapter = self._adapters.pop(".".join(parts[:end]), None)
                    if adapter is not None:
                        importlib.import_module(adapter)  # it registers its types (another thread waits)
            for name, kind in self._named.pop(module.partition(".")[0], ()):
                try:
                    self.register_user(_find_class(name), kind)
                except (ImportError, AttributeError, TypeError) as exc:
                    warnings.warn(f"nbcache: register_fingerprint({name!r}): {exc}", NbCacheWarning, stacklevel=2)

    def _subclass(self, t: type) -> Kind | None:
        if self._subclasses:
            for cls in t.__mro__:
                decide = self._subclasses.get(cls)
                if decide is not None:
                    kind = decide(t)
                    if kind is not None:
                        return kind
        return None

    def _base(self, library: str, t: type) -> Kind | None:
        bases = self._bases.get(library, {})
        for cls in t.__mro__:
            kind = bases.get(cls)
            if kind is not None:
                return kind
        return None


def _find_class(name: str) -> type:
    """The class named ``name``: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        if not isinstance(obj, type):
            raise TypeError(f"{name} is not a class")
        return obj
    raise ImportError(f"no module of {name!r} can be imported")


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
