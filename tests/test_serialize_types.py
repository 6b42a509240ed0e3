"""Library values through the values pickler and back (nbcache.run.reducers): torch tensors,
modules and optimizers, polars frames, Arrow data, scipy.sparse, xarray. A restored value is
equal, of the same type, dtype and device, fingerprints as the original did (so later cells
still hit), and large data travels out of band."""

from __future__ import annotations

import io
import mmap
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import scipy.sparse as sp
import torch
import xarray as xr

from nbcache.errors import SerializationError
from nbcache.key.fingerprint import fingerprint as fp
from nbcache.run.restore import update_in_place
from nbcache.run.serialize import dump_values, load_values
from nbcache.store.frames import frames_from_buffer, read_frames


@pytest.fixture(params=["read", "mapped"])
def roundtrip(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """dump_values then load_values, the blob read into memory or mapped copy-on-write (as the
    store does for large blobs)."""

    def run(values: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        frames = dump_values(values, namespace={}, refs={})
        blob = b"".join(bytes(c) for c in frames.chunks())
        if request.param == "read":
            return load_values(read_frames(io.BytesIO(blob)), namespace={}), frames
        path = tmp_path / "blob"
        path.write_bytes(blob)
        with open(path, "rb") as fh:
            mapped = mmap.mmap(fh.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        return load_values(frames_from_buffer(memoryview(mapped)), namespace={}), frames

    return run


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(100, 16)
        self.out = torch.nn.Linear(16, 100, bias=False)
        self.out.weight = self.emb.weight  # tied
        self.register_buffer("scale", torch.full((16,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(x) * self.scale)


def _trained() -> tuple[Net, torch.optim.Optimizer, Any]:
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    for _ in range(3):
        opt.zero_grad()
        net(torch.tensor([1, 2, 3])).sum().backward()
        opt.step()
        sched.step()
    return net.eval(), opt, sched


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> None:
    assert type(a) is type(b)
    assert (a.dtype, a.device, a.shape, a.stride(), a.requires_grad) == (b.dtype, b.device, b.shape, b.stride(), b.requires_grad)
    assert torch.equal(a.detach(), b.detach())


def test_tensors_come_back_the_same_and_out_of_band(roundtrip) -> None:
    torch.manual_seed(0)
    big = torch.randn(1000, 100)
    values = {
        "big": big,
        "rows": big[10:20],
        "T": big.T,
        "bf16": torch.randn(5000, dtype=torch.bfloat16),
        "ints": torch.arange(3),
        "flags": torch.arange(10) > 4,
        "empty": torch.empty(0, 3),
        "leaf": torch.ones(3, requires_grad=True),
        "param": torch.nn.Parameter(torch.randn(2, 2)),
    }
    (values["leaf"] * 2).sum().backward()
    values["big"].tag = "mine"  # a Python attribute
    out, frames = roundtrip(values)
    for name, value in values.items():
        _same_tensor(out[name], value)
        assert fp(out[name]) == fp(value), name
    assert out["big"].tag == "mine" and torch.equal(out["leaf"].grad, values["leaf"].grad)
    # views share memory with what they view, as before
    assert out["rows"].untyped_storage().data_ptr() == out["big"].untyped_storage().data_ptr() == out["T"].untyped_storage().data_ptr()
    out["big"][10, 0] = 123.0
    assert out["rows"][0, 0] == 123.0 and big[10, 0] != 123.0  # written through the view, not to the original
    # the tensors' bytes are buffers of their own, not inside the pickle
    assert big.numel() * 4 in [b.nbytes for b in frames.buffers]
    assert len(frames.pickle) < 20_000


def test_a_model_comes_back_with_tied_weights_eval_mode_and_its_optimizer(roundtrip) -> None:
    net, opt, sched = _trained()
    out, _ = roundtrip({"net": net, "opt": opt, "sched": sched})
    net2, opt2, sched2 = out["net"], out["opt"], out["sched"]
    assert type(net2) is Net and net2.training is False and net2.emb.training is False
    assert net2.out.weight is net2.emb.weight  # still tied
    assert type(net2.emb.weight) is torch.nn.Parameter and net2.emb.weight.requires_grad
    assert torch.equal(net2.emb.weight.grad, net.emb.weight.grad)
    _same_tensor(net2.scale, net.scale)
    # the optimizer holds the restored parameters, with its state
    assert opt2.param_groups[0]["params"][0] is net2.emb.weight and sched2.optimizer is opt2
    state, state2 = opt.state[net.emb.weight], opt2.state[net2.emb.weight]
    assert state.keys() == state2.keys() and all(torch.equal(state[k], state2[k]) for k in state)
    assert fp(out["net"]) == fp(net) and fp(opt2) == fp(opt) and fp(sched2) == fp(sched)
    # and both go on as the originals do
    x = torch.tensor([4, 5])
    assert torch.equal(net2(x), net(x))
    for model, optimizer, scheduler in ((net, opt, sched), (net2, opt2, sched2)):
        model.train()
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
        scheduler.step()
    assert torch.equal(net2.emb.weight, net.emb.weight)
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_a_tensor_on_a_device_this_kernel_lacks_is_a_clear_error_not_a_crash() -> None:
    from nbcache.run.reducers.torch import _rebuild_storage

    class OnCuda:
        def __reduce__(self) -> Any:
            return _rebuild_storage, (pickle.PickleBuffer(bytearray(64)), "cuda:0")

    frames = dump_values({"t": OnCuda()}, namespace={}, refs={})
    blob = io.BytesIO(b"".join(bytes(c) for c in frames.chunks()))
    with pytest.raises(SerializationError, match="cuda:0"):
        load_values(read_frames(blob), namespace={})


def test_a_tensor_the_cell_changed_in_place_is_updated_in_place() -> None:
    live = torch.zeros(4)
    view = live[:2]
    new = torch.arange(4.0)
    assert update_in_place(live, new)
    assert torch.equal(live, new) and torch.equal(view, new[:2])
    assert not update_in_place(torch.zeros(3), new)  # another shape: rebinding is the fallback
    assert not update_in_place(torch.zeros(4, dtype=torch.int64), new)


def test_polars_frames_come_back_out_of_band_with_their_schema_and_flags(roundtrip) -> None:
    df = pl.DataFrame(
        {
            "a": np.arange(100_000.0),
            "s": [f"w{i}" for i in range(100_000)],
            "c": pl.Series(["x", "y"] * 50_000, dtype=pl.Categorical),
            "e": pl.Series(["p", "q"] * 50_000, dtype=pl.Enum(["p", "q", "r"])),
            "t": pl.datetime_range(pl.datetime(2020, 1, 1), pl.datetime(2020, 1, 3), "1s", time_zone="UTC", eager=True)[:100_000],
        }
    ).set_sorted("a")
    series = pl.Series("n", [3, 1, 2])
    out, frames = roundtrip({"df": df, "series": series})
    assert out["df"].equals(df) and out["df"].schema == df.schema
    assert out["df"].flags["a"]["SORTED_ASC"]
    assert out["series"].equals(series) and out["series"].name == "n"
    assert fp(out["df"]) == fp(df) and fp(out["series"]) == fp(series)
    assert 800_000 in [b.nbytes for b in frames.buffers]  # the float column, out of band
    assert len(frames.pickle) < 100_000  # and the strings' buffers
    lazy, _ = roundtrip({"lazy": df.lazy().filter(pl.col("a") > 5)})  # polars' own pickle: its plan
    assert lazy["lazy"].collect().equals(df.filter(pl.col("a") > 5))


def test_arrow_sparse_and_xarray_values_come_back_equal(roundtrip) -> None:
    table = pa.table({"a": np.arange(10_000), "s": [str(i) for i in range(10_000)]})
    values = {
        "table": table,
        "chunked": pa.chunked_array([pa.array([1, 2]), pa.array([3])]),
        "batch": table.to_batches()[0],
        "strings": pd.Series([f"w{i}" for i in range(10_000)]),  # pandas 3: Arrow-backed str
        "csr": sp.random(300, 300, density=0.05, format="csr", random_state=0),
        "coo_array": sp.random_array((30, 30), density=0.1, format="coo", rng=0),
        "da": xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("x", "y"), coords={"x": ["a", "b"]}, attrs={"u": "m"}),
    }
    values["ds"] = values["da"].to_dataset(name="v")
    out, frames = roundtrip(values)
    assert out["table"].equals(table) and out["chunked"].equals(values["chunked"]) and out["batch"].equals(values["batch"])
    pd.testing.assert_series_equal(out["strings"], values["strings"])
    assert (out["csr"] != values["csr"]).nnz == 0 and type(out["coo_array"]) is type(values["coo_array"])
    xr.testing.assert_identical(out["da"], values["da"])
    xr.testing.assert_identical(out["ds"], values["ds"])
    for name, value in values.items():
        assert type(out[name]) is type(value)
        assert fp(out[name]) == fp(value), name
    assert len(frames.pickle) < 40_000  # the Arrow and numpy buffers went out of band


def test_restored_tensors_are_aligned(roundtrip) -> None:
    # Buffers start at multiples of 64 bytes in the blob (a mapped blob is page-aligned), whatever
    # the pickle's length before them; a blob read into memory gets allocations' alignment.
    for pad in ("", "x" * 13, "y" * 1001):
        values = {"pad": pad, "a": torch.randn(10_000), "b": torch.arange(20_000, dtype=torch.float64)}
        out, frames = roundtrip(values)
        assert [t.data_ptr() % 16 for t in (out["a"], out["b"])] == [0, 0]
        assert torch.equal(out["b"], values["b"])
        blob = np.frombuffer(bytearray(b"".join(bytes(c) for c in frames.chunks())), dtype=np.uint8)
        starts = [np.frombuffer(b, dtype=np.uint8).ctypes.data - blob.ctypes.data for b in frames_from_buffer(memoryview(blob)).buffers]
        assert len(starts) == 2 and [s % 64 for s in starts] == [0, 0]


def test_a_tensor_in_misaligned_memory_is_copied_into_aligned_memory() -> None:
    from nbcache.run.reducers.torch import _rebuild_storage, _rebuild_tensor

    raw = np.zeros(8 * 100 + 32, dtype=np.uint8)
    skip = -raw.ctypes.data % 16 + 3  # 3 bytes past an aligned address
    storage = _rebuild_storage(memoryview(raw)[skip : skip + 800], "cpu")
    assert raw.ctypes.data + skip == np.frombuffer(memoryview(raw)[skip:], dtype=np.uint8).ctypes.data
    t = _rebuild_tensor(storage, torch.float64, 0, (100,), (1,), False, False, None, None)
    assert t.data_ptr() % 16 == 0 and torch.equal(t, torch.zeros(100, dtype=torch.float64))
