"""Files a cell reads through native code, and files it writes (nbcache.run.files), in a real shell.

Each reader: an unchanged file hits after a restart, a changed one misses. Each writer: the file
is put back by a hit, byte for byte and with its mode, where the disk differs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from conftest import Shell



def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cached(shell: Shell) -> Shell:
    shell.run("%config NbCache.judge_restores = False")  # these cells are quick: keep every entry
    return shell


def _hit_then_miss(shell: Shell, cell: str, change: "callable", name: str) -> None:  # type: ignore[valid-type]
    shell.run(cell)
    assert shell.status == "stored", shell.magics.engine.last
    first = shell.ns[name]
    shell.restart()
    shell.run(cell)
    assert shell.status == "hit" and repr(shell.ns[name]) == repr(first)
    change()
    shell.restart()
    t = shell.run(cell)
    assert t.error is None
    assert shell.status == "stored", "a changed file must make the cell run"
    assert repr(shell.ns[name]) != repr(first)


def test_pandas_parquet_through_pyarrow(cached: Shell) -> None:
    import pandas as pd

    pd.DataFrame({"a": [1, 2]}).to_parquet("d.parquet")
    cell = "%%cache\nimport pandas as pd\ntotal = int(pd.read_parquet('d.parquet').a.sum())\n"
    _hit_then_miss(cached, cell, lambda: pd.DataFrame({"a": [5, 2]}).to_parquet("d.parquet"), "total")


def test_pyarrow_dataset_over_a_folder_of_parts(cached: Shell) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.mkdir("parts")
    pq.write_table(pa.table({"a": [1, 2]}), "parts/0.parquet")
    cell = "%%cache\nimport pyarrow.dataset as ds\nrows = ds.dataset('parts').to_table().num_rows\n"
    _hit_then_miss(cached, cell, lambda: pq.write_table(pa.table({"a": [3]}), "parts/1.parquet"), "rows")


def test_polars_lazy_scan_collected_in_the_cell(cached: Shell) -> None:
    Path("d.csv").write_text("a\n1\n2\n")
    cell = "%%cache\nimport polars as pl\ntotal = pl.scan_csv('d.csv').select(pl.col('a').sum()).collect().item()\n"
    _hit_then_miss(cached, cell, lambda: Path("d.csv").write_text("a\n1\n9\n"), "total")


def test_duckdb_glob_in_sql_text_sees_a_new_matching_file(cached: Shell) -> None:
    import pandas as pd

    os.mkdir("data")
    pd.DataFrame({"a": [1, 2]}).to_parquet("data/0.parquet")
    cell = "%%cache\nimport duckdb\ntotal = duckdb.sql(\"select sum(a) from 'data/*.parquet'\").fetchall()[0][0]\n"
    _hit_then_miss(cached, cell, lambda: pd.DataFrame({"a": [10]}).to_parquet("data/1.parquet"), "total")


def test_h5py_file(cached: Shell) -> None:
    import h5py
    import numpy as np

    with h5py.File("d.h5", "w") as f:
        f["x"] = np.arange(3)

    def change() -> None:
        with h5py.File("d.h5", "w") as f:
            f["x"] = np.arange(4)

    cell = "%%cache\nimport h5py\nwith h5py.File('d.h5', 'r') as f:\n    total = int(f['x'][:].sum())\ndel f\n"
    _hit_then_miss(cached, cell, change, "total")


def test_sqlite_through_pandas_with_the_connection_opened_in_the_cell(cached: Shell) -> None:
    import sqlite3

    con = sqlite3.connect("db.sqlite")
    con.execute("create table t (a int)")
    con.execute("insert into t values (1), (2)")
    con.commit()

    def change() -> None:
        con.execute("insert into t values (7)")
        con.commit()

    cell = "%%cache\nimport sqlite3, pandas as pd\nc = sqlite3.connect('db.sqlite')\ntotal = int(pd.read_sql('select sum(a) s from t', c).s[0])\nc.close()\ndel c\n"
    _hit_then_miss(cached, cell, change, "total")
    con.close()


def test_a_path_held_by_an_input_variable(cached: Shell) -> None:
    import pandas as pd

    pd.DataFrame({"a": [1]}).to_feather("d.feather")
    cached.run("path = 'd.feather'")
    cell = "%%cache\nimport pandas as pd\ntotal = int(pd.read_feather(path).a.sum())\n"

    def change() -> None:
        pd.DataFrame({"a": [4]}).to_feather("d.feather")

    cached.run(cell)
    cached.restart()
    cached.run("path = 'd.feather'")
    cached.run(cell)
    assert cached.status == "hit"
    change()
    cached.restart()
    cached.run("path = 'd.feather'")
    cached.run(cell)
    assert cached.status == "stored" and cached.ns["total"] == 4


# -- writes -------------------------------------------------------------------------------------
def test_written_files_come_back_byte_for_byte_with_their_mode(cached: Shell) -> None:
    cell = (
        "%%cache\nimport pandas as pd, numpy as np, os\n"
        "pd.DataFrame({'a': [1, 2]}).to_parquet('o.parquet')\n"
        "np.save('arr.npy', np.arange(5))\n"
        "with open('notes.txt', 'w') as fh:\n    fh.write('hello')\n"
        "os.chmod('notes.txt', 0o600)\n"
    )
    cached.run(cell)
    files = [Path("o.parquet"), Path("arr.npy"), Path("notes.txt")]
    digests = {p: _digest(p) for p in files}
    for p in files:
        p.unlink()
    cached.restart()
    t = cached.run(cell)
    assert cached.status == "hit" and any("files put back" in line for line in t.notes)
    assert {p: _digest(p) for p in files} == digests
    assert Path("notes.txt").stat().st_mode & 0o777 == 0o600
    # a changed file is put back too; identical ones are left alone
    Path("notes.txt").write_text("edited")
    before = Path("o.parquet").stat().st_mtime_ns
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit" and Path("notes.txt").read_text() == "hello"
    assert Path("o.parquet").stat().st_mtime_ns == before
    assert cached.magics.engine.last.files == ("notes.txt",)


def test_a_file_the_cell_removed_is_removed_again_and_scratch_files_are_no_output(cached: Shell) -> None:
    Path("old.txt").write_text("old")
    cell = "%%cache\nimport os\nos.remove('old.txt')\nopen('scratch.tmp', 'w').close()\nos.remove('scratch.tmp')\nx = 1\n"
    cached.run(cell)
    Path("old.txt").write_text("old")
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit" and not Path("old.txt").exists() and not Path("scratch.tmp").exists()
    assert cached.magics.engine.last.files == ("old.txt",)


def test_a_file_over_the_limit_is_kept_by_digest_and_a_missing_one_runs_the_cell(cached: Shell) -> None:
    cached.run("%config NbCache.max_output_file_size = '100B'")
    cell = "%%cache\nwith open('big.bin', 'wb') as fh:\n    fh.write(b'x' * 1000)\nruns = 1\n"
    cached.run(cell)
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit"  # present and identical
    Path("big.bin").unlink()
    cached.restart()
    cached.run("%%cache --explain\nwith open('big.bin', 'wb') as fh:\n    fh.write(b'x' * 1000)\nruns = 1\n")
    assert cached.status == "stored" and Path("big.bin").read_bytes() == b"x" * 1000


def test_a_damaged_blob_runs_the_cell_and_leaves_nothing_partial(cached: Shell) -> None:
    cell = "%%cache\nfor name in ('a.txt', 'b.txt'):\n    with open(name, 'w') as fh:\n        fh.write(name * 100)\n"
    cached.run(cell)
    entry = next(iter(cached.magics.engine.cache.entries()))
    Path("a.txt").unlink()
    Path("b.txt").write_text("mine")
    damaged = entry.blobs[-1]
    stored = Path(cached.magics.engine.cache.store.local_path(damaged.name))
    stored.write_bytes(b"y" * damaged.size)
    cached.restart()
    cached.run(cell)
    assert cached.status == "stored"  # it ran: the plain result, never half a restore
    assert Path("a.txt").read_text() == "a.txt" * 100 and Path("b.txt").read_text() == "b.txt" * 100
    assert not [p for p in os.listdir(".") if p.startswith(".nbcache-")]


# -- bad input ----------------------------------------------------------------------------------
def test_a_folder_with_too_many_files_is_said_and_the_cell_keeps_its_result(cached: Shell) -> None:
    os.mkdir("many")
    for i in range(10_001):
        open(f"many/{i}", "w").close()
    t = cached.run("%%cache\nimport os\nn = len(os.listdir('many'))\n")
    assert cached.ns["n"] == 10_001 and cached.status == "skipped"
    assert any(line.startswith("nbcache:") and "many" in line and "too many" in line for line in t.stderr.splitlines())


def test_a_symlink_loop_is_said_and_the_cell_runs(cached: Shell) -> None:
    os.symlink("loop", "loop")
    t = cached.run("%%cache\nimport os\nfound = os.path.islink('loop')\n")
    assert cached.ns["found"] is True and cached.status == "skipped"
    assert any("symbolic link loop" in line for line in t.stderr.splitlines())


def test_a_file_that_changes_while_the_cell_runs_is_not_stored(cached: Shell) -> None:
    Path("log.txt").write_text("1")
    cell = "%%cache\nimport os, time\ntext = open(os.environ['LOG']).read()\nos.utime(os.environ['LOG'], (1, 1))\n"
    os.environ["LOG"] = str(Path("log.txt").resolve())
    try:
        t = cached.run(cell)
    finally:
        del os.environ["LOG"]
    assert cached.ns["text"] == "1" and cached.status == "skipped"
    assert any("changed while the cell ran" in line for line in t.stderr.splitlines())


def test_an_adapter_registered_for_a_library_is_installed_when_a_cell_first_imports_it(
    cached: Shell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbcache
    from nbcache.key.adapters import wrap

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "natively.py").write_text("def load(path):\n    return 42\n")  # stands for a reader in C
    nbcache.register_adapter("natively", lambda module: wrap.patch(module, "load", wrap.reads(0, "path")))
    Path("input.bin").write_bytes(b"1")
    cell = "%%cache\nimport natively\ndef where():\n    return 'in' + 'put' + '.bin'\nvalue = natively.load(where())\n"
    cached.run(cell)
    entry = next(iter(cached.magics.engine.cache.entries()))
    assert str(tmp_path / "input.bin") in entry.extra["reads"]["files"]
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit"
    Path("input.bin").write_bytes(b"2")
    cached.restart()
    cached.run(cell)
    assert cached.status == "stored"


def test_the_working_folder_its_parents_and_system_folders_are_never_taken_whole(cached: Shell) -> None:
    Path("x.csv").write_text("1")
    cell = "%%cache\nimport os\nhere = os.path.join('..', os.path.basename(os.getcwd()), 'x.csv')\ntmp = os.path.join('/tmp', 'y')\n"
    cached.run(cell)
    assert cached.status == "stored"
    entry = next(iter(cached.magics.engine.cache.entries()))
    assert not entry.extra["reads"].get("trees")
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit"


def test_a_folder_the_run_created_is_made_again_but_never_reused_with_other_content(cached: Shell) -> None:
    cell = "%%cache\nimport tempfile, os\nwork = tempfile.mkdtemp()\nwith open(os.path.join(work, 'a.txt'), 'w') as fh:\n    fh.write('a')\n"
    cached.run(cell)
    work = cached.ns["work"]
    os.remove(os.path.join(work, "a.txt"))
    os.rmdir(work)
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit" and cached.ns["work"] == work and Path(work, "a.txt").read_text() == "a"
    Path(work, "left-over.txt").write_text("from another session")
    cached.restart()
    cached.run(cell)
    assert cached.status == "stored" and cached.ns["work"] != work  # a fresh folder, as a plain run makes
    assert Path(work, "left-over.txt").exists()  # and nothing of the user's touched
