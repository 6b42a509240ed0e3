"""Values to frames and back: identity, live functions, references, out-of-band buffers."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest

from nbcache.errors import CorruptEntryError, UnpicklableError
from nbcache.run.serialize import dump_values, load_values
from nbcache.store.frames import read_frames


def roundtrip(values, ns, refs=None):
    frames = dump_values(values, namespace=ns, refs=refs or {})
    blob = io.BytesIO(b"".join(bytes(c) for c in frames.chunks()))
    return load_values(read_frames(blob), namespace=ns), frames


def test_shared_objects_stay_shared_and_arrays_go_out_of_band() -> None:
    a = np.arange(100_000.0)
    out, frames = roundtrip({"a": a, "b": a, "pair": [a, 1]}, {})
    assert out["a"] is out["b"] is out["pair"][0]
    assert np.array_equal(out["a"], a) and out["a"].flags.writeable
    assert len(frames.buffers) == 1 and frames.buffers[0].nbytes == a.nbytes


def test_functions_use_the_live_namespace() -> None:
    ns: dict = {"__name__": "__main__"}
    exec("K = 1\ndef f(x):\n    return x + K\n", ns)
    out, _ = roundtrip({"f": ns["f"]}, ns)
    ns["K"] = 100
    assert out["f"](1) == 101 and out["f"].__globals__ is ns
    assert ns["K"] == 100  # restoring did not write old globals back


def test_references_resolve_against_the_namespace() -> None:
    ns: dict = {"__name__": "__main__"}
    exec("class P:\n    pass\nbase = [1]\n", ns)
    p = ns["P"]()
    out, _ = roundtrip({"p": p, "view": ns["base"]}, ns, {id(ns["P"]): "P", id(ns["base"]): "base"})
    assert type(out["p"]) is ns["P"] and out["view"] is ns["base"]


def test_missing_reference_is_a_corrupt_entry() -> None:
    ns: dict = {"base": [1]}
    frames = dump_values({"view": ns["base"]}, namespace=ns, refs={id(ns["base"]): "base"})
    blob = io.BytesIO(b"".join(bytes(c) for c in frames.chunks()))
    with pytest.raises(CorruptEntryError, match="base"):
        load_values(read_frames(blob), namespace={})


def test_unpicklable_value_is_named() -> None:
    with pytest.raises(UnpicklableError) as info:
        dump_values({"ok": 1, "lock": threading.Lock()}, namespace={}, refs={})
    assert info.value.name == "lock" and info.value.type_name == "lock"


def test_truncated_blob_is_corrupt() -> None:
    frames = dump_values({"a": np.arange(10_000.0)}, namespace={}, refs={})
    data = b"".join(bytes(c) for c in frames.chunks())
    with pytest.raises(CorruptEntryError):
        read_frames(io.BytesIO(data[:-10]))
    with pytest.raises(CorruptEntryError):
        read_frames(io.BytesIO(b"XXXX" + data[4:]))


# -- views of arrays that were already there --------------------------------------------------
def test_a_view_of_an_input_is_restored_as_a_view_of_the_live_input() -> None:
    ns = {"x2": np.arange(12).reshape(3, 4)}  # itself a view of arange's array
    refs = {id(ns["x2"]): "x2"}
    out, _ = roundtrip({"x2_sub": ns["x2"][:2, :2], "cols": ns["x2"][:, ::2]}, ns, refs)
    out["x2_sub"][0, 0] = 99
    out["cols"][2, 1] = -1
    assert ns["x2"][0, 0] == 99 and ns["x2"][2, 2] == -1
    assert out["x2_sub"].tolist() == [[99, 1], [4, 5]]


def test_a_view_of_a_non_contiguous_input_is_restored_over_its_memory() -> None:
    ns = {"every_other": np.arange(20.0)[::2]}
    refs = {id(ns["every_other"]): "every_other"}
    out, _ = roundtrip({"tail": ns["every_other"][5:]}, ns, refs)
    out["tail"][0] = -5.0
    assert ns["every_other"][5] == -5.0 and out["tail"].shape == (5,)


def test_a_view_whose_input_is_laid_out_differently_now_is_not_restored() -> None:
    ns = {"grid": np.arange(12.0).reshape(3, 4)}
    frames = dump_values({"row": ns["grid"][1]}, namespace=ns, refs={id(ns["grid"]): "grid"})
    blob = io.BytesIO(b"".join(bytes(c) for c in frames.chunks()))
    fortran = {"grid": np.asfortranarray(np.arange(12.0).reshape(3, 4))}  # the same values, other strides
    with pytest.raises(CorruptEntryError, match="laid out differently"):
        load_values(read_frames(blob), namespace=fortran)


def test_an_array_unrelated_to_the_inputs_is_copied_as_before() -> None:
    ns = {"other": np.zeros(3)}
    base = np.arange(6)
    out, _ = roundtrip({"part": base[1:3]}, ns, {id(ns["other"]): "other"})
    assert out["part"].tolist() == [1, 2] and not np.shares_memory(out["part"], ns["other"])


def test_values_written_before_the_layout_moved_still_restore() -> None:
    # tests/data/values-a05677b.bin: dump_values({"a": arange(10.0), "v": a[2:5], "g": <function>,
    # "items": [...]}) written by a05677b, whose pickles name helpers as nbcache.serialize.*
    import io
    from pathlib import Path

    blob = (Path(__file__).parent / "data" / "values-a05677b.bin").read_bytes()
    assert b"nbcache.serialize" in blob
    values = load_values(read_frames(io.BytesIO(blob)), namespace={})
    assert values["v"].base is values["a"] and list(values["v"]) == [2.0, 3.0, 4.0]
    assert values["g"](1) == 2 and values["items"] == [1, "two", (3.0,)]


def test_a_plotly_figure_comes_back_with_its_arrays() -> None:
    # plotly's own pickle goes through to_dict(), which turns arrays into base64 strings
    import json

    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure(data=[go.Bar(x=["a", "b"], y=np.array([3, 1]))], frames=[go.Frame(data=[go.Bar(y=[1, 2])])])
    back = load_values(dump_values({"fig": fig}, namespace={}, refs={}), namespace={})["fig"]
    assert type(back) is go.Figure and isinstance(back.data[0].y, np.ndarray)
    assert back.data[0].y.tolist() == [3, 1] and len(back.frames) == 1
    assert json.loads(back.to_json()) == json.loads(fig.to_json())


def test_a_bokeh_plot_is_stored_through_bokehs_serialization() -> None:
    import numpy as np
    from bokeh.embed import components
    from bokeh.plotting import figure

    plot = figure(width=200, height=150, title="t")
    plot.line(np.arange(4.0), np.arange(4.0) ** 2)
    components(plot)  # attached to a document, as show() leaves it: plain pickle refuses it now
    back = load_values(dump_values({"plot": plot}, namespace={}, refs={}), namespace={})["plot"]
    assert type(back) is type(plot) and back.id == plot.id and back.title.text == "t"
    assert back.renderers[0].data_source.data["y"].tolist() == [0.0, 1.0, 4.0, 9.0]


def test_values_pickles_are_byte_identical_to_those_written_before_the_layout_moved() -> None:
    # tests/data/values-a05677b-views.bin: these very values, dumped by a05677b (values version 1).
    # The helpers a view pickles as are named by module path, which is part of the on-disk format:
    # the pickle and the buffers are the same bytes; only the framing (version 2 aligns buffers)
    # differs.
    from pathlib import Path

    from nbcache.store.frames import frames_from_buffer

    a = np.arange(10.0)
    values = {"a": a, "v": a[2:5], "t": np.arange(6).reshape(2, 3).T, "items": [1, "two", (3.0,)]}
    now = dump_values(values, namespace={}, refs={})
    then = frames_from_buffer(memoryview((Path(__file__).parent / "data" / "values-a05677b-views.bin").read_bytes()))
    assert bytes(now.pickle) == bytes(then.pickle)
    assert [bytes(b) for b in now.buffers] == [bytes(b) for b in then.buffers]
