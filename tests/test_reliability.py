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

import pytest

from conftest import nbcache_magics, run_cli
from nbcache.store.cache import Cache
from nbcache.store.backends import LocalFolderStore
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
