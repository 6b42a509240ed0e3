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
