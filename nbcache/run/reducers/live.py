"""Live objects of a few libraries, whose own pickling does not give back what the cell left
behind. Registered with :data:`~nbcache.run.reducers.REDUCERS` by base class, so that a
notebook's own subclasses go the same way; consulted only once the library is imported (nothing
here imports it):

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

from typing import Any

from .. import widgets
from . import REDUCERS

__all__: list[str] = []  # reducers registered with REDUCERS; nothing to import from here


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


REDUCERS.register_base("ipywidgets.widgets.widget", "Widget", lambda obj, memo: widgets.reduce_widget(obj))
REDUCERS.register_base("plotly.basedatatypes", "BaseFigure", lambda obj, memo: _reduce_plotly(obj))
REDUCERS.register_base("bokeh.model", "Model", lambda obj, memo: _reduce_bokeh(obj))
