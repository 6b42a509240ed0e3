"""How values of a few libraries are stored, where their own pickling does not give back what the
cell left behind. A registry filled per library, consulted only for types of libraries already
imported (nothing here imports them):

- **ipywidgets**: a widget is a live model in the kernel with a view in the frontend; pickling
  copies the Python object without either. It is stored as its state and re-created live on a
  hit (:mod:`nbcache.run.widgets`), the same widget the replayed outputs show.
- **plotly**: a figure pickles through ``to_dict()``, which turns numpy arrays into base64
  strings, and comes back holding those (``fig.data[0].y`` is then a dict, not the array): it is
  stored from the figure's own data, arrays as arrays.
- **bokeh**: models refer to their document through weak references, which pickle refuses; bokeh's
  own serialization (what it sends to the browser) stores them and gives them back, ids and all.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from . import widgets

__all__ = ["loaded_bases", "reduce", "register"]

Reducer = Callable[[Any], Any]
"""Returns a pickle reduce tuple for the object, or None for the default pickling."""

_registry: list[tuple[str, str, Reducer]] = []
# Per type: the reducer, or None. A negative answer stays true when the library is imported later:
# a class defined before a library was imported cannot derive from that library's classes.
_by_type: dict[type, Reducer | None] = {}


def register(module: str, class_name: str, reducer: Reducer) -> None:
    """Store instances of ``module.class_name`` (and subclasses) with ``reducer``."""
    _registry.append((module, class_name, reducer))
    _by_type.clear()


def _lookup(t: type) -> Reducer | None:
    for module_name, class_name, reducer in _registry:
        module = sys.modules.get(module_name)
        base = getattr(module, class_name, None) if module is not None else None
        if isinstance(base, type) and issubclass(t, base):
            return reducer
    return None


def loaded_bases() -> tuple[type, ...]:
    """The registered classes of the libraries imported now: a pickler checks ``isinstance``
    against them (fast, in C) before asking :func:`reduce`, which it does for every object."""
    bases = []
    for module_name, class_name, _ in _registry:
        module = sys.modules.get(module_name)
        base = getattr(module, class_name, None) if module is not None else None
        if isinstance(base, type):
            bases.append(base)
    return tuple(bases)


def reduce(obj: Any) -> Any:
    """A reduce tuple for ``obj`` from the registry, or None."""
    t = type(obj)
    try:
        reducer = _by_type[t]
    except KeyError:
        reducer = _by_type[t] = _lookup(t)
    return None if reducer is None else reducer(obj)


def _reduce_bokeh(model: Any) -> Any:
    from bokeh.core.serialization import Serializer

    rep = Serializer().serialize(model)
    return _bokeh_model, (rep.content, [(b.id, bytes(b.data)) for b in rep.buffers or ()])


def _bokeh_model(content: Any, buffers: list[tuple[str, bytes]]) -> Any:
    from bokeh.core.serialization import Buffer, Deserializer, Serialized
    from bokeh.core.types import ID

    return Deserializer().deserialize(Serialized(content, [Buffer(ID(i), data) for i, data in buffers]))


def _reduce_plotly(figure: Any) -> Any:
    props: dict[str, Any] = {"data": figure._data, "layout": figure._layout}
    frames = [frame._props for frame in figure._frame_objs]
    if frames:
        props["frames"] = frames
    props["_grid_str"], props["_grid_ref"] = figure._grid_str, figure._grid_ref  # as plotly's own __reduce__
    return type(figure), (props,)


register("ipywidgets.widgets.widget", "Widget", widgets.reduce_widget)
register("plotly.basedatatypes", "BaseFigure", _reduce_plotly)
register("bokeh.model", "Model", _reduce_bokeh)
