"""The library adapters: torch, pyarrow, pandas' Arrow-backed columns, polars, scipy.sparse, xarray,
and runs of strings. Each value is built from source, so the same value can be built in other
processes: its digest must be the same there (other hash seeds), and a one-element change must
change it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from nbcache.key.fingerprint import fingerprint as fp

PRELUDE = """
import numpy as np, pandas as pd, pyarrow as pa, polars as pl, torch, xarray as xr
import scipy.sparse as sp
torch.manual_seed(0)
def tied():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(20, 8)
            self.out = torch.nn.Linear(8, 20, bias=False)
            self.out.weight = self.emb.weight
            self.register_buffer("scale", torch.ones(8))
        def forward(self, x):
            return self.out(self.emb(x) * self.scale)
    torch.manual_seed(0)
    return Net().eval()
def trained():
    net = tied()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.tensor([1, 2])).sum().backward()
    opt.step()
    return net, opt
def words(n):
    return [f"word{i % 97}-{i}" for i in range(n)]
"""

# name -> (code building `value`, code changing one element of `value`)
CASES: dict[str, tuple[str, str]] = {
    "tensor randn": ("value = torch.randn(1000, 10)", "value[3, 2] += 1"),
    "tensor transposed": ("value = torch.randn(40, 30).T", "value[5, 7] = 0.5"),
    "tensor strided slice": ("value = torch.arange(100.0)[::3]", "value[4] = -1.0"),
    "tensor bfloat16": ("value = torch.randn(64).to(torch.bfloat16)", "value[0] = 3.0"),
    "tensor int64": ("value = torch.arange(1000)", "value[999] = 0"),
    "tensor bool": ("value = torch.arange(50) % 3 == 0", "value[1] = True"),
    "tensor conjugate view": ("value = torch.randn(8, dtype=torch.complex64).conj()", "value = value.conj()"),
    "tensor requires_grad": ("value = torch.ones(5, requires_grad=True)", "value.requires_grad_(False)"),
    "tensor with grad": ("value = torch.ones(5, requires_grad=True); (value * 2).sum().backward()", "value.grad[0] = 7.0"),
    "parameter": ("value = torch.nn.Parameter(torch.randn(3, 3))", "value.data[1, 1] = 9.0"),
    "tensor sparse": ("value = torch.eye(6).to_sparse()", "value = (torch.eye(6) * 2).to_sparse()"),
    "tensor csr": ("value = torch.eye(6).to_sparse_csr()", "value = (torch.eye(6) + torch.eye(6).flip(0)).to_sparse_csr()"),
    "tensor quantized": ("value = torch.quantize_per_tensor(torch.linspace(-1, 1, 20), 0.1, 0, torch.qint8)", "value = torch.quantize_per_tensor(torch.linspace(-1, 1, 20), 0.2, 0, torch.qint8)"),
    "tensor meta": ("value = torch.empty(3, 4, device='meta')", "value = torch.empty(4, 3, device='meta')"),
    "tensor nested": ("value = torch.nested.nested_tensor([torch.arange(2.0), torch.arange(3.0)])", "value = torch.nested.nested_tensor([torch.arange(2.0), torch.arange(3.0) + 1])"),
    "tensor subclass from elsewhere": ("class Tagged(torch.Tensor):\n    pass\nvalue = torch.arange(5.0).as_subclass(Tagged)", "value[0] = 1.0"),
    "storage": ("value = torch.arange(10, dtype=torch.int16).untyped_storage()", "value[0] = 1"),
    "module": ("torch.manual_seed(0); value = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))", "value[2].weight.data[0, 0] += 1"),
    "module tied eval": ("value = tied()", "value.train()"),
    "module untied": ("value = tied()", "value.out.weight = torch.nn.Parameter(value.emb.weight.detach().clone())"),
    "optimizer": ("net, value = trained()", "next(iter(value.state.values()))['exp_avg'][0, 0] += 1"),
    "lr scheduler": ("net, opt = trained(); value = torch.optim.lr_scheduler.StepLR(opt, 3)", "opt.step(); value.step()"),
    "pyarrow array": ("value = pa.array(range(1000))", "value = pa.array([7] + list(range(1, 1000)))"),
    "pyarrow slice": ("value = pa.array(range(1000)).slice(10, 20)", "value = pa.array(range(1000)).slice(11, 20)"),
    "pyarrow chunked": ("value = pa.chunked_array([pa.array(['a', 'b']), pa.array(['c', None])])", "value = pa.chunked_array([pa.array(['a', 'b']), pa.array(['c', 'd'])])"),
    "pyarrow record batch": ("value = pa.record_batch({'a': [1, 2], 's': ['x', 'y']})", "value = pa.record_batch({'a': [1, 3], 's': ['x', 'y']})"),
    "pyarrow table": ("value = pa.table({'a': np.arange(100.0), 's': words(100)})", "value = pa.table({'a': np.arange(100.0), 's': words(99) + ['other']})"),
    "pandas str (arrow)": ("value = pd.Series(words(1000))", "value[500] = 'changed'"),
    "pandas arrow int": ("value = pd.Series(range(100), dtype='int64[pyarrow]')", "value[5] = -5"),
    "pandas frame of str": ("value = pd.DataFrame({'w': words(200), 'n': range(200)})", "value.loc[3, 'w'] = 'x'"),
    "pandas object strings": ("value = pd.Series(words(1000), dtype=object)", "value[999] = 'x'"),
    "numpy object strings": ("value = np.array(words(1000), dtype=object)", "value[0] = 'x'"),
    "list of strings": ("value = words(1000)", "value[10] = value[10] + ' '"),
    "tuple of strings": ("value = tuple(words(100))", "value = value[:-1] + ('x',)"),
    "polars frame": ("value = pl.DataFrame({'a': np.arange(1000.0), 's': words(1000), 'c': pl.Series(words(1000), dtype=pl.Categorical)})", "value = value.with_columns(a=pl.when(pl.col('a') == 5).then(-1.0).otherwise(pl.col('a')))"),
    "polars sorted flag": ("value = pl.DataFrame({'a': [1, 2, 3]})", "value = value.with_columns(pl.col('a').set_sorted())"),
    "polars series": ("value = pl.Series('x', words(100))", "value = value.scatter(3, 'y')"),
    "polars lazy": ("value = pl.DataFrame({'a': [1, 2, 3]}).lazy().filter(pl.col('a') > 1)", "value = pl.DataFrame({'a': [1, 2, 3]}).lazy().filter(pl.col('a') > 2)"),
    "scipy csr_matrix": ("value = sp.random(200, 200, density=0.05, format='csr', random_state=0)", "value.data[0] += 1"),
    "scipy csr_array": ("value = sp.random_array((200, 200), density=0.05, format='csr', rng=0)", "value.data[-1] += 1"),
    "scipy coo": ("value = sp.random(50, 50, density=0.1, format='coo', random_state=0)", "value.data[3] = 0.5"),
    "scipy dok": ("value = sp.random_array((20, 20), density=0.1, format='dok', rng=0)", "value[0, 0] = 42.0"),
    "scipy lil": ("value = sp.random(20, 20, density=0.1, format='lil', random_state=0)", "value[1, 1] = 42.0"),
    "xarray data array": ("value = xr.DataArray(np.arange(12.0).reshape(3, 4), dims=('x', 'y'), coords={'x': ['a', 'b', 'c'], 'y': pd.date_range('2020', periods=4)}, name='v', attrs={'units': 'm'})", "value[1, 1] = -1"),
    "xarray coordinate": ("value = xr.DataArray(np.arange(3.0), dims='x', coords={'x': [10, 20, 30]})", "value = value.assign_coords(x=[10, 20, 31])"),
    "xarray dataset": ("value = xr.Dataset({'t': (('x',), np.arange(5.0)), 'p': (('x',), np.ones(5))}, coords={'x': list('abcde')}, attrs={'title': 'd'})", "value['p'][2] = 3.0"),
}


def _digests(cases: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """The digest of each value and of its changed form, computed in this process."""
    out: dict[str, list[str]] = {}
    for name, (build, change) in cases.items():
        ns: dict[str, Any] = {}
        exec(PRELUDE, ns)
        exec(build, ns)
        before = fp(ns["value"]).hex()
        exec(change, ns)
        out[name] = [before, fp(ns["value"]).hex()]
    return out


SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
import test_fingerprint_types as T
print(json.dumps(T._digests(T.CASES)))
"""


@pytest.fixture(scope="module")
def digests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _digests(CASES)


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, list[str]]]:
    """The same digests from two other processes, with other hash seeds."""
    runs = []
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(Path(__file__).parent)],
            env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


@pytest.mark.parametrize("name", list(CASES))
def test_the_same_value_has_the_same_digest_in_other_processes(name: str, digests, elsewhere) -> None:
    assert [run[name][0] for run in elsewhere] == [digests[name][0]] * 2


@pytest.mark.parametrize("name", list(CASES))
def test_a_one_element_change_changes_the_digest(name: str, digests) -> None:
    before, after = digests[name]
    assert before != after


def test_the_tensor_encoding_covers_what_it_says() -> None:
    import torch

    base = torch.arange(12.0).reshape(3, 4)
    variants = [
        base,
        base.clone().to(torch.float64),  # dtype
        base.clone().reshape(4, 3),  # shape
        base.T.contiguous().T,  # strides (same values, Fortran order)
        base.clone().requires_grad_(True),  # requires_grad
        torch.nn.Parameter(base.clone()),  # class
        base.to_sparse(),  # layout
    ]
    assert len({fp(v) for v in variants}) == len(variants)
    assert fp(base) == fp(base.clone()) == fp(torch.arange(12.0).reshape(3, 4))


def test_tied_weights_are_part_of_a_module_s_value() -> None:
    ns: dict[str, Any] = {}
    exec(PRELUDE, ns)
    tied = ns["tied"]()
    untied = ns["tied"]()
    untied.out.weight = __import__("torch").nn.Parameter(untied.emb.weight.detach().clone())
    assert fp(tied) != fp(untied)
    assert fp(tied) == fp(ns["tied"]())


def test_a_module_whose_hook_holds_the_module_has_a_fingerprint() -> None:
    import torch

    lazy = torch.nn.LazyLinear(3)  # its forward pre-hook is a bound method of the module itself
    assert fp(lazy) == fp(torch.nn.LazyLinear(3))
    lazy(torch.ones(2, 5))  # initialized: now it has weights
    assert fp(lazy) != fp(torch.nn.LazyLinear(3))


def test_a_lazy_frame_counts_the_files_it_scans(tmp_path: Path) -> None:
    import polars as pl

    data = tmp_path / "data.csv"
    data.write_text("a\n1\n2\n")
    lf = pl.scan_csv(data).filter(pl.col("a") > 1)
    before = fp(lf)
    assert fp(pl.scan_csv(data).filter(pl.col("a") > 1)) == before
    data.write_text("a\n1\n3\n")
    assert fp(lf) != before
    (tmp_path / "more.csv").write_text("a\n5\n")
    globbed = pl.scan_csv(tmp_path / "*.csv")
    first = fp(globbed)
    (tmp_path / "third.csv").write_text("a\n6\n")
    assert fp(globbed) != first


def test_polars_and_pandas_chunks_are_not_part_of_the_value() -> None:
    import pandas as pd
    import polars as pl

    one = pl.DataFrame({"a": [1, 2, 3, 4]})
    two = pl.concat([pl.DataFrame({"a": [1, 2]}), pl.DataFrame({"a": [3, 4]})], rechunk=False)
    assert two.n_chunks() == 2 and fp(one) == fp(two)
    grown = pd.DataFrame({"a": [1, 2]})
    grown["b"] = [3, 4]  # its column index is now an Arrow array of several chunks
    assert fp(grown) == fp(pd.DataFrame({"a": [1, 2], "b": [3, 4]}))


def test_a_str_subclass_is_not_a_str() -> None:
    class Tagged(str):
        pass

    words = [f"w{i}" for i in range(100)]
    tagged = list(words)
    tagged[40] = Tagged(tagged[40])
    assert fp(tagged) != fp(words)
    assert fp(words) == fp([w[:] for w in words])
    assert fp(["a\ud800"] * 20) != fp(["a"] * 20)  # lone surrogates are encoded, not dropped


# Pinned, as in test_fingerprint.py: an accidental change of an adapter's encoding fails here
# (then bump FINGERPRINT_VERSION). Deterministic values only, and installed code at a fixed version.
def _tied_sequential() -> Any:
    import torch

    model = torch.nn.Sequential(torch.nn.Embedding(4, 3), torch.nn.Linear(3, 4, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(12.0).reshape(4, 3))
    model[1].weight = model[0].weight
    return model.eval()


GOLDEN = [
    ("tensor", lambda: __import__("torch").arange(12.0).reshape(3, 4).T, "405759ee6fa9534ca6ea949648e3ffa5"),
    ("parameter with grad", lambda: _with_grad(), "87e14b1fe915e6d04cf22bbd74712895"),
    ("module tied eval", _tied_sequential, "f0b20436f4a5778639934face89dd374"),
    ("pyarrow table", lambda: __import__("pyarrow").table({"a": [1, 2, None], "s": ["x", "y", "z"]}), "1500e2691ad0a52525816cd33914bc77"),
    ("pandas str", lambda: __import__("pandas").Series(["x", None, "zz"], dtype="str"), "00eec797cdd04b597e138824af4f6a98"),
    ("list of strings", lambda: [f"s{i}" for i in range(40)], "12969bfe456d670b0950db46373b489a"),
    ("polars frame", lambda: __import__("polars").DataFrame({"a": [1.5, None], "s": ["x", "y"]}), "173a6b83eb766a427d64c2b189caed92"),
    ("scipy csr_array", lambda: __import__("scipy.sparse").sparse.csr_array(__import__("numpy").eye(3)), "98782f5db52a93c5f64778db12c86e92"),
    ("xarray dataset", lambda: __import__("xarray").Dataset({"t": (("x",), [1.0, 2.0])}, coords={"x": ["a", "b"]}), "a84fe95bad78eac824161671e31229c4"),
]


def _with_grad() -> Any:
    import torch

    p = torch.nn.Parameter(torch.arange(4.0))
    (p * p).sum().backward()
    return p


@pytest.mark.parametrize("make, digest", [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN])
def test_golden_digests_per_library(make, digest, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbcache.key.fingerprint import code as code_encoding

    monkeypatch.setattr(code_encoding, "module_version", lambda name: "1.0")
    monkeypatch.setattr(code_encoding, "module_digest", lambda name: "lib:1.0")
    assert fp(make()).hex() == digest


def test_adapters_are_imported_only_with_their_library_s_first_value() -> None:
    script = textwrap.dedent(
        """
        import sys
        import nbcache.key.fingerprint as f
        libraries = ("torch", "polars", "pyarrow", "scipy", "xarray", "pandas")
        f.fingerprint([1, "a", {2.5}, f.fingerprint, ["w"] * 100])
        import numpy
        f.fingerprint(numpy.arange(3))
        print(sorted(m for m in sys.modules if m.split(".")[0] in libraries))
        print(sorted(m for m in sys.modules if m.startswith("nbcache.key.fingerprint.")))
        """
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    libraries, adapters = out.splitlines()
    assert libraries == "[]"
    assert "nbcache.key.fingerprint.torch" not in adapters and "nbcache.key.fingerprint.numpy" in adapters
