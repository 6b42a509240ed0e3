"""Library adapters, with the real libraries: the paths handed to native readers and writers are
noted before the call, and the calls behave as they did."""

from __future__ import annotations

import inspect
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Callable

import pytest

from nbcache.key import adapters
from nbcache.key.adapters.wrap import MARK, paths
from nbcache.key.deps import Watch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _installed() -> None:
    adapters.install_ready()  # as a watched run starts: every library imported so far


def _signature(function: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except ValueError:  # nanobind's functions have none
        return None


def _wrapped_once(functions: list[Callable[..., Any]], install: Callable[[], None]) -> None:
    """Each is a wrapper around the library's own function, pickles as itself, and installing
    again changes nothing."""
    for function in functions:
        assert getattr(function, MARK) and not getattr(function.__wrapped__, MARK, False)
        assert _signature(function) == _signature(function.__wrapped__)
        if "." not in function.__qualname__:
            assert pickle.loads(pickle.dumps(function)) is function
    install()


def test_registry_installs_imported_modules_and_user_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    adapters.register_adapter("nbcache_test_lib", lambda module: seen.append(module.__name__))
    adapters.install_ready()
    assert seen == []  # not imported: nothing happens
    monkeypatch.setitem(sys.modules, "nbcache_test_lib", types.ModuleType("nbcache_test_lib"))
    adapters.install_ready()
    adapters.install_ready()
    assert seen == ["nbcache_test_lib"] and "nbcache_test_lib" in adapters.ADAPTERS.installed


def test_a_failing_adapter_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbcache.errors import NbCacheWarning

    monkeypatch.setitem(sys.modules, "nbcache_test_broken", types.ModuleType("nbcache_test_broken"))
    adapters.register_adapter("nbcache_test_broken", lambda module: module.no_such_thing)
    with pytest.warns(NbCacheWarning, match="nbcache_test_broken"):
        adapters.install_ready()
    adapters.install_ready()  # not tried again


def test_install_ready_imports_no_library() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import nbcache.key.adapters as a; a.install_ready(); import sys; assert 'polars' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    libraries = ("polars", "pyarrow", "duckdb", "h5py", "pandas")
    code = (
        "import sys, nbcache.key.adapters as a; a.install_ready(); import pyarrow; a.install_ready(); "
        f"print(sorted(m for m in {libraries!r} if m in sys.modules), 'pyarrow.parquet' in sys.modules, "
        "'pyarrow.parquet' in a.ADAPTERS.installed); "
        "import pyarrow.parquet as pq; a.install_ready(); print(pq.read_table.__nbcache_adapter__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["['pyarrow']", "False", "False", "True"]  # a submodule imported later: at the next run


def test_what_is_a_path() -> None:
    assert paths(["s3://bucket/x.parquet", "x.parquet", b"a,b\n1,2", 3, Path("y.csv")]) == ["x.parquet", Path("y.csv")]
    assert paths("a.csv") == ["a.csv"] and paths(None) == [] and paths("") == []


# -- pyarrow ---------------------------------------------------------------------------------------
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pcsv = pytest.importorskip("pyarrow.csv")
pds = pytest.importorskip("pyarrow.dataset")
pfeather = pytest.importorskip("pyarrow.feather")
pipc = pytest.importorskip("pyarrow.ipc")
pjson = pytest.importorskip("pyarrow.json")
porc = pytest.importorskip("pyarrow.orc")


def _table() -> Any:
    return pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})


def test_pyarrow_parquet_dataset_and_writers(tmp_path: Path) -> None:
    src, out, folder = tmp_path / "in.parquet", tmp_path / "out.parquet", tmp_path / "parts"
    pq.write_table(_table(), src)
    with Watch() as w:
        assert pq.read_table(str(src)).num_rows == 3
        assert pq.ParquetFile(src).metadata.num_rows == 3
        pq.write_table(_table(), out)
        pq.write_to_dataset(_table(), root_path=str(folder), partition_cols=["a"])
    assert w.before[str(src)] is not None and w.before[str(src)].kind == "file"
    assert str(out) in w.written_before and w.written_before[str(out)] is None  # did not exist
    assert str(folder) in w.written_before

    ds_out = tmp_path / "ds_out"
    with Watch() as w:
        assert pds.dataset(str(folder), partitioning="hive").count_rows() == 3
        pq.ParquetDataset(str(folder))
        pds.write_dataset(_table(), ds_out, format="parquet")
    assert str(folder) in w.before and str(ds_out) in w.written_before


def test_pyarrow_feather_orc_csv_json_ipc(tmp_path: Path) -> None:
    t = _table()
    feather_in, orc_in, csv_in, json_in, ipc_in = (tmp_path / f"in.{e}" for e in ("feather", "orc", "csv", "json", "arrow"))
    pfeather.write_feather(t, str(feather_in))
    porc.write_table(t, str(orc_in))
    pcsv.write_csv(t, str(csv_in))
    json_in.write_text('{"a": 1}\n{"a": 2}\n')
    with pipc.new_file(str(ipc_in), t.schema) as writer:
        writer.write_table(t)
    outs = {e: tmp_path / f"out.{e}" for e in ("feather", "orc", "csv", "arrow", "stream")}
    with Watch() as w:
        assert pfeather.read_table(str(feather_in)).num_rows == 3
        assert len(pfeather.read_feather(feather_in)) == 3
        assert porc.read_table(str(orc_in)).num_rows == 3
        assert porc.ORCFile(str(orc_in)).nrows == 3
        assert pcsv.read_csv(str(csv_in)).num_rows == 3
        assert pcsv.open_csv(csv_in).read_all().num_rows == 3
        assert pjson.read_json(str(json_in)).num_rows == 2
        assert pipc.open_file(str(ipc_in)).read_all().num_rows == 3
        pfeather.write_feather(t, str(outs["feather"]))
        porc.write_table(t, outs["orc"])
        pcsv.write_csv(t, str(outs["csv"]))
        with pipc.new_file(str(outs["arrow"]), t.schema) as writer:
            writer.write_table(t)
        with pipc.new_stream(str(outs["stream"]), t.schema) as writer:
            writer.write_table(t)
    for path in (feather_in, orc_in, csv_in, json_in, ipc_in):
        assert w.before.get(str(path)) is not None, path
    for path in outs.values():
        assert str(path) in w.written_before, path


def test_pyarrow_streams_and_osfile(tmp_path: Path) -> None:
    src, out, appended = tmp_path / "in.bin", tmp_path / "out.bin", tmp_path / "log.bin"
    src.write_bytes(b"abc")
    appended.write_bytes(b"x")
    with Watch() as w:
        assert pa.OSFile(str(src)).read() == b"abc"
        with pa.OSFile(str(out), "wb") as f:
            f.write(b"x")
        with pa.OSFile(str(appended), mode="ab") as f:
            f.write(b"y")
        assert pa.memory_map(str(src)).read() == b"abc"
        assert pa.input_stream(str(src)).read() == b"abc"
    assert w.before[str(src)] is not None and str(out) in w.written_before
    assert w.before[str(appended)] is not None  # appended to: what it held is read too
    assert appended.read_bytes() == b"xy"
    native = pa.lib.OSFile(str(src))
    assert isinstance(native, pa.OSFile) and issubclass(pa.lib.OSFile, pa.OSFile)
    assert isinstance(pa.OSFile(str(src)), pa.lib.OSFile)


def test_pandas_goes_through_pyarrow_or_python(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2]})
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    df.to_parquet(src)
    df.to_feather(tmp_path / "in.feather")
    df.to_orc(tmp_path / "in.orc")
    with Watch() as w:
        assert pd.read_parquet(str(src), engine="pyarrow").equals(df)
        df.to_parquet(str(out))  # pandas opens it with pa.OSFile, then hands the stream over
        pd.read_feather(tmp_path / "in.feather")
        pd.read_orc(tmp_path / "in.orc")
        df.to_feather(tmp_path / "out.feather")
    assert w.before[str(src)] is not None and str(out) in w.written_before
    # feather and ORC are opened by pandas' own get_handle: Python's open, seen by the audit hook
    assert str(tmp_path / "in.feather") in w.files and str(tmp_path / "in.orc") in w.files
    assert str(tmp_path / "out.feather") in w.written_before


def test_pyarrow_filesystem_paths_are_not_local(tmp_path: Path) -> None:
    import pyarrow.fs

    pq.write_table(_table(), tmp_path / "t.parquet")
    with Watch() as w:
        fs = pyarrow.fs.SubTreeFileSystem(str(tmp_path), pyarrow.fs.LocalFileSystem())
        assert pq.read_table("t.parquet", filesystem=fs).num_rows == 3
    assert not w.before and not w.relative


def test_pyarrow_without_a_watch_and_with_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(_table(), path)
    assert pq.read_table(path).equals(pq.read_table.__wrapped__(path))
    with pytest.raises(FileNotFoundError):
        pq.read_table(tmp_path / "missing.parquet")
    with pytest.raises(FileNotFoundError), Watch():
        pq.read_table(tmp_path / "missing.parquet")  # the library's exception, noted or not

    class Bad(os.PathLike):
        def __fspath__(self) -> str:
            raise ValueError("no path")

    with Watch(), pytest.raises(Exception) as wrapped:
        pq.read_table(Bad())  # noting fails quietly; the library raises what it raises
    with pytest.raises(Exception) as plain:
        pq.read_table.__wrapped__(Bad())
    assert type(wrapped.value) is type(plain.value)


def test_pyarrow_wrapped_once() -> None:
    from nbcache.key.adapters import pyarrow as adapter

    before = (pq.read_table, pa.OSFile, pq.ParquetFile.__init__, pcsv.read_csv)
    _wrapped_once(
        [pq.read_table, pq.write_table, pq.ParquetFile.__init__, pds.dataset, pfeather.write_feather, porc.read_table, pcsv.read_csv, pcsv.write_csv, pjson.read_json, pipc.open_file, pa.memory_map],
        lambda: [adapter.install(m) for m in (pa, pq, pds, pfeather, porc, pcsv, pjson, pipc)],
    )
    assert (pq.read_table, pa.OSFile, pq.ParquetFile.__init__, pcsv.read_csv) == before
    assert pickle.loads(pickle.dumps(pa.OSFile)) is pa.OSFile and pa.OSFile.__bases__ == (pa.lib.OSFile,)


# -- polars ----------------------------------------------------------------------------------------
pl = pytest.importorskip("polars")


def test_polars(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    pl.DataFrame({"a": [1, 2]}).write_csv(tmp_path / "data" / "one.csv")
    pl.DataFrame({"a": [3]}).write_csv(tmp_path / "data" / "two.csv")
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "in.parquet")
    pattern = str(tmp_path / "data" / "*.csv")
    with Watch() as w:
        assert pl.read_csv(tmp_path / "data" / "one.csv").height == 2
        assert pl.scan_csv(pattern).collect().height == 3
        assert pl.read_parquet(source=str(tmp_path / "in.parquet")).height == 1
        pl.DataFrame({"a": [1]}).write_parquet(str(tmp_path / "out.parquet"))
        pl.DataFrame({"a": [1]}).write_ndjson(file=tmp_path / "out.ndjson")
        pl.LazyFrame({"a": [1]}).sink_csv(str(tmp_path / "sink.csv"))
    assert w.before[str(tmp_path / "data" / "one.csv")] is not None
    assert w.before[str(tmp_path / "in.parquet")] is not None
    assert w.globs[pattern] == (str(tmp_path / "data" / "one.csv"), str(tmp_path / "data" / "two.csv"))
    for name in ("out.parquet", "out.ndjson", "sink.csv"):
        assert str(tmp_path / name) in w.written_before, name


def test_polars_content_is_no_path_and_without_a_watch(tmp_path: Path) -> None:
    with Watch() as w:
        assert pl.read_csv(b"a\n1\n").height == 1  # bytes of a file's content
        assert pl.read_csv("a\n1\n".encode(), has_header=False).height == 2
    assert not w.before and not w.globs and not w.relative
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "t.parquet")
    assert pl.read_parquet(tmp_path / "t.parquet").equals(pl.read_parquet.__wrapped__(tmp_path / "t.parquet"))


def test_polars_wrapped_once() -> None:
    from nbcache.key.adapters import polars as adapter

    unwrapped = [n for n in dir(pl) if n.startswith(("read_", "scan_")) and not getattr(getattr(pl, n), MARK, False)]
    assert sorted(unwrapped) == ["read_clipboard", "read_database_uri", "scan_external_reader"]  # no path first
    before = (pl.read_csv, pl.scan_parquet, pl.DataFrame.write_parquet, pl.LazyFrame.sink_parquet)
    _wrapped_once(list(before), lambda: adapter.install(pl))
    assert (pl.read_csv, pl.scan_parquet, pl.DataFrame.write_parquet, pl.LazyFrame.sink_parquet) == before
    assert pl.DataFrame.write_parquet.__qualname__ == "DataFrame.write_parquet"


# -- duckdb ----------------------------------------------------------------------------------------
duckdb = pytest.importorskip("duckdb")


def test_duckdb(tmp_path: Path) -> None:
    pq.write_table(_table(), tmp_path / "in.parquet")
    (tmp_path / "in.csv").write_text("a\n1\n")
    db, copied, rel_out = tmp_path / "db.duckdb", tmp_path / "copied.csv", tmp_path / "rel.parquet"
    with Watch() as w:
        assert duckdb.sql(f"select count(*) from '{tmp_path / 'in.parquet'}'").fetchall() == [(3,)]
        assert duckdb.read_csv(str(tmp_path / "in.csv")).fetchall() == [(1,)]
        con = duckdb.connect(str(db))
        con.execute(f"copy (select 42 as x) to '{copied}' (header)")
        con.read_parquet(str(tmp_path / "in.parquet")).write_parquet(str(rel_out))
        con.close()
        duckdb.connect(":memory:").close()
    assert w.before[str(tmp_path / "in.parquet")] is not None
    assert w.before[str(tmp_path / "in.csv")] is not None
    assert str(db) in w.before and w.before[str(db)] is None  # a database: read and written
    assert str(copied) in w.before  # quoted in SQL: named, whatever the statement does
    assert str(rel_out) in w.written_before
    assert not any(":memory:" in p for p in (*w.before, *w.written_before))
    assert duckdb.sql("select 1").fetchall() == [(1,)]  # without a watch


def test_duckdb_wrapped_once() -> None:
    from nbcache.key.adapters import duckdb as adapter

    before = (duckdb.sql, duckdb.execute, duckdb.connect, duckdb.DuckDBPyConnection.sql, duckdb.DuckDBPyConnection.execute)
    _wrapped_once([duckdb.sql, duckdb.read_parquet, duckdb.execute, duckdb.connect], lambda: adapter.install(duckdb))
    assert (duckdb.sql, duckdb.execute, duckdb.connect, duckdb.DuckDBPyConnection.sql, duckdb.DuckDBPyConnection.execute) == before
    assert duckdb.sql is duckdb.query and duckdb.read_parquet is duckdb.from_parquet  # aliases stay one function
    assert getattr(duckdb.DuckDBPyConnection.sql, MARK) and getattr(duckdb.DuckDBPyRelation.to_csv, MARK)


# -- h5py ------------------------------------------------------------------------------------------
h5py = pytest.importorskip("h5py")


def test_h5py(tmp_path: Path) -> None:
    existing, new = tmp_path / "in.h5", tmp_path / "new.h5"
    with h5py.File(existing, "w") as f:
        f["x"] = [1, 2]
    with Watch() as w:
        with h5py.File(str(existing)) as f:
            assert list(f["x"][:]) == [1, 2]
        with h5py.File(new, mode="w") as f:
            f["y"] = [3]
    assert w.before[str(existing)] is not None and w.before[str(existing)].kind == "file"
    assert str(new) in w.before and w.before[str(new)] is None  # opened for writing: may be read too
    with h5py.File(new) as f:  # without a watch
        assert list(f["y"][:]) == [3]


def test_h5py_wrapped_once() -> None:
    from nbcache.key.adapters import h5py as adapter

    before = h5py.File.__init__
    _wrapped_once([h5py.File.__init__], lambda: adapter.install(h5py))
    assert h5py.File.__init__ is before


# -- PyTables ---------------------------------------------------------------------------------------
tables = pytest.importorskip("tables")


def test_pytables_through_pandas(tmp_path: Path) -> None:
    import pandas as pd

    adapters.install_ready()
    existing, new = tmp_path / "in.h5", tmp_path / "new.h5"
    pd.DataFrame({"a": [1, 2]}).to_hdf(existing, key="t")
    with Watch() as w:
        assert pd.read_hdf(existing, "t").a.tolist() == [1, 2]
        pd.DataFrame({"b": [3]}).to_hdf(str(new), key="u", mode="w")
    assert w.before[str(existing)] is not None and w.before[str(existing)].kind == "file"
    assert str(new) in w.before or str(new) in w.written_before
    assert pd.read_hdf(new, "u").b.tolist() == [3]  # without a watch


def test_pytables_wrapped_once() -> None:
    from nbcache.key.adapters import tables as adapter

    adapter.install(tables)
    _wrapped_once([tables.open_file], lambda: adapter.install(tables))
