"""The change log of a shared store (nbcache.store.changes): a remote index's sync reads the hour
folders of records since its previous sync instead of listing every manifest, and falls back to a
full listing for what the log cannot tell. On fsspec's memory store (a remote store here) and on
the tests' S3 server."""

from __future__ import annotations

import time
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import write_entry
from nbcache.store import changes
from nbcache.store.backends import BlobStore, open_store
from nbcache.store.cache import Cache
from nbcache.store.manifest import manifest_name


class Watching:
    """Records what a real store is asked to list and which manifests it is asked for."""

    def __init__(self, store: BlobStore):
        self.listed: list[str] = []
        self.reads: list[str] = []
        list_names, list_stamps, get = store.list, store.list_stamps, store.get

        def listing(prefix: str) -> Any:
            self.listed.append(prefix)
            return list_names(prefix)

        def stamps(prefix: str) -> Any:
            self.listed.append(prefix)
            return list_stamps(prefix)

        def reading(name: str, limit: Any = None) -> bytes:
            if name.startswith("manifests/"):
                self.reads.append(name[len("manifests/") : -len(".json")])
            return get(name, limit)

        store.list, store.list_stamps, store.get = listing, stamps, reading  # type: ignore[method-assign]

    def clear(self) -> None:
        self.listed.clear()
        self.reads.clear()


def machine(store: BlobStore, tmp_path: Path, name: str, key: str = "team") -> Cache:
    return Cache(store, key=key, size_limit=None, index_path=str(tmp_path / f"index-{name}.sqlite"))


@pytest.fixture
def store() -> BlobStore:
    return open_store(f"memory://changes-{uuid.uuid4().hex}")


def test_records_name_the_operation_the_key_and_the_manifest(store: BlobStore) -> None:
    changes.record(store, "put", ["a" * 32], b"manifest bytes", now=1_000_000.0)
    changes.record(store, "del", ["b" * 32], now=1_000_001.5)
    names = sorted(store.list(changes.FOLDER))
    assert names == [
        f"changes/{1_000_000 // 3600:08d}/{1_000_000 * 10**9:019d}-put-{'a' * 32}-{changes.digest(b'manifest bytes')}",
        f"changes/{1_000_001 // 3600:08d}/{1_000_001_500_000_000:019d}-del-{'b' * 32}",
    ]
    found = changes.read(store, since=1_000_000.0, until=1_000_002.0)
    assert [(c.op, c.key, c.digest) for c in found] == [("put", "a" * 32, changes.digest(b"manifest bytes")), ("del", "b" * 32, "")]
    store.put("changes/00000277/not-a-record", [b""])  # what the log does not understand is ignored
    assert len(changes.read(store, since=1_000_000.0, until=1_000_002.0)) == 2


def test_a_sync_after_a_full_listing_reads_the_log_not_the_manifests(store: BlobStore, tmp_path: Path) -> None:
    a, b = machine(store, tmp_path, "a"), machine(store, tmp_path, "b")
    first = [write_entry(a, value=i).key for i in range(6)]
    watch = Watching(store)
    report = b.sync()
    assert report.listed == 6 and report.changes == -1 and "manifests" in watch.listed  # the first sync lists
    more = [write_entry(a, value=i).key for i in range(2)]
    a.delete(first[0])
    watch.clear()
    report = b.sync()
    assert (report.listed, report.read, report.removed) == (-1, 2, 1)
    assert "manifests" not in watch.listed and all(p.startswith("changes/") for p in watch.listed)
    assert 1 <= len(watch.listed) <= 2  # a request per hour folder since the last sync (and MARGIN before)
    assert sorted(watch.reads) == sorted(more)
    assert sorted(s.key for s in b.stats()) == sorted(first[1:] + more)
    watch.clear()
    assert b.sync().read == 0 and watch.reads == []  # nothing new: no manifest read


def test_a_cell_stored_anew_under_the_same_key_is_read_again(store: BlobStore, tmp_path: Path) -> None:
    a, b = machine(store, tmp_path, "a"), machine(store, tmp_path, "b")
    key = write_entry(a, value=1, runtime=1.0).key
    b.sync()
    write_entry(a, key, value=2, runtime=9.0)  # the same inputs, run again: another manifest
    watch = Watching(store)
    assert b.sync().read == 1 and watch.reads == [key]
    (row,) = b.stats()
    assert row.runtime == 9.0
    entry = b.lookup(key)
    assert entry is not None and entry.runtime == 9.0  # the index holds the new manifest


def test_what_the_log_cannot_tell_is_caught_by_a_full_listing(store: BlobStore, tmp_path: Path) -> None:
    a, b = machine(store, tmp_path, "a"), machine(store, tmp_path, "b")
    keys = [write_entry(a, value=i).key for i in range(3)]
    b.sync()
    store.delete(manifest_name(keys[0]))  # removed by hand: no record
    store.put(manifest_name("f" * 32), [store.get(manifest_name(keys[1]))])  # an older nbcache's write
    assert b.sync().removed == 0 and len(b.stats()) == 3  # the log says nothing of them
    report = b.sync(full=True)  # nbcache doctor, gc, clear --all
    assert report.listed == 3 and report.removed == 1


def test_a_full_listing_is_due_after_full_max_age(store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = machine(store, tmp_path, "a"), machine(store, tmp_path, "b")
    write_entry(a, value=1)
    b.sync()
    assert b.sync().listed == -1
    b.index.set_meta("listed_at", repr(time.time() - changes.FULL_MAX_AGE - 1))
    assert b.sync().listed == 1  # some records of that time may be gone: list every manifest


@pytest.mark.parametrize("hours", [-24, 24])
def test_a_writer_whose_clock_is_a_day_off_is_still_seen(store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hours: int) -> None:
    a, b = machine(store, tmp_path, "a"), machine(store, tmp_path, "b")
    write_entry(a, value=1)
    b.sync()
    off = hours * 3600
    skewed = types.SimpleNamespace(time=lambda: time.time() + off, time_ns=lambda: time.time_ns() + off * 10**9)
    c = machine(store, tmp_path, "c")  # a machine whose clock is a day off: what the log sees of it
    monkeypatch.setattr(changes, "time", skewed)
    late = write_entry(c, value=2, created=skewed.time()).key
    monkeypatch.setattr(changes, "time", time)
    assert abs(c.store_clock() + off) < 5  # c measured the store's clock
    report = b.sync()
    assert report.listed == -1 and report.read == 1 and late in {s.key for s in b.stats()}


def test_the_store_clock_is_measured_once_and_kept_in_the_index(store: BlobStore, tmp_path: Path) -> None:
    a = machine(store, tmp_path, "a")
    watch = Watching(store)
    write_entry(a, value=1)
    write_entry(a, value=2)
    probes = [n for n in store.list(changes.FOLDER) if "/clock/" in n]
    assert probes == [] and abs(a.store_clock()) < 5  # the probe is removed
    again = machine(store, tmp_path, "a")  # the same index, another process
    assert again.store_clock() == a.store_clock()
    assert watch.reads == []


def test_old_records_are_removed_by_gc(store: BlobStore, tmp_path: Path) -> None:
    a = machine(store, tmp_path, "a")
    changes.record(store, "put", ["a" * 32], b"m", now=time.time() - changes.KEEP - 2 * 3600)
    key = write_entry(a, value=1).key
    assert a.sweep() >= 1
    left = [n for n in store.list(changes.FOLDER)]
    assert len(left) == 1 and key in left[0]


def test_a_record_that_cannot_be_written_costs_the_write_nothing(store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = machine(store, tmp_path, "a")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("nbcache test: no writing under changes/")

    monkeypatch.setattr(changes, "record", refuse)
    key = write_entry(a, value=1).key
    assert a.lookup(key) is not None
    a.delete(key)
    assert a.lookup(key) is None


def test_a_local_store_keeps_no_log(tmp_path: Path) -> None:
    from nbcache.store.backends import LocalFolderStore

    local = LocalFolderStore(str(tmp_path / "store"))
    a = machine(local, tmp_path, "a")
    a.delete(write_entry(a, value=1).key)
    assert list(local.list(changes.FOLDER)) == []


def test_two_machines_on_the_s3_server(tmp_path: Path, bucket: str) -> None:
    a, b = machine(open_store(bucket), tmp_path, "a"), machine(open_store(bucket), tmp_path, "b")
    first = write_entry(a, value=1).key
    assert b.sync().listed == 1
    watch = Watching(b.store)
    second = write_entry(a, value=2).key
    a.delete(first)
    report = b.sync()
    assert (report.listed, report.read, report.removed) == (-1, 1, 1) and watch.reads == [second]
    assert "manifests" not in watch.listed
    assert [s.key for s in b.stats()] == [second]


def test_clear_all_and_gc_list_every_manifest(store: BlobStore, tmp_path: Path) -> None:
    a, b = machine(store, tmp_path, "a"), machine(store, tmp_path, "b")
    write_entry(a, value=1)
    b.sync()
    unlogged = write_entry(a, value=2).key
    for name in [n for n in store.list(changes.FOLDER) if unlogged in n]:
        store.delete(name)  # as an older nbcache writes: no record
    assert unlogged not in {s.key for s in b.stats()} and b.sync().listed == -1
    assert sorted(b.clear(everything=True)) == sorted(s.key for s in a.index.stats())
    assert list(store.list("manifests")) == []


def test_a_fresh_machine_starts_from_the_snapshot_and_the_log_without_a_listing(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbcache.store import catalog

    monkeypatch.setattr(catalog, "MIN_READS", 5)  # 5 entries stand for thousands
    a = machine(store, tmp_path, "a")
    first = [write_entry(a, value=i).key for i in range(6)]
    assert machine(store, tmp_path, "b").sync().read == 6  # a full listing, and a snapshot left
    later = [write_entry(a, value=i).key for i in range(2)]
    a.delete(first[0])
    watch = Watching(store)
    report = machine(store, tmp_path, "c").sync()
    assert "manifests" not in watch.listed and report.listed == -1  # the snapshot, then the change log
    assert report.from_snapshot == 6 and report.removed == 1
    assert set(later) <= set(watch.reads)  # (and the writes within MARGIN before the snapshot's listing)
    c = machine(store, tmp_path, "c")
    assert sorted(s.key for s in c.stats()) == sorted(first[1:] + later)


def test_a_snapshot_older_than_full_max_age_is_listed_after_and_replaced(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbcache.store import catalog

    monkeypatch.setattr(catalog, "MIN_READS", 5)
    a = machine(store, tmp_path, "a")
    [write_entry(a, value=i).key for i in range(6)]
    machine(store, tmp_path, "b").sync()
    (old,) = list(store.list("catalog"))
    monkeypatch.setattr(changes, "FULL_MAX_AGE", 0.0)  # every snapshot is now too old to start from
    watch = Watching(store)
    report = machine(store, tmp_path, "c").sync()
    assert "manifests" in watch.listed and report.listed == 6 and report.from_snapshot == 6
    assert list(store.list("catalog")) != [old]  # that full listing left a newer snapshot
