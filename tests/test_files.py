"""Files a cell reads through native code, and files it writes (nbcache.run.files), in a real shell.

Each reader: an unchanged file hits after a restart, a changed one misses. Each writer: the file
is put back by a hit, byte for byte and with its mode, where the disk differs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
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


# == found in review: each was a bug =============================================================
def _stored(shell: Shell, cell: str) -> None:
    t = shell.run(cell)
    assert t.error is None, t.error
    assert shell.status == "stored", shell.magics.engine.last


# -- stale hits ---------------------------------------------------------------------------------
def test_renamed_file_content_is_an_input(cached: Shell) -> None:
    """os.rename moves the source's content to the target: the source's content is an input.
    Today the source counts as "overwritten" (no input): a hit puts back the OLD content under
    the new name and deletes the user's new source file."""
    Path("a.txt").write_text("v1")
    cell = "%%cache\nimport os\nos.rename('a.txt', 'b.txt')\n"
    _stored(cached, cell)
    assert Path("b.txt").read_text() == "v1"
    # a new a.txt, the old b.txt gone: running the cell would make b.txt = v2
    Path("b.txt").unlink()
    Path("a.txt").write_text("v2 - the user's new data")
    cached.restart()
    cached.run(cell)
    assert cached.status != "hit", "stale hit: b.txt would be v2 if the cell ran"
    assert Path("b.txt").read_text() == "v2 - the user's new data"


def test_truncated_file_prefix_is_an_input(cached: Shell) -> None:
    """os.truncate(p, n) keeps the first n bytes: what p held is an input."""
    Path("log.txt").write_text("0123456789abcdef")
    cell = "%%cache\nimport os\nos.truncate('log.txt', 4)\n"
    _stored(cached, cell)
    assert Path("log.txt").read_text() == "0123"
    Path("log.txt").write_text("WXYZ56789abcdef")
    cached.restart()
    cached.run(cell)
    assert cached.status != "hit"
    assert Path("log.txt").read_text() == "WXYZ"


def test_symlinked_file_read_by_native_code(cached: Shell) -> None:
    """A path named by the cell that is a symbolic link is stamped as the link (its target
    text) only: the content native code reads through it is no input."""
    import pandas as pd

    pd.DataFrame({"a": [1, 2]}).to_parquet("v1.parquet")
    os.symlink("v1.parquet", "d.parquet")
    cell = "%%cache\nimport pandas as pd\ntotal = int(pd.read_parquet('d.parquet').a.sum())\n"
    _stored(cached, cell)
    assert cached.ns["total"] == 3
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit"
    pd.DataFrame({"a": [10, 20]}).to_parquet("v1.parquet")
    cached.restart()
    cached.run(cell)
    assert cached.status != "hit", "stale hit: the file behind the link changed"
    assert cached.ns["total"] == 30


def test_symlinked_folder_read_by_native_code(cached: Shell) -> None:
    """The same for a folder: a link to a folder of parts is no tree input."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.mkdir("real")
    pq.write_table(pa.table({"a": [1, 2]}), "real/0.parquet")
    os.symlink("real", "parts")
    cell = "%%cache\nimport pyarrow.dataset as ds\nrows = ds.dataset('parts').to_table().num_rows\n"
    _stored(cached, cell)
    pq.write_table(pa.table({"a": [3]}), "real/1.parquet")
    cached.restart()
    cached.run(cell)
    assert cached.status != "hit", "stale hit: a part was added behind the link"
    assert cached.ns["rows"] == 3


# -- files put back in the wrong place ----------------------------------------------------------
def test_absolute_path_inside_the_working_folder_is_put_back_there(cached: Shell, tmp_path: Path) -> None:
    """A file written by absolute path inside the working folder is recorded relative to it; a
    hit from another working folder writes it there (over the user's file of that name) and
    leaves the real target missing."""
    project = tmp_path / "project"
    other = tmp_path / "other"
    project.mkdir()
    other.mkdir()
    target = project / "report.txt"
    os.chdir(project)
    cell = f"%%cache\nwith open({str(target)!r}, 'w') as fh:\n    fh.write('report')\n"
    _stored(cached, cell)
    target.unlink()
    (other / "report.txt").write_text("someone else's report")
    os.chdir(other)
    cached.restart()
    cached.run(cell)
    assert (other / "report.txt").read_text() == "someone else's report", "a hit overwrote a file the cell never names"
    assert target.read_text() == "report"


def test_absolute_removal_inside_the_working_folder_is_not_done_elsewhere(cached: Shell, tmp_path: Path) -> None:
    """The same for a removal ("gone" records): a hit from another folder deletes the user's file there."""
    project = tmp_path / "project"
    other = tmp_path / "other"
    project.mkdir()
    other.mkdir()
    os.chdir(project)
    (project / "old.txt").write_text("x")
    cell = f"%%cache\nimport os\nos.remove({str(project / 'old.txt')!r})\ndone = True\n"
    _stored(cached, cell)
    (project / "old.txt").write_text("x")
    (other / "old.txt").write_text("precious")
    os.chdir(other)
    cached.restart()
    cached.run(cell)
    assert (other / "old.txt").exists(), "data loss: a hit deleted a file in another folder"
    assert not (project / "old.txt").exists()


def test_chdir_inside_the_cell_then_write(cached: Shell, tmp_path: Path) -> None:
    """Files are stored relative to the working folder after the run, but put back relative to
    the one before it: a cell that changes folder and writes has its files put back in the
    wrong folder."""
    os.mkdir("sub")
    start = os.getcwd()
    cell = "%%cache\nimport os\nos.chdir('sub')\nwith open('out.txt', 'w') as fh:\n    fh.write('result')\n"
    _stored(cached, cell)
    os.chdir(start)
    os.remove("sub/out.txt")
    Path("out.txt").write_text("the user's own out.txt")
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit"
    assert Path(start, "out.txt").read_text() == "the user's own out.txt", "the hit overwrote the wrong file"
    assert Path(start, "sub", "out.txt").read_text() == "result"


# -- the audit hook must never break the user's own calls ---------------------------------------
def test_subprocess_in_a_removed_working_folder(cached: Shell, tmp_path: Path) -> None:
    """A process started while the working folder no longer exists: the command words are
    resolved with os.path.abspath -> os.getcwd(), which raises FileNotFoundError inside the
    audit hook, i.e. inside the user's subprocess.run (a plain run works)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    cell = (
        "%%cache\nimport os, subprocess, sys\n"
        f"os.chdir({str(gone)!r})\nos.rmdir({str(gone)!r})\n"
        "out = subprocess.run([sys.executable, '-c', 'print(1)', 'x.txt'], capture_output=True, text=True).stdout\n"
        f"os.chdir({str(tmp_path)!r})\n"
    )
    try:
        t = cached.run(cell)
    finally:
        os.chdir(tmp_path)
    assert t.error is None, f"the user's subprocess call failed under nbcache: {t.error!r}"
    assert cached.ns["out"] == "1\n"



# -- a hit that fails must leave the disk as it was ---------------------------------------------
def test_a_restore_that_fails_leaves_no_folders_behind(cached: Shell) -> None:
    """prepare() creates the folders of the files it puts back before it knows every record can
    be restored; when a later one cannot (a large file kept by digest only is missing), the
    folders stay, and the cell that then runs fails on its own os.mkdir."""
    cached.run("%config NbCache.max_output_file_size = '1KB'")
    cell = (
        "%%cache\nimport os\nos.mkdir('a')\n"
        "with open('a/x.txt', 'w') as fh:\n    fh.write('x')\n"
        "with open('z.bin', 'wb') as fh:\n    fh.write(b'0' * 4096)\n"
    )
    _stored(cached, cell)
    import shutil

    shutil.rmtree("a")
    os.remove("z.bin")
    cached.restart()
    t = cached.run(cell)
    assert t.error is None, f"the cell failed after a failed restore: {t.error!r}"
    assert Path("a/x.txt").read_text() == "x" and Path("z.bin").stat().st_size == 4096


def test_a_commit_that_fails_midway_leaves_the_disk_as_it_was(cached: Shell) -> None:
    """Prepared.commit moves files one by one: when a later move fails, the earlier ones stay
    done ("all or nothing" is not kept), and the cell then runs. Here the cell writes z.txt,
    then a.txt; a plain run fails on z.txt (now a folder) before touching a.txt, but the failed
    hit has already replaced a.txt."""
    cell = "%%cache\nfor name in ('z.txt', 'a.txt'):\n    with open(name, 'w') as fh:\n        fh.write('from the cell')\n"
    _stored(cached, cell)
    os.remove("z.txt")
    os.mkdir("z.txt")
    Path("z.txt/keep").write_text("k")
    Path("a.txt").write_text("mine")
    cached.restart()
    t = cached.run(cell)
    assert isinstance(t.error, IsADirectoryError)  # as a plain run
    assert Path("a.txt").read_text() == "mine", "a failed hit replaced a.txt, which a plain run never reaches"


def test_an_interrupted_restore_leaves_no_temporary_files(cached: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyboardInterrupt (the user stops a slow hit) is no Exception: prepare() does not discard
    the temporary files it already wrote, and .nbcache-* files stay beside the user's files."""
    cell = "%%cache\nfor name in ('a.txt', 'b.txt'):\n    with open(name, 'w') as fh:\n        fh.write(name * 1000)\n"
    _stored(cached, cell)
    os.remove("a.txt")
    os.remove("b.txt")
    from nbcache.store.cache import Cache

    real = Cache.copy_blob
    calls = []

    def copy_then_interrupt(self, entry, ref, path):  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, entry, ref, path)

    monkeypatch.setattr(Cache, "copy_blob", copy_then_interrupt)
    cached.restart()
    cached.run(cell)
    left = sorted(p.name for p in Path(".").iterdir() if p.name.startswith(".nbcache-"))
    assert left == [], f"temporary files left behind: {left}"


# -- files removed by the cell that the hit leaves in place -------------------------------------
def test_a_folder_emptied_by_rmtree_and_made_again(cached: Shell) -> None:
    """shutil.rmtree removes the files inside with os.unlink(name, dir_fd=...): the audit events
    carry bare names, which the watch resolves against the working folder. A folder the cell
    did not name (its path is computed) is then taken flat, the removals of its files are not
    recorded, and a hit leaves files that a plain run deletes."""
    os.mkdir("build")
    Path("build/old.txt").write_text("old")
    cell = (
        "%%cache\nimport os, shutil\nd = 'bu' + 'ild'\nshutil.rmtree(d)\nos.mkdir(d)\n"
        "with open(os.path.join(d, 'new.txt'), 'w') as fh:\n    fh.write('new')\n"
    )
    _stored(cached, cell)
    Path("build/old.txt").write_text("old")  # the folder as it was before the run, with the new file
    cached.restart()
    cached.run(cell)
    assert cached.status == "hit"
    assert sorted(os.listdir("build")) == ["new.txt"], "a plain run leaves only new.txt"


# -- performance --------------------------------------------------------------------------------
def test_a_trivial_cell_does_not_list_a_large_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell with a few string constants (``print('done')``) must not list the working folder,
    which may hold 100,000 files, to find that they name none: a stat each costs less."""
    from nbcache.key.deps import Watch

    monkeypatch.chdir(tmp_path)
    Path("done").write_text("")
    listed: list[str] = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(str(path)) or real(path))
    watch = Watch()
    watch.expect(["hello", "done"])
    assert listed == [] and list(watch.before) == [str(tmp_path / "done")]
    many = Watch()
    many.expect([f"w{i}" for i in range(1000)] + ["done"])  # many strings: one listing instead
    assert len(listed) == 1 and list(many.before) == [str(tmp_path / "done")]


def test_sqlite_database_opened_by_uri(cached: Shell) -> None:
    """sqlite3.connect('file:u.db?mode=ro', uri=True): the audit event's database is the URI,
    which the watch takes as a path (cwd/'file:u.db?mode=ro', nothing there), and the constant
    is taken as a glob matching nothing: the database file is no input, and a changed database
    still hits."""
    import sqlite3

    con = sqlite3.connect("u.db")
    con.execute("create table t (a int)")
    con.execute("insert into t values (1)")
    con.commit()
    con.close()
    cell = (
        "%%cache\nimport sqlite3\nc = sqlite3.connect('file:u.db?mode=ro', uri=True)\n"
        "total = c.execute('select sum(a) from t').fetchone()[0]\nc.close()\ndel c\n"
    )
    _stored(cached, cell)
    con = sqlite3.connect("u.db")
    con.execute("insert into t values (5)")
    con.commit()
    con.close()
    cached.restart()
    cached.run(cell)
    assert cached.status != "hit", "stale hit: the database changed"
    assert cached.ns["total"] == 6


def test_a_file_written_through_a_symlink_is_put_back(cached: Shell) -> None:
    """Writing through a link (latest.txt -> runs/1.txt) changes the target's content; the watch
    takes the link itself (lstat: its target text), which did not change, so nothing is
    recorded and a hit leaves the target as the user changed it."""
    os.mkdir("runs")
    Path("runs/1.txt").write_text("")
    os.symlink("runs/1.txt", "latest.txt")
    cell = "%%cache\nwith open('latest.txt', 'w') as fh:\n    fh.write('result of the run')\n"
    _stored(cached, cell)
    Path("runs/1.txt").write_text("")
    cached.restart()
    cached.run(cell)
    assert Path("runs/1.txt").read_text() == "result of the run", f"{cached.status}: the file behind the link was not written"


def test_file_blobs_count_against_the_size_limit_survive_a_sweep_and_go_with_their_entry(cached: Shell) -> None:
    cell = "%%cache\nwith open('big.bin', 'wb') as fh:\n    fh.write(bytes(range(256)) * 4000)\n"
    cached.run(cell)
    cache = cached.magics.engine.cache
    (entry,) = list(cache.entries())
    (blob,) = entry.blobs
    assert blob.size == 1_024_000 and entry.stored >= blob.stored_size
    assert cache.totals().size >= blob.stored_size
    assert cache.sweep(older_than=0) == 0 and cache.store.contains(blob.name)  # named by its manifest
    assert cache.verify() == []
    cache.delete(entry.key)
    assert not cache.store.contains(blob.name)
