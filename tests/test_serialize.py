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
    out, _ = roundtrip({"p": p, "view": ns["base"]}, ns, {"P": ns["P"], "base": ns["base"]})
    assert type(out["p"]) is ns["P"] and out["view"] is ns["base"]


def test_missing_reference_is_a_corrupt_entry() -> None:
    ns: dict = {"base": [1]}
    frames = dump_values({"view": ns["base"]}, namespace=ns, refs={"base": ns["base"]})
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


def test_references_are_resolved_by_name_even_past_256_of_them() -> None:
    # 300 references: memo indices past one byte; each resolves against the namespace it loads in
    before = {"__name__": "__main__", **{f"v{i}": [i] for i in range(300)}}
    values = {"pairs": [(before[f"v{i}"], [i]) for i in range(300)]}
    frames = dump_values(values, namespace=before, refs={f"v{i}": before[f"v{i}"] for i in range(300)})
    blob = io.BytesIO(b"".join(bytes(c) for c in frames.chunks()))
    later = {"__name__": "__main__", **{f"v{i}": [i] for i in range(300)}}  # equal values, other objects
    out = load_values(read_frames(blob), namespace=later)
    assert all(ref is later[f"v{i}"] and new == [i] and new is not later[f"v{i}"] for i, (ref, new) in enumerate(out["pairs"]))


def test_one_object_under_two_names_and_the_namespace_itself() -> None:
    shared = {"k": 1}
    ns: dict = {"__name__": "__main__", "a": shared, "b": shared}
    out, _ = roundtrip({"x": [shared, shared, {"inner": shared}], "g": ns, "fresh": [[1], [1]]}, ns, {"a": shared, "b": shared})
    assert out["x"][0] is out["x"][1] is out["x"][2]["inner"] is shared
    assert out["g"] is ns and out["fresh"] == [[1], [1]]


def test_object_heavy_values_keep_their_aliases_to_earlier_objects() -> None:
    ns: dict = {"__name__": "__main__"}
    exec("class Tag:\n    def __init__(self, n):\n        self.n = n\nlookup = {'a': 1}\n", ns)
    records = [{"id": i, "tag": ns["Tag"](i % 3), "lookup": ns["lookup"], "words": [f"w{i}", "x"]} for i in range(50_000)]
    out, _ = roundtrip({"records": records}, ns, {"Tag": ns["Tag"], "lookup": ns["lookup"]})
    assert len(out["records"]) == 50_000 and out["records"][7]["words"] == ["w7", "x"]
    assert all(r["lookup"] is ns["lookup"] and type(r["tag"]) is ns["Tag"] for r in out["records"])


def test_the_collectors_setting_is_left_as_it_was() -> None:
    import gc

    ns: dict = {"__name__": "__main__"}
    try:
        for enabled in (True, False):
            gc.enable() if enabled else gc.disable()
            roundtrip({"rows": [{"i": i} for i in range(1000)]}, ns)
            assert gc.isenabled() is enabled
            with pytest.raises(UnpicklableError):
                dump_values({"lock": threading.Lock()}, namespace={}, refs={})
            assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_a_large_pickle_is_spooled_to_a_file_and_read_back_in_chunks(tmp_path) -> None:
    from nbcache.store.frames import CHUNK, SPOOL_MEMORY

    values = {"words": [f"word-{i}" for i in range(600_000)]}
    frames = dump_values(values, namespace={}, refs={}, spool=str(tmp_path))
    with frames:
        spool = frames.pickle
        assert spool.spilled and spool.nbytes > SPOOL_MEMORY  # type: ignore[union-attr]
        sizes = [len(c) for c in spool.chunks()]  # type: ignore[union-attr]
        assert len(sizes) > 1 and max(sizes) <= CHUNK and sum(sizes) == spool.nbytes  # type: ignore[union-attr]
        blob = b"".join(bytes(c) for c in frames.chunks())
        assert len(blob) == frames.size
        assert load_values(read_frames(io.BytesIO(blob)), namespace={}) == values
    assert list(tmp_path.iterdir()) == []  # the spool has no name: nothing is left behind
