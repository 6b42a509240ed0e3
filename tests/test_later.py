"""Large values blobs of a local store are compressed after their entry is written (store/later.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import nbcache_magics, write_entry
from nbcache.errors import CorruptEntryError
from nbcache.run.serialize import load_values
from nbcache.store import later
from nbcache.store.backends import LocalFolderStore
from nbcache.store.cache import Cache
from nbcache.store.doctor import diagnose
from nbcache.store.manifest import manifest_name
from nbcache.units import format_size

# 16 MB that zstd shrinks a lot (over LATER_MIN), different per seed.


def _value(seed: int = 0) -> Any:
    return np.random.default_rng(seed).integers(0, 4, 2_000_000).astype(np.int64)


def _cache(tmp_path: Path) -> Cache:
    return Cache(LocalFolderStore(str(tmp_path / "c")), key="k", compression="auto")


def _files(cache: Cache, entry: Any) -> tuple[bool, bool]:
    """Whether the raw and the compressed form of the entry's values blob are on disk."""
    name = entry.values.name
    raw = cache.store.local_path(later.other_name(name) if later.compressed(name) else name)
    return os.path.exists(raw), os.path.exists(raw + ".zst")


def _read(cache: Cache, entry: Any) -> Any:
    return load_values(cache.read_frames(cache.lookup(entry.key)), namespace={})["x"]


def test_a_large_blob_is_written_raw_then_compressed_with_the_index_told(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    entry = write_entry(cache, value=_value())
    assert entry.values.codec == "none" and entry.values.stored_size == entry.values.size
    assert np.array_equal(_read(cache, entry), _value())  # usable at once, compressed or not
    assert later.wait(60)
    assert _files(cache, entry) == (False, True)
    [stats] = cache.stats()
    packed = os.path.getsize(cache.store.local_path(entry.values.name) + ".zst")
    assert packed < entry.values.size // 4
    assert cache.index.stored_bytes() < entry.values.size // 4 + 10_000  # the index knows
    assert stats.size < entry.values.size // 4 + 10_000
    # The manifest still names the raw blob; every reader finds the compressed one.
    assert np.array_equal(_read(cache, entry), _value())
    assert cache.verify() == []
    assert [f.level for f in diagnose(cache) if f.check == "blobs"] == ["ok"]
    assert cache.sweep(older_than=0) == 0 and _files(cache, entry) == (False, True)  # not an orphan


def test_a_small_blob_or_one_that_does_not_shrink_is_stored_as_before(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    small = write_entry(cache, value=np.zeros(100_000))
    noise = write_entry(cache, value=np.random.default_rng(0).random(2_000_000))
    assert later.wait(60)
    assert small.values.codec == "zstd" and _files(cache, small) == (False, True)
    assert noise.values.codec == "none" and _files(cache, noise) == (True, False)


def test_deleting_the_entry_deletes_the_compressed_blob_unless_another_entry_names_it(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    first = write_entry(cache, value=_value())
    assert later.wait(60)
    # The same content again: the compressed blob is found and named as such, nothing is rewritten.
    second = write_entry(cache, value=_value())
    assert second.values.codec == "zstd" and second.values.id == first.values.id
    cache.delete(first.key)  # names the raw form; the other entry names the compressed one
    assert np.array_equal(_read(cache, second), _value())
    cache.delete(second.key)
    assert _files(cache, first) == (False, False)
    third = write_entry(cache, value=_value(1))
    assert later.wait(60)
    cache.delete(third.key)
    assert _files(cache, third) == (False, False)


def test_an_orphaned_compressed_blob_is_swept(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    entry = write_entry(cache, value=_value())
    assert later.wait(60)
    cache.store.delete(manifest_name(entry.key))  # as if its writer had died before the manifest
    assert cache.sweep(older_than=0) >= 1
    assert _files(cache, entry) == (False, False)


def test_bytes_changed_before_compression_are_never_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache(tmp_path)
    held: list[Any] = []
    monkeypatch.setattr(later, "submit", held.append)  # hold the job: damage the blob first
    entry = write_entry(cache, value=_value())
    [job] = held
    path = cache.store.local_path(entry.values.name)
    with open(path, "r+b") as fh:
        fh.seek(entry.values.size // 2)
        fh.write(b"\xff" * 64)
    job()
    assert _files(cache, entry) == (True, False)  # the job refused; the damage is found on read
    with pytest.raises(CorruptEntryError):
        cache.read_frames(cache.lookup(entry.key))


def test_a_job_for_an_entry_deleted_meanwhile_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache(tmp_path)
    held: list[Any] = []
    monkeypatch.setattr(later, "submit", held.append)
    entry = write_entry(cache, value=_value())
    cache.delete(entry.key)
    held[0]()
    assert _files(cache, entry) == (False, False)


def test_a_hit_after_compression_in_a_real_shell_restores_the_same_value(ip: Any) -> None:
    cell = "%%cache --name big\nimport numpy as np\nbig = np.random.default_rng(3).integers(0, 4, 2_000_000)\nprint(big[:3])\n"
    nbcache_magics(ip).judge_restores = False
    first = ip.run_cell(cell)
    assert first.success and nbcache_magics(ip).engine.last.status == "stored"
    expected = ip.user_ns.pop("big").copy()
    assert later.wait(60)
    assert ip.run_cell(cell).success
    assert nbcache_magics(ip).engine.last.status == "hit"
    assert np.array_equal(ip.user_ns["big"], expected)


def test_a_forked_child_starts_with_no_jobs_of_its_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    gate = threading.Event()
    later.submit(gate.wait)  # the parent's worker is busy
    pid = os.fork()
    if pid == 0:  # the child: its wait must not wait for the parent's job
        os._exit(0 if later.wait(5) else 1)
    _, status = os.waitpid(pid, 0)
    gate.set()
    assert later.wait(10)
    assert os.WEXITSTATUS(status) == 0


def test_the_same_content_written_twice_is_stored_once_and_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache(tmp_path)
    held: list[Any] = []
    monkeypatch.setattr(later, "submit", held.append)
    first, second = write_entry(cache, value=_value()), write_entry(cache, value=_value())
    assert first.values == second.values and first.values.codec == "none"
    blobs = [name for name in cache.store.list("blobs") if first.values.id in name]
    assert blobs == [first.values.name] and list(cache.store.list("tmp")) == []
    for job in held:  # the second job finds the blob compressed by the first
        job()
    assert _files(cache, first) == (False, True)
    assert np.array_equal(_read(cache, second), _value())


def test_nbcache_show_gives_the_size_the_blob_takes_once_compressed(tmp_path: Path) -> None:
    from conftest import run_cli

    cache = _cache(tmp_path)
    entry = write_entry(cache, value=_value())
    assert later.wait(60)
    packed = os.path.getsize(cache.store.local_path(entry.values.name) + ".zst")
    cache.close()
    shown = run_cli("show", entry.key, env={"NBCACHE_DIR": str(tmp_path / "c"), "NBCACHE_KEY": "k"}).stdout
    [line] = [line for line in shown.splitlines() if line.startswith("size:")]
    assert f"({format_size(packed + entry.outputs.stored_size)} stored)" in line, line


def test_the_digest_taken_beside_the_write_fails_cleanly_and_never_blocks_the_writer() -> None:
    from nbcache.store.blobs import _Hashing
    from nbcache.store.digest import hexdigest

    chunks = [os.urandom(1 << 16) for _ in range(40)]  # more than the queue holds
    good = _Hashing()
    for chunk in chunks:
        good.feed(chunk)
    assert good.hexdigest() == hexdigest(chunks)
    bad = _Hashing()
    bad.feed(chunks[0])
    bad.feed(12345)  # not bytes: the hash fails, the thread still takes every chunk after it
    for chunk in chunks:
        bad.feed(chunk)
    with pytest.raises(OSError, match="digest failed"):
        bad.hexdigest()
