"""What must hold when things go wrong: kill -9 mid-write, concurrent writers, a full disk, a
read-only folder. Nothing corrupt is ever visible, and the cell always runs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from conftest import nbcache_magics, run_cli
from nbcache.store.cache import Cache
from nbcache.store.backends import LocalFolderStore, open_store
from nbcache.run.serialize import load_values

WRITER = Path(__file__).with_name("writer.py")


def writer(root: Path | str, mode: str, count: int, mb: float, tag: str = "0") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(root), mode, str(count), str(mb), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_intact(root: Path) -> list[str]:
    """Every visible entry verifies and loads; returns their keys."""
    cache = Cache(LocalFolderStore(str(root)))
    assert cache.verify() == []
    keys = []
    for entry in cache.entries():
        values = load_values(cache.read_frames(entry), namespace={})
        assert values["x"].size > 0
        keys.append(entry.key)
    run_cli("--dir", str(root), "verify")
    cache.close()
    return keys


def test_kill_9_at_random_moments_of_a_large_write(tmp_path: Path) -> None:
    root = tmp_path / "c"
    rng = random.Random(4)
    written: set[str] = set()
    for delay in [0.4, 0.7, 1.0] + [rng.uniform(0.4, 1.2) for _ in range(3)]:
        proc = writer(root, "distinct", 1000, 16, tag=str(len(written) + int(delay * 1000)))
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the writer is past its start-up and inside its write loop
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        written |= set(first.split()) | set(out.split())
    keys = assert_intact(root)
    assert written and written <= set(keys)  # everything reported as written is there, complete
    print(f"{len(keys)} entries, {len(list((root / 'tmp').iterdir()))} temporary files left by the kills")
    # Leftovers (temporary files, orphan blobs) go with a sweep; entries stay.
    Cache(LocalFolderStore(str(root))).sweep(older_than=0)
    assert not any((root / "tmp").iterdir())
    assert set(assert_intact(root)) == set(keys)


@pytest.mark.parametrize("mode", ["same", "distinct"])
def test_two_writers_100_entries_each(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "c"
    procs = [writer(root, mode, 100, 0.02, tag=str(n + 1)) for n in range(2)]
    # Meanwhile a reader keeps loading whatever is visible: it never sees a partial entry.
    reader = Cache(LocalFolderStore(str(root)))
    loaded = 0
    while any(proc.poll() is None for proc in procs):
        for entry in list(reader.entries()):
            assert load_values(reader.read_frames(entry), namespace={})["x"].size > 0
            loaded += 1
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    keys = assert_intact(root)
    assert len(keys) == (100 if mode == "same" else 200)


# -- a full disk and a read-only folder: real mounts (root only) ---------------------------------
def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MB tmpfs needs root")
    where = tmp_path / "tiny"
    where.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=1M", "tmpfs", str(where))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


BIG_CELL = "%%cache\nimport numpy as np\nbig = np.random.default_rng({seed}).random(400_000)\nprint('ran {seed}')\n"


def test_disk_full_the_cell_runs_and_the_user_is_told_once(ip: Any, tiny_disk: Path, capfd: Any) -> None:
    nbcache_magics(ip).directory = str(tiny_disk / "cache")
    for seed in range(3):
        result = ip.run_cell(BIG_CELL.format(seed=seed))
        assert result.success and ip.user_ns["big"].size == 400_000
    captured = capfd.readouterr()
    assert captured.out.count("ran ") == 3
    warnings = [line for line in captured.err.splitlines() if line.startswith("nbcache:")]
    assert len(warnings) == 1, captured.err
    assert "No space left" in warnings[0]
    cache_root = tiny_disk / "cache"
    assert not list((cache_root / "manifests").glob("*")) if (cache_root / "manifests").exists() else True
    assert not list((cache_root / "tmp").glob("*"))
    run_cli("--dir", str(cache_root), "verify")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A folder and a read-only view of it (a read-only bind mount: root ignores chmod)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (chmod does not stop root)")
    source, view = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    try:
        _mount("--bind", str(source), str(view))
        _mount("-o", "remount,ro,bind", str(view))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        subprocess.run(["umount", "-l", str(view)], check=False)
        pytest.skip(f"cannot make a read-only bind mount here: {exc}")
    yield source, view
    subprocess.run(["umount", "-l", str(view)], check=False)


def test_read_only_folder_hits_still_work_and_stores_fail_quietly(ip: Any, read_only: tuple[Path, Path], capfd: Any) -> None:
    source, view = read_only
    magics = nbcache_magics(ip)
    magics.directory = str(source / "cache")
    cell = "%%cache\nkept = list(range(10))\nprint('ran kept')\n"
    assert ip.run_cell(cell).success
    del ip.user_ns["kept"]
    magics.directory = str(view / "cache")
    with pytest.raises(OSError):
        (view / "cache" / "probe").write_text("x")
    capfd.readouterr()
    assert ip.run_cell(cell).success and magics.engine.last.status == "hit"
    for seed in range(2):
        assert ip.run_cell(BIG_CELL.format(seed=seed)).success
    captured = capfd.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("nbcache:")]
    assert len(warnings) == 1 and "Read-only file system" in warnings[0], captured.err
    assert ip.user_ns["kept"] == list(range(10))


def test_permission_denied(ip: Any, tmp_path: Path, capfd: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache folder the kernel may not write. Root is never denied by file modes, so as root
    the test drops its effective uid to 65534 around the cells (and takes root back afterwards);
    as another user a folder without write permission does it."""
    if os.geteuid() != 0:
        _permission_denied_by_mode(ip, tmp_path, capfd)
        return
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="nbcache-perm-")
    try:
        os.chmod(base, 0o755)
        cache = Path(base) / "cache"
        monkeypatch.setenv("NBCACHE_KEY", "team")  # the key file of the root user is not readable
        Cache(LocalFolderStore(str(cache))).ensure_layout()  # owned by root, folders 0755
        nbcache_magics(ip).directory = str(cache)
        capfd.readouterr()
        os.seteuid(65534)
        try:
            for seed in range(2):
                assert ip.run_cell(BIG_CELL.format(seed=seed)).success
                assert ip.user_ns["big"].size == 400_000
        finally:
            os.seteuid(0)
        err = capfd.readouterr().err
        warnings = [line for line in err.splitlines() if line.startswith("nbcache:")]
        assert len(warnings) == 1 and "Permission denied" in warnings[0], err
        assert not list((cache / "manifests").glob("*"))
        run_cli("--dir", str(cache), "verify", env={"NBCACHE_KEY": "team"})
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _permission_denied_by_mode(ip: Any, tmp_path: Path, capfd: Any) -> None:
    cache = tmp_path / "cache"
    Cache(LocalFolderStore(str(cache))).ensure_layout()
    for folder in (cache, *[p for p in cache.iterdir() if p.is_dir()]):
        os.chmod(folder, 0o555)
    try:
        nbcache_magics(ip).directory = str(cache)
        for seed in range(2):
            assert ip.run_cell(BIG_CELL.format(seed=seed)).success
        err = capfd.readouterr().err
        warnings = [line for line in err.splitlines() if line.startswith("nbcache:")]
        assert len(warnings) == 1 and "Permission denied" in warnings[0], err
    finally:
        for folder in (cache, *[p for p in cache.iterdir() if p.is_dir()]):
            os.chmod(folder, 0o755)


# -- faults of the trust issue: checkpoints and restores killed, a server stopped mid-transfer,
# -- blobs and manifests replayed, clocks a day apart ---------------------------------------------
CHECKPOINTER = """
import sys, numpy as np
from nbcache.jupyter.checkpoints import Checkpoint
from nbcache.store.backends import LocalFolderStore, open_store
ckpt = Checkpoint("loop", LocalFolderStore(sys.argv[1]), key="k")
start = (ckpt.load(default={"i": -1})["i"]) + 1
for i in range(start, start + 10_000):
    ckpt.save({"i": i, "weights": np.full(2_000_000, float(i))}, force=True)
    print(i, flush=True)
"""


def test_kill_9_during_checkpoint_saves(tmp_path: Path, capfd: Any) -> None:
    from nbcache.jupyter.checkpoints import Checkpoint

    root = tmp_path / "c"
    rng = random.Random(7)
    last_saved = -1
    for round_ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", CHECKPOINTER, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # one save done: the loop is writing
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert "Traceback" not in err, err
        printed = [int(n) for n in out.split()]
        last_saved = max([last_saved, *printed]) if printed else last_saved
        capfd.readouterr()
        state = Checkpoint("loop", LocalFolderStore(str(root)), key="k").load(default=None)
        assert capfd.readouterr().err == ""  # nothing refused: the file is whole and signed
        # Nothing written before is lost (a save may have landed after its number was printed).
        assert state is not None and state["i"] >= last_saved
        assert (state["weights"] == float(state["i"])).all()  # one save's state, never a mix


RESTORER = """
import sys
from nbcache.store.cache import Cache
from nbcache.store.backends import LocalFolderStore, open_store
from nbcache.run.serialize import load_values
cache = Cache(LocalFolderStore(sys.argv[1]))
keys = [s.key for s in cache.stats()]
print("ready", flush=True)
while True:
    for key in keys:
        entry = cache.lookup(key)
        values = load_values(cache.read_frames(entry), namespace={})
        cache.record_hit(entry, 0.01)
"""


def test_kill_9_during_restores(tmp_path: Path) -> None:
    root = tmp_path / "c"
    proc = writer(root, "distinct", 6, 24, tag="9")
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    written = set(out.split())
    rng = random.Random(11)
    for _ in range(5):
        reader = subprocess.Popen([sys.executable, "-c", RESTORER, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.1, 0.8))
        reader.send_signal(signal.SIGKILL)
        reader.communicate()
    # Every entry is whole and loads, the index (written by each hit) is healthy and counts hits.
    assert set(assert_intact(root)) == written
    cache = Cache(LocalFolderStore(str(root)))
    assert cache.index.health() == "ok" and sum(s.hits for s in cache.stats()) > 0
    cache.close()
    assert "0 failed" in run_cli("--dir", str(root), "doctor").stdout


LARGE_CELL = """%%cache
import numpy as np
big = np.random.default_rng({seed}).random({n})
print("computed", round(float(big[:10].sum()), 6))
"""


def _s3_fs(swift: Any) -> Any:
    import s3fs
    from swift_server import ACCESS_KEY, SECRET_KEY

    return s3fs.S3FileSystem(key=ACCESS_KEY, secret=SECRET_KEY, endpoint_url=swift.endpoint, skip_instance_cache=True)


def _stop_when(swift: Any, ready: Any, timeout: float = 60.0) -> Any:
    """A thread that stops the server's proxy as soon as ``ready()`` holds."""
    import threading

    stopped = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    break
            except Exception:  # noqa: BLE001 - the server may be busy: look again
                pass
            time.sleep(0.02)
        swift.stop_proxy()
        stopped.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return stopped


def _plain(source: str) -> dict[str, Any]:
    """What the cell leaves when it runs without nbcache."""
    namespace: dict[str, Any] = {}
    exec(source.split("\n", 1)[1], namespace)
    return namespace


def test_s3_server_stopped_in_the_middle_of_a_multipart_upload(ip: Any, bucket: str, swift: Any, capfd: Any) -> None:
    magics = nbcache_magics(ip)
    magics.directory, magics.key, magics.compression = bucket, "team", "none"
    small = "%%cache\nsmall = [1, 2, 3]\nprint('small')\n"
    assert ip.run_cell(small).success and magics.engine.last.status == "stored"
    fs = _s3_fs(swift)
    name = bucket[len("s3://") :].split("/")[0]
    stopped = _stop_when(swift, lambda: bool(fs.list_multipart_uploads(name)))
    cell = LARGE_CELL.format(seed=1, n=12_000_000)  # 96 MB: a multipart upload of several parts
    capfd.readouterr()
    try:
        result = ip.run_cell(cell)
        assert stopped.wait(60), "the upload never started"
        out, err = capfd.readouterr()
        # The cell's result is the plain run's, and the user is told once.
        assert result.success and out.count("computed") == 1
        np.testing.assert_array_equal(ip.user_ns["big"], _plain(cell)["big"])
        notes = [line for line in err.splitlines() if line.strip()]
        assert len(notes) == 1 and notes[0].startswith("nbcache:"), err
    finally:
        swift.start_proxy()
    magics.engine.cache.outage.reset()
    # Nothing half-written is visible, and what was written before is intact and hits.
    cache = Cache(open_store(bucket), key="team")
    assert cache.verify() == []
    assert [e.names for e in cache.entries()] == [("small",)]
    del ip.user_ns["small"]
    assert ip.run_cell(small).success and magics.engine.last.status == "hit" and ip.user_ns["small"] == [1, 2, 3]


def test_s3_server_stopped_in_the_middle_of_a_download(ip: Any, bucket: str, swift: Any, capfd: Any) -> None:
    import threading

    magics = nbcache_magics(ip)
    magics.directory, magics.key, magics.compression = bucket, "team", "none"
    cell = LARGE_CELL.format(seed=2, n=16_000_000)  # 128 MB
    assert ip.run_cell(cell).success and magics.engine.last.status == "stored"
    entry = magics.engine.last.entry
    expected = ip.user_ns.pop("big")
    # Stop the server once the values blob is being read: the hit's read hangs up mid-transfer.
    from nbcache.store.backends.remote import FsspecStore

    reading = threading.Event()
    real_open = FsspecStore.open

    def open_and_tell(self: Any, name: str) -> Any:
        fh = real_open(self, name)
        if name == entry.values.name:
            reading.set()
        return fh

    FsspecStore.open = open_and_tell  # type: ignore[method-assign]
    def mid_download() -> bool:
        if not reading.is_set():
            return False
        time.sleep(0.3)  # some of the blob has arrived, most has not
        return True

    stopped = _stop_when(swift, mid_download)
    capfd.readouterr()
    try:
        result = ip.run_cell(cell)
        assert stopped.wait(60)
        out, err = capfd.readouterr()
        assert result.success and out.count("computed") == 1  # it ran: no half-read values shown
        np.testing.assert_array_equal(ip.user_ns["big"], expected)
        notes = [line for line in err.splitlines() if line.strip()]
        assert len(notes) == 1 and notes[0].startswith("nbcache:"), err
    finally:
        FsspecStore.open = real_open  # type: ignore[method-assign]
        swift.start_proxy()
    magics.engine.cache.outage.reset()
    # A read that failed is no damage: the blob is still there, and the entry hits again.
    assert _s3_fs(swift).exists(f"{bucket[len('s3://'):]}/{entry.values.name}")
    del ip.user_ns["big"]
    assert ip.run_cell(cell).success and magics.engine.last.status == "hit"
    np.testing.assert_array_equal(ip.user_ns["big"], expected)


def _two_entries(ip: Any, first: str, second: str) -> tuple[Any, Any, Any, Path]:
    """Run two %%cache cells: the magics, each cell's entry and the cache's folder."""
    magics = nbcache_magics(ip)
    assert ip.run_cell(first).success
    a = magics.engine.last.entry
    assert ip.run_cell(second).success
    return magics, a, magics.engine.last.entry, Path(magics.directory)


def test_a_blob_swapped_for_another_entry_s_blob_is_a_miss(ip: Any, capfd: Any) -> None:
    # Values blobs of the same size, too large for their manifests to hold (see the next test).
    first = "%%cache\nx = list(range(1000, 4000))\nprint('first ran')\n"
    second = "%%cache\ny = list(range(10000, 13000))\nprint('second ran')\n"
    magics, a, b, root = _two_entries(ip, first, second)
    assert a.values.size == b.values.size and a.values.id != b.values.id and a.values.id not in a.inline
    # Someone with write access to the store replays b's values under a's name (both are valid blobs).
    (root / a.values.name).write_bytes((root / b.values.name).read_bytes())
    del ip.user_ns["x"], ip.user_ns["y"]
    capfd.readouterr()
    assert ip.run_cell(first).success
    out, err = capfd.readouterr()
    assert out == "first ran\n" and ip.user_ns["x"] == list(range(1000, 4000)) and "y" not in ip.user_ns
    notes = [line for line in err.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("nbcache:") and "checksum" in notes[0], err
    assert ip.run_cell(second).success and magics.engine.last.status == "hit"  # b is untouched
    del ip.user_ns["x"]
    assert ip.run_cell(first).success and magics.engine.last.status == "hit" and ip.user_ns["x"] == list(range(1000, 4000))


def test_small_blobs_swapped_in_a_manifest_for_another_entry_s_are_ignored(ip: Any, capfd: Any) -> None:
    nbcache_magics(ip)
    ip.run_line_magic("config", "NbCache.judge_restores = False")  # (else a's entry goes once its first hit is judged)
    first = "%%cache\nx = list(range(50))\nprint('first ran')\n"
    second = "%%cache\ny = list(range(100, 150))\nprint('second ran')\n"
    magics, a, b, root = _two_entries(ip, first, second)
    assert a.values.id in a.inline and a.outputs.id in a.inline  # held by the manifest: a hit reads no blob
    # Someone with write access to the store puts b's small blobs in a's manifest, under a's ids
    # (the part of a manifest that holds them is outside the signature).
    manifest = root / "manifests" / f"{a.key}.json"
    raw = manifest.read_bytes()
    for ref in ("values", "outputs"):
        raw = raw.replace(a.inline[getattr(a, ref).id].encode(), b.inline[getattr(b, ref).id].encode())
    assert raw != manifest.read_bytes()
    manifest.write_bytes(raw)
    del ip.user_ns["x"], ip.user_ns["y"]
    capfd.readouterr()
    assert ip.run_cell(first).success
    out, err = capfd.readouterr()
    # a's content does not check, so its blobs are read instead: still a's, and a hit
    assert magics.engine.last.status == "hit" and ip.user_ns["x"] == list(range(50)) and "y" not in ip.user_ns, err
    assert out.splitlines()[0] == "first ran" and not err.strip()
    # with a's blob gone as well, nothing of b's is restored: a miss, the cell runs
    (root / a.values.name).unlink()
    del ip.user_ns["x"]
    assert ip.run_cell(first).success
    out, err = capfd.readouterr()
    assert out == "first ran\n" and ip.user_ns["x"] == list(range(50)) and "y" not in ip.user_ns
    assert magics.engine.last.status == "stored" and err.strip().startswith("nbcache:"), err


def test_a_manifest_replayed_from_an_older_entry_of_the_same_cell_is_a_miss(ip: Any, capfd: Any) -> None:
    magics = nbcache_magics(ip)
    cell = "%%cache --name step\nresult = n * 10\nprint('ran with', n)\n"
    ip.user_ns["n"] = 1
    assert ip.run_cell(cell).success
    older = magics.engine.last.entry
    ip.user_ns["n"] = 2
    assert ip.run_cell(cell).success
    newer = magics.engine.last.entry
    root = Path(magics.directory)
    # The older entry's manifest (validly signed) put where the newer one's was.
    (root / f"manifests/{newer.key}.json").write_bytes((root / f"manifests/{older.key}.json").read_bytes())
    del ip.user_ns["result"]
    capfd.readouterr()
    assert ip.run_cell(cell).success
    out, err = capfd.readouterr()
    assert out == "ran with 2\n" and ip.user_ns["result"] == 20  # never n=1's result
    notes = [line for line in err.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("nbcache:") and "names another key" in notes[0], err
    ip.user_ns["n"] = 1
    assert ip.run_cell(cell).success and magics.engine.last.status == "hit" and ip.user_ns["result"] == 10


def test_a_clock_skew_of_a_day_between_two_machines(tmp_path: Path) -> None:
    from conftest import write_entry

    root = tmp_path / "shared"
    day = 86400.0
    here = Cache(LocalFolderStore(str(root)), key="team", size_limit=None)  # this machine, the CLI's index
    ahead = Cache(LocalFolderStore(str(root)), key="team", index_path=str(tmp_path / "ahead.sqlite"))
    behind = Cache(LocalFolderStore(str(root)), key="team", index_path=str(tmp_path / "behind.sqlite"))

    # LRU: an entry from a machine a day ahead must not look like the most recently used one.
    older = write_entry(here, "01" * 16, value=list(range(1000)))
    from_ahead = write_entry(ahead, "02" * 16, value=list(range(1000, 2000)), created=time.time() + day)
    here.sync()
    time.sleep(0.01)
    here.record_hit(older, 0.01)  # used here after the other machine wrote its entry
    limit = here.index.stored_bytes()  # room for two entries of this size, not three
    here.size_limit = limit
    newest = write_entry(here, "03" * 16, value=list(range(2000, 3000)))
    kept = {s.key for s in here.stats()}
    assert from_ahead.key not in kept and {older.key, newest.key} <= kept  # the least recently used went

    # --older-than: an entry from a machine a day behind is as new as it is, one really old is old.
    here.sync()
    here.size_limit = None
    from_behind = write_entry(behind, "04" * 16, value="fresh", created=time.time() - day)
    old = write_entry(here, "05" * 16, value="old", created=time.time() - 3 * day)
    here.close()
    out = run_cli("--dir", str(root), "clear", "--older-than", "12h", env={"NBCACHE_KEY": "team"}).stdout
    assert "removed 1 entry" in out
    again = Cache(LocalFolderStore(str(root)), key="team")
    left = {s.key for s in again.stats()}
    assert from_behind.key in left and old.key not in left and {older.key, newest.key} <= left
    for key in left:  # nothing that is left is damaged
        entry = again.lookup(key)
        assert entry is not None and load_values(again.read_frames(entry), namespace={})["x"] is not None
    again.close()


# -- files put back by a hit, killed mid-way ---------------------------------------------------------
FILES_RESTORER = """
import os, sys
from IPython.testing.globalipapp import start_ipython
os.chdir(sys.argv[1])
ip = start_ipython()
ip.run_line_magic("load_ext", "nbcache")
ip.run_line_magic("config", "NbCache.judge_restores = False")
ip.run_line_magic("config", "NbCache.quiet = True")
ip.run_line_magic("config", "NbCache.directory = " + repr(os.path.join(sys.argv[1], ".cache")))
cell = sys.argv[2]
from nbcache.jupyter.extension import session
engine = session(ip).magics.engine
ip.run_cell(cell)
print("ready", engine.last.status, flush=True)
while True:
    for name in ("a.bin", "b.bin", "c.bin"):
        if os.path.exists(name):
            os.remove(name)
    ip.reset(new_session=True)
    ip.run_cell(cell)
    print(engine.last.status, flush=True)
"""

FILES_CELL = """%%cache
import numpy as np
for i, name in enumerate(("a.bin", "b.bin", "c.bin")):
    with open(name, "wb") as fh:
        fh.write(np.random.default_rng(i).bytes(40_000_000))
"""


def test_kill_9_during_a_restore_of_output_files(tmp_path: Path) -> None:
    expected = {name: np.random.default_rng(i).bytes(40_000_000) for i, name in enumerate(("a.bin", "b.bin", "c.bin"))}
    rng = random.Random(13)
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", FILES_RESTORER, str(tmp_path), FILES_CELL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == ["ready"], proc.stderr.read() if proc.poll() is not None else line
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        # every file is absent or whole: never a part of one
        for name, content in expected.items():
            path = tmp_path / name
            assert not path.exists() or path.read_bytes() == content, f"round {round_}: {name} is partial"
    # a last hit puts everything back and sweeps the temporary files the kills left
    proc = subprocess.run(
        [sys.executable, "-c", FILES_RESTORER.replace("while True:", "for _ in range(1):"), str(tmp_path), FILES_CELL],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.stdout.split()[-1] == "hit", proc.stdout + proc.stderr
    assert {name: (tmp_path / name).read_bytes() for name in expected} == expected
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".nbcache-")]
