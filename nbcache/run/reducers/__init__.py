"""Reducers: how the values pickler writes objects whose library pickles them slowly or in band,
and how a restored one of them updates a live one in place.

Two kinds of entries. Out-of-band data: torch pickles a tensor through ``torch.save`` into
bytes, and polars a frame through its own serialization into bytes: either way the data is
copied into the pickle, and read back by copying again. A reducer instead hands the data to pickle protocol 5 as out-of-band buffers,
which the store writes as frames and maps back copy-on-write on a hit (as numpy arrays are).

Live objects (:mod:`.live`): ipywidgets widgets, plotly and bokeh figures, whose pickling does not
give back what the cell left; registered by base class (:meth:`Reducers.register_base`), so a
notebook's own subclasses of them go the same way.

One registry, filled per library as the fingerprint's is: :data:`REDUCERS` maps a class (and its
subclasses from the same library) to ``reduce(obj, memo)``, which returns a reduce tuple, or None
for pickle's usual way, and optionally to ``update(live, restored) -> bool``, which makes an
input the cell mutated equal to its restored value without replacing it (a tensor's data is
copied into it, so views of it see the change as they would have). An adapter module is
imported the first time an object of its library is pickled, so nothing is imported that the
notebook did not import.

The hook into a pickler is one object per dump, :meth:`Reducers.session`: call it with each
object from ``reducer_override``; it answers None at the cost of a dict lookup for every type
nobody reduces. ``memo`` is one dict per dump that reducers may share state in (torch: one
storage object per block of memory, so tensors that share memory share it again after a restore).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

__all__ = ["REDUCERS", "Reducers", "Session"]

Reducer = Callable[[Any, dict[Any, Any]], Any]
Updater = Callable[[Any, Any], bool]


class Reducers:
    def __init__(self) -> None:
        self._by_class: dict[type, Reducer] = {}
        self._updaters: dict[type, Updater] = {}
        self._adapters: dict[str, str] = {}  # library -> adapter module, until it is imported
        self._libraries: set[str] = set()
        self._bases: list[tuple[str, str, Reducer]] = []  # (module, class name, reduce), any subclass

    def register(self, cls: type, reduce: Reducer, *, update: Updater | None = None) -> None:
        """Objects of ``cls``, and of its subclasses from the same library, go through ``reduce``
        (and are updated in place by ``update``)."""
        self._by_class[cls] = reduce
        if update is not None:
            self._updaters[cls] = update
        self._libraries.add(_library(cls))

    def register_lazy(self, library: str, adapter: str) -> None:
        """The reducers of ``library`` (a top-level module name) are registered by ``adapter``."""
        self._adapters[library] = adapter
        self._libraries.add(library)

    def register_base(self, module: str, class_name: str, reduce: Reducer) -> None:
        """Objects of ``module.class_name`` and of every subclass, wherever it is defined (a
        notebook's own widget class), go through ``reduce``; asked only once ``module`` is imported."""
        self._bases.append((module, class_name, reduce))

    def session(self) -> Session:
        return Session(self)

    def find(self, t: type) -> Reducer | None:
        return self._lookup(self._by_class, t) or self._base_for(t)

    def _base_for(self, t: type) -> Reducer | None:
        for module_name, class_name, reduce in self._bases:
            module = sys.modules.get(module_name)
            base = getattr(module, class_name, None) if module is not None else None
            if isinstance(base, type) and issubclass(t, base):
                return reduce
        return None

    def updater(self, t: type) -> Updater | None:
        """How to update a live object of type ``t`` in place, if its library says."""
        return self._lookup(self._updaters, t)

    def _lookup(self, table: dict[type, Any], t: type) -> Any:
        library = _library(t)
        if library not in self._libraries:
            return None
        adapter = self._adapters.pop(library, None)
        if adapter is not None:
            importlib.import_module(adapter)
        for cls in t.__mro__:
            found = table.get(cls)
            if found is not None:
                return found
        return None


class Session:
    """The reducers for one dump: ``session(obj)`` is a reduce tuple or None.

    A pickler that meets many objects can skip the call: :attr:`known` maps every type seen so
    far to its reducer (None: pickle's usual way), and :meth:`reducer_for` looks a new one up."""

    __slots__ = ("_registry", "known", "memo")

    def __init__(self, registry: Reducers):
        self._registry = registry
        self.known: dict[type, Reducer | None] = {}  # this dump's types only: nothing outlives it
        self.memo: dict[Any, Any] = {}

    def reducer_for(self, t: type) -> Reducer | None:
        try:
            return self.known[t]
        except KeyError:
            found = self.known[t] = self._registry.find(t)
            return found

    def __call__(self, obj: Any) -> Any:
        reduce = self.reducer_for(type(obj))
        return None if reduce is None else reduce(obj, self.memo)


def _library(t: type) -> str:
    module = getattr(t, "__module__", None)
    return module.partition(".")[0] if isinstance(module, str) else ""


REDUCERS = Reducers()
REDUCERS.register_lazy("torch", f"{__name__}.torch")
REDUCERS.register_lazy("polars", f"{__name__}.polars")

from . import live  # noqa: E402,F401 - widgets, plotly and bokeh figures (registers by base class)
from . import closed  # noqa: E402,F401 - files closed by `with open(...) as fh` (registers io classes)
