"""The cache over a local store: signing, checksums, compression, the index, the size limit."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import nbcache_magics, write_entry
from nbcache.store.cache import Cache
from nbcache.errors import CorruptEntryError, NbCacheError, SignatureError
from nbcache.store.signing import _key_file
from nbcache.store.backends import LocalFolderStore
from nbcache.run.serialize import load_values
from nbcache.run.capture import decode_outputs

CELL = "%%cache --name numbers\nimport numpy as np\nx = np.arange(200_000.0)\nr = np.random.default_rng(1).random(200_000)\nprint('computed', x.sum())\n"


def run(ip: Any, source: str) -> Any:
    result = ip.run_cell(source)
    assert result.success, result.error_in_exec
    return nbcache_magics(ip).engine.last


def forget(ip: Any, *names: str) -> None:
    for name in names:
        ip.user_ns.pop(name, None)


def cache_dir(ip: Any) -> Path:
    return Path(nbcache_magics(ip).directory)


def test_store_then_hit_counts_usage(ip: Any) -> None:
    nbcache_magics(ip).judge_restores = False  # a 5 ms cell may not pay: this test is about the counters
    assert run(ip, CELL).status == "stored"
    forget(ip, "x", "r")
    outcome = run(ip, CELL)
    assert outcome.status == "hit"
    assert ip.user_ns["x"][10] == 10.0
    cache = Cache(LocalFolderStore(str(cache_dir(ip))))
    [stats] = cache.stats()
    assert (stats.label, stats.hits, stats.misses) == ("numbers", 1, 1)
    assert stats.restore_time > 0 and stats.runtime > 0 and stats.last_used >= stats.created
    totals = cache.totals()
    assert (totals.entries, totals.hits, totals.misses) == (1, 1, 1)
    assert totals.size == stats.size > 0


def test_restore_time_is_none_until_the_first_hit(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k")
    assert cache.lookup("b" * 32) is None  # a miss first, as the engine does: its usage row says 0
    plain, missed, hit = (write_entry(cache, k * 32) for k in "abc")
    cache.record_hit(hit, 0.25)
    by_key = {s.key: s for s in cache.stats()}
    assert by_key[plain.key].restore_time is None and by_key[missed.key].restore_time is None
    assert by_key[hit.key].restore_time == 0.25 and by_key[hit.key].hits == 1


def test_key_file_created_private_on_first_use(ip: Any, isolated_env: Path) -> None:
    run(ip, CELL)
    key = isolated_env / "jupyter" / "nbcache" / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes().strip()) == 64


def test_entry_signed_with_another_key_is_a_miss_with_a_warning(ip: Any, capsys: Any) -> None:
    nbcache_magics(ip).key = "team-a"
    run(ip, CELL)
    nbcache_magics(ip).key = "team-b"
    capsys.readouterr()
    outcome = run(ip, CELL)
    err = capsys.readouterr().err
    assert "nbcache:" in err and "not signed with this cache's key" in err
    # the cell ran, but the entry of the other key is not replaced by one signed with ours
    assert outcome.status == "skipped" and "signed with another key" in (outcome.reason or "")
    nbcache_magics(ip).key = "team-a"
    assert run(ip, CELL).status == "hit"


def test_tampered_manifest_is_never_unpickled(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k")
    entry = write_entry(cache, value=[1, 2, 3])
    path = tmp_path / "c" / "manifests" / f"{entry.key}.json"
    manifest = json.loads(path.read_text())
    manifest["entry"]["names"] = ["x", "evil"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(SignatureError):
        cache.lookup(entry.key)
    # Removing the signature does not help either.
    del manifest["hmac_sha256"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(SignatureError):
        cache.lookup(entry.key)


@pytest.mark.parametrize("compression", ["zstd", "none"])
@pytest.mark.parametrize("damage", ["bitflip", "truncate"])
def test_damaged_values_blob_is_a_miss_then_repaired(ip: Any, capsys: Any, compression: str, damage: str) -> None:
    nbcache_magics(ip).compression = compression
    entry = run(ip, CELL).entry
    blob = cache_dir(ip) / entry.values.name
    assert blob.name.endswith(".zst") == (compression == "zstd")
    data = bytearray(blob.read_bytes())
    if damage == "bitflip":
        data[len(data) // 2] ^= 0x10
    else:
        del data[len(data) // 3 :]
    blob.write_bytes(bytes(data))
    forget(ip, "x", "r")
    capsys.readouterr()
    assert run(ip, CELL).status == "stored"  # ran again instead of loading damaged bytes
    err = capsys.readouterr().err
    assert err.startswith("nbcache:") and entry.values.id in err
    forget(ip, "x", "r")
    assert run(ip, CELL).status == "hit"  # the new write replaced the damaged blob


def test_damaged_outputs_blob_is_a_miss(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k")
    entry = dataclasses.replace(write_entry(cache, value=1), inline={})  # as a manifest too large to hold them
    blob = tmp_path / "c" / entry.outputs.name
    blob.write_bytes(blob.read_bytes()[:-3] + b"xyz")
    with pytest.raises(CorruptEntryError, match="checksum"):
        decode_outputs(cache.read_output_bytes(entry))


def test_small_blobs_are_read_from_the_manifest_checked_against_their_ids(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    entry = write_entry(Cache(LocalFolderStore(str(folder)), key="k"), value=[1, "two"])
    big = write_entry(Cache(LocalFolderStore(str(folder)), key="k"), value=np.arange(1000.0))  # 8 kB: not held
    assert set(entry.inline) == {entry.values.id, entry.outputs.id} and set(big.inline) == {big.outputs.id}
    outputs = (folder / entry.outputs.name).read_bytes()
    raw = (folder / "manifests" / f"{entry.key}.json").read_bytes()
    assert raw.startswith(b'{"data":{') and json.loads(raw)["data"] == entry.inline
    for ref in (entry.values, entry.outputs):
        (folder / ref.name).unlink()
    found = Cache(LocalFolderStore(str(folder)), key="k").lookup(entry.key)
    assert found is not None and found.inline == entry.inline
    cache = Cache(LocalFolderStore(str(folder)), key="k")
    assert load_values(cache.read_frames(found), namespace={})["x"] == [1, "two"]  # no file read: there is none
    assert cache.read_output_bytes(found) == outputs
    # content that does not check (another value's, damaged) is ignored: the blob is read
    other = write_entry(cache, value=[3, "four"])
    swapped = dataclasses.replace(found, inline={entry.values.id: other.inline[other.values.id], entry.outputs.id: "bm90IGl0"})
    with pytest.raises(CorruptEntryError, match="missing"):
        cache.read_frames(swapped)
    cache = Cache(LocalFolderStore(str(folder)), key="k")
    with pytest.raises(CorruptEntryError, match="missing"):
        cache.read_output_bytes(swapped)


def test_a_failed_read_keeps_the_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # EIO, ENOMEM: the read failed, the blob is fine; only damage removes a blob
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k")
    entry = write_entry(cache, value=np.arange(1_000_000.0))
    blob = tmp_path / "c" / entry.values.name

    def failing_read(*args: Any, **kwargs: Any) -> Any:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(cache.blobs, "_map", failing_read)
    monkeypatch.setattr(cache.store, "open", failing_read)
    with pytest.raises(OSError):
        load_values(cache.read_frames(entry), namespace={})
    assert blob.exists()
    monkeypatch.undo()
    assert load_values(cache.read_frames(entry), namespace={})["x"][-1] == 999_999.0


def _copied(path: str) -> int:
    """Bytes of this process's own copies of the pages of its mappings of ``path`` (copy-on-write
    pages are anonymous; the file's pages, dirty or not, are not)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            if "-" in line.split(" ", 1)[0]:  # a mapping's header line
                inside = line.rstrip().endswith(path)
            elif inside and line.startswith("Anonymous:"):
                total += int(line.split()[1]) * 1024
    return total


def test_a_mapped_blob_is_copied_only_where_it_is_written(tmp_path: Path) -> None:
    # A large uncompressed blob is mapped copy-on-write: the restored array lies over the file's
    # pages in the page cache; a write copies the pages it touches, not the blob.
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k", compression="none")
    entry = write_entry(cache, value=np.random.default_rng(0).random(4_000_000))  # 32 MB
    x = load_values(cache.read_frames(entry), namespace={})["x"]
    path = str(tmp_path / "c" / entry.values.name)
    assert _copied(path) < (1 << 20)
    x[:1000] = 0.0
    assert 0 < _copied(path) < (1 << 20)
    assert load_values(cache.read_frames(entry), namespace={})["x"][0] != 0.0  # the blob is unchanged


def test_an_empty_key_file_is_an_error_not_an_empty_key(tmp_path: Path) -> None:
    path = tmp_path / "keyfile"
    path.write_bytes(b"")
    with pytest.raises(NbCacheError, match="empty"):
        _key_file(str(path))


def test_auto_compression_per_blob(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k", compression="auto")
    zeros = write_entry(cache, value=np.zeros(1_000_000))
    noise = write_entry(cache, value=np.random.default_rng(0).random(1_000_000))
    assert zeros.values.codec == "zstd" and zeros.values.stored_size < zeros.values.size // 10
    assert noise.values.codec == "none" and noise.values.stored_size == noise.values.size
    for entry, expected in ((zeros, np.zeros(1_000_000)), (noise, np.random.default_rng(0).random(1_000_000))):
        assert np.array_equal(load_values(cache.read_frames(cache.lookup(entry.key)), namespace={})["x"], expected)
    assert cache.verify() == []


def test_size_limit_evicts_least_recently_used_but_never_the_new_entry(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k", size_limit=2_500_000, compression="none")
    rng = np.random.default_rng(0)
    a = write_entry(cache, value=rng.random(125_000), created=1000.0)  # 1 MB each
    b = write_entry(cache, value=rng.random(125_000), created=2000.0)
    cache.record_hit(cache.lookup(a.key), 0.01)  # a was used after b was written
    c = write_entry(cache, value=rng.random(125_000))
    keys = {s.key for s in cache.stats()}
    assert keys == {a.key, c.key}
    assert not (tmp_path / "c" / b.values.name).exists()
    cache.size_limit = 10  # smaller than any entry: only the one just written stays
    d = write_entry(cache, value=rng.random(125_000))
    assert {s.key for s in cache.stats()} == {d.key}
    assert cache.totals().size <= d.stored + 1000


def test_size_limit_from_config_and_env(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBCACHE_SIZE_LIMIT", "500MB")
    assert nbcache_magics(ip).engine.cache.size_limit == 500_000_000
    nbcache_magics(ip).size_limit = "20GB"
    assert nbcache_magics(ip).engine.cache.size_limit == 20_000_000_000


def test_index_is_rebuilt_from_manifests(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache = Cache(LocalFolderStore(str(root)), key="k")
    keys = {write_entry(cache, value=i, label="lbl").key for i in range(5)}
    cache.close()
    for file in root.glob("index-*.sqlite*"):
        file.unlink()
    again = Cache(LocalFolderStore(str(root)), key="k")
    assert {s.key for s in again.stats()} == keys
    assert all(s.label == "lbl" for s in again.stats())


def test_index_on_remote_store_lives_in_the_user_cache(isolated_env: Path) -> None:
    cache = Cache(_memory_store(), key="k")
    write_entry(cache, value=1)
    assert str(cache.index.path).startswith(str(isolated_env / "cache" / "nbcache"))
    assert os.path.exists(str(cache.index.path))


def _memory_store() -> Any:
    import uuid

    from nbcache.store.backends import open_store

    return open_store(f"memory://nbcache-test-{uuid.uuid4().hex}")


def test_the_same_suite_passes_on_an_fsspec_store() -> None:
    cache = Cache(_memory_store(), key="k")
    entry = write_entry(cache, value=np.arange(100_000), label="m")
    assert np.array_equal(load_values(cache.read_frames(cache.lookup(entry.key)), namespace={})["x"], np.arange(100_000))
    assert [s.key for s in cache.stats()] == [entry.key]
    assert cache.verify() == []
    assert cache.clear(everything=True) == [entry.key]
    assert list(cache.store.list("blobs")) == []


def test_sweep_removes_orphans_and_stale_temporaries(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache = Cache(LocalFolderStore(str(root)), key="k")
    entry = write_entry(cache, value=1)
    orphan = root / "blobs" / "ff" / ("ff" * 16)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a writer that died")
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp" / "dead.part").write_bytes(b"half")
    assert cache.sweep(older_than=3600) == 0  # young: may be in use
    old = 1_000_000_000
    os.utime(orphan, (old, old))
    os.utime(root / "tmp" / "dead.part", (old, old))
    assert cache.sweep(older_than=3600) == 2
    assert not orphan.exists() and cache.lookup(entry.key) is not None


def _claims_a_huge_frame(content: bytes, claimed: int) -> bytes:
    """A valid zstd frame of ``content`` (one raw block) whose header claims ``claimed`` bytes."""
    import struct

    block = struct.pack("<I", (len(content) << 3) | 1)[:3]  # last block, raw, its size
    return b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + struct.pack("<Q", claimed) + block + content


def test_a_blob_that_claims_a_huge_frame_fails_before_allocating_it(tmp_path: Path) -> None:
    import tracemalloc

    from nbcache.store.manifest import BlobRef

    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k", compression="zstd")
    ref = cache.put_blob([b"outputs " * 200])
    assert ref.codec == "zstd"
    (tmp_path / "c" / ref.name).write_bytes(_claims_a_huge_frame(b"x" * 100, 1 << 40))
    tracemalloc.start()
    try:
        with pytest.raises(CorruptEntryError, match=f"claims {1 << 40} bytes, its manifest says {ref.size}"):
            cache.blobs.read_bytes(BlobRef(ref.id, ref.size, "zstd", 113), owner=None)
        assert tracemalloc.get_traced_memory()[1] < 10 * 2**20  # nothing near the claim was allocated
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_a_values_blob_whose_frames_claim_more_than_its_size_fails_before_allocating(tmp_path: Path, codec: str) -> None:
    import struct
    import tracemalloc

    import zstandard

    from nbcache.store.frames import VALUES_VERSION
    from nbcache.store.manifest import BlobRef

    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k")
    # A values blob whose header says its pickle is a terabyte long; the manifest says 40 bytes.
    forged = struct.pack("<4sIIQ", b"NBCV", VALUES_VERSION, 0, 1 << 40) + b"p" * 20
    stored = forged if codec == "none" else zstandard.ZstdCompressor().compress(forged)
    ref = BlobRef("ab" * 32, len(forged), codec, len(stored))
    path = tmp_path / "c" / ref.name
    path.parent.mkdir(parents=True)
    path.write_bytes(stored)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptEntryError, match="do not add up"):
            cache.blobs.read_frames(ref, owner=None)
        assert tracemalloc.get_traced_memory()[1] < 10 * 2**20
    finally:
        tracemalloc.stop()


def test_a_mapped_values_blob_longer_than_its_manifest_says_is_not_mapped(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k", compression="none")
    entry = write_entry(cache, value=np.zeros(300_000))  # 2.4 MB: mapped on a hit
    path = tmp_path / "c" / entry.values.name
    with open(path, "ab") as fh:
        fh.write(b"\0" * 4096)
    with pytest.raises(CorruptEntryError, match="its manifest says"):
        cache.read_frames(entry)


def test_hit_bookkeeping_is_deferred_but_every_reader_sees_it(tmp_path: Path) -> None:
    """A hit's counter and the index learning its entry wait in memory (one transaction for many
    hits), yet a reader in this process sees them at once, another process within moments, and
    nothing is lost when the process exits."""
    import subprocess
    import sys
    import time

    from nbcache.store import index as index_module

    root = tmp_path / "c"
    cache = Cache(LocalFolderStore(str(root)), key="k")
    entry = write_entry(cache, "a" * 32)
    cache.index.remove([entry.key])  # as if another process wrote it: the index lacks it
    found = cache.lookup(entry.key)
    assert found is not None
    cache.record_hit(found, 0.01)
    assert cache.index._hits and cache.index._seen  # deferred, not written yet
    other = Cache(LocalFolderStore(str(root)), key="k")  # another reader of the same database
    [stats] = other.stats()
    assert (stats.key, stats.hits) == (entry.key, 1)  # written before it read
    assert not cache.index._hits and not cache.index._seen
    # Another process sees a hit within DEFER_SECONDS (the flusher thread writes it).
    cache.record_hit(found, 0.01)
    time.sleep(index_module.DEFER_SECONDS * 6)
    read = (
        "import sys; from nbcache.store.cache import Cache; from nbcache.store.backends import LocalFolderStore\n"
        "print(Cache(LocalFolderStore(sys.argv[1]), key='k').stats()[0].hits)"
    )
    out = subprocess.run([sys.executable, "-c", read, str(root)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"
    # A process that exits right after its hits leaves them written.
    hit = (
        "import sys; from nbcache.store.cache import Cache; from nbcache.store.backends import LocalFolderStore\n"
        "c = Cache(LocalFolderStore(sys.argv[1]), key='k'); e = c.lookup(sys.argv[2])\n"
        "for _ in range(3): c.record_hit(e, 0.01)\n"
    )
    subprocess.run([sys.executable, "-c", hit, str(root), entry.key], check=True)
    out = subprocess.run([sys.executable, "-c", read, str(root)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "5"


def test_deferred_hits_are_written_in_batches(tmp_path: Path) -> None:
    from nbcache.store import index as index_module

    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k")
    entry = write_entry(cache, "b" * 32)
    for _ in range(index_module.DEFER_COUNT):
        cache.record_hit(entry, 0.01)
    assert not cache.index._hits  # the DEFER_COUNT-th wrote them all, in one transaction
    assert cache.index.usage_of(entry.key) == (index_module.DEFER_COUNT, 0)


def test_verdicts_are_read_once_and_kept_in_step(tmp_path: Path) -> None:
    from nbcache.store.index import Verdict

    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k")
    index = cache.index
    assert index.verdict("c" * 32) is None
    index.record_verdict(Verdict("c" * 32, None, "cell", 0.001, 0.01, 1.0, told=False))
    assert index.verdict("c" * 32) is not None  # the keys read once are kept up to date
    index.forget_verdicts(["c" * 32])
    assert index.verdict("c" * 32) is None


def test_a_forked_child_does_not_write_its_parents_deferred_hits(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path / "c")), key="k")
    entry = write_entry(cache, "d" * 32)
    cache.record_hit(entry, 0.01)  # deferred in the parent
    pid = os.fork()
    if pid == 0:  # the child: what its exit writes (atexit's flush_all) holds nothing of the parent's
        from nbcache.store import index as index_module

        try:
            index_module.flush_all()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.index.usage_of(entry.key) == (1, 0)  # counted once, by the parent
