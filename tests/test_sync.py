"""The index's incremental sync (nbcache.store.sync), at a small scale: a lookup never syncs, and a
sync reads only the manifests that are new or changed since the last one. The 100,000-entry
figures are in benchmarks/bench_store.py."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import write_entry
from nbcache.store.backends import BlobStore, LocalFolderStore, open_store
from nbcache.store.cache import Cache


class Counting:
    """Wraps a real store's ``get`` to record which manifests are read."""

    def __init__(self, store: BlobStore):
        self.reads: list[str] = []
        real = store.get

        def get(name: str, limit: Any = None) -> bytes:
            if name.startswith("manifests/"):
                self.reads.append(name[len("manifests/") : -len(".json")])
            return real(name, limit)

        store.get = get  # type: ignore[method-assign]


def machine(store: BlobStore, tmp_path: Path, name: str, key: str = "team") -> Cache:
    """A Cache with an index of its own, as on another machine sharing ``store``."""
    return Cache(store, key=key, size_limit=None, index_path=str(tmp_path / f"index-{name}.sqlite"))


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalFolderStore(str(tmp_path / "store"))
    return open_store(f"memory://sync-{uuid.uuid4().hex}")


def test_a_lookup_on_a_machine_with_no_index_reads_one_manifest(store: BlobStore, tmp_path: Path) -> None:
    writer = machine(store, tmp_path, "a")
    keys = [write_entry(writer, value=i).key for i in range(30)]
    fresh = machine(store, tmp_path, "b")
    counter = Counting(store)
    assert fresh.index.fresh
    assert fresh.lookup(keys[7]) is not None
    assert counter.reads == [keys[7]]  # no sync on the hit path
    assert fresh.lookup("0" * 32) is None and counter.reads == [keys[7], "0" * 32]
    assert fresh.index.keys() == {keys[7]}


def test_a_sync_reads_only_what_changed(store: BlobStore, tmp_path: Path) -> None:
    a, b = machine(store, tmp_path, "a"), machine(store, tmp_path, "b")
    first = [write_entry(a, value=i).key for i in range(10)]
    counter = Counting(store)
    report = b.sync()
    assert (report.listed, report.read, report.removed) == (10, 10, 0) and sorted(counter.reads) == sorted(first)
    assert b.sync().read == 0  # nothing changed: one listing, no read
    # Machine a writes three more, writes one again and deletes one.
    more = [write_entry(a, value=i).key for i in range(3)]
    time.sleep(0.01)  # a later modification time (or tag) for the rewritten manifest
    write_entry(a, first[0], value="again", runtime=7.0)
    a.delete(first[1])
    counter.reads.clear()
    report = b.sync()
    # A remote index reads the store's change log instead of a listing (nbcache.store.changes).
    listed = 12 if isinstance(store, LocalFolderStore) else -1
    assert (report.listed, report.read, report.removed) == (listed, 4, 1)
    assert sorted(counter.reads) == sorted(more + [first[0]])
    assert {s.key: s.runtime for s in b.stats()}[first[0]] == 7.0
    assert b.index.keys() == set(first[2:] + more + [first[0]])


def test_entries_written_or_found_here_are_not_read_again(store: BlobStore, tmp_path: Path) -> None:
    a = machine(store, tmp_path, "a")
    keys = [write_entry(a, value=i).key for i in range(5)]
    counter = Counting(store)
    assert a.sync().read == 0 and counter.reads == []  # rows from its own writes adopt the listed stamps
    assert a.sync().read == 0


def test_foreign_manifests_are_indexed_once_and_not_read_again(store: BlobStore, tmp_path: Path) -> None:
    ours = machine(store, tmp_path, "a")
    theirs = machine(store, tmp_path, "b", key="another key")
    mine = write_entry(ours, value=1).key
    stranger = write_entry(theirs, value=2).key
    reader = machine(store, tmp_path, "c")
    report = reader.sync()
    assert (report.read, report.foreign) == (2, 1)
    assert [s.key for s in reader.stats()] == [mine]
    assert [(f.key, f.reason) for f in reader.index.foreign()] == [(stranger, "signed with another key")]
    counter = Counting(store)
    if not isinstance(store, LocalFolderStore):
        # The change log's record of their write names a manifest the listing's row cannot be
        # compared with: read once more, then known by the log's digest.
        assert reader.sync().read == 1 and counter.reads == [stranger]
        counter.reads.clear()
    assert reader.sync().read == 0 and counter.reads == []
    # Their entry replaced by one signed with our key: read again, and now usable.
    time.sleep(0.01)
    write_entry(ours, stranger, value=3)
    assert reader.sync().read == 1
    assert sorted(s.key for s in reader.stats()) == sorted([mine, stranger]) and reader.index.foreign() == []


def test_listings_sync_once_per_cache(store: BlobStore, tmp_path: Path) -> None:
    a = machine(store, tmp_path, "a")
    write_entry(a, value=1)
    b = machine(store, tmp_path, "b")
    assert len(b.stats()) == 1  # the first listing syncs
    write_entry(a, value=2)
    assert len(b.stats()) == 1  # later ones use the index as it is
    assert len(b.listing(sync=False)) == 1
    b.sync()
    assert len(b.stats()) == 2 and [r.names for r in b.listing()] == [("x",), ("x",)]


def test_a_remote_store_s_lookups_are_answered_by_the_kept_manifest(tmp_path: Path) -> None:
    store = open_store(f"memory://sync-{uuid.uuid4().hex}")
    a = machine(store, tmp_path, "a")
    key = write_entry(a, value=1).key
    b = machine(store, tmp_path, "b")
    counter = Counting(store)
    first = b.lookup(key)
    assert first is not None and counter.reads == [key]
    assert b.lookup(key) == first and counter.reads == [key]  # no request: the index keeps it
    # A kept manifest is verified again: one altered in the index is dropped and read anew.
    b.index._write("UPDATE entries SET manifest = replace(manifest, 'x', 'y') WHERE key = ?", (key,))
    assert b.lookup(key) == first and counter.reads == [key, key]
    # A local store reads the manifest each time (cheaper than keeping it), and keeps none.
    local = machine(LocalFolderStore(str(tmp_path / "local")), tmp_path, "c")
    lkey = write_entry(local, value=1).key
    assert local.index.manifest(lkey) is None


def test_a_remote_index_synced_moments_ago_is_not_listed_again(tmp_path: Path) -> None:
    store = open_store(f"memory://sync-{uuid.uuid4().hex}")
    write_entry(machine(store, tmp_path, "a"), value=1)
    first = machine(store, tmp_path, "b")
    assert len(first.stats()) == 1
    write_entry(machine(store, tmp_path, "a"), value=2)
    again = machine(store, tmp_path, "b")  # another process with the same index, moments later
    assert len(again.stats()) == 1
    assert len(again.listing(sync=True)) == 2  # an explicit refresh always syncs
    # Older than REMOTE_SYNC_MAX_AGE: the next listing syncs.
    write_entry(machine(store, tmp_path, "a"), value=3)
    later = machine(store, tmp_path, "b")
    later.index.set_meta("synced_at", repr(time.time() - 3600))
    assert len(later.stats()) == 3


def test_a_fresh_index_starts_from_the_store_s_snapshot(store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbcache.store import catalog

    from nbcache.store import changes

    monkeypatch.setattr(catalog, "MIN_READS", 5)  # the threshold, not the logic: 5 entries stand for thousands
    # A remote index starts from the snapshot and the change log since its listing, less MARGIN:
    # the records of these writes, moments before, would be read again.
    monkeypatch.setattr(changes, "MARGIN", 0.0)
    a = machine(store, tmp_path, "a")
    first = [write_entry(a, value=i, label="l").key for i in range(8)]
    b = machine(store, tmp_path, "b")
    assert b.sync().read == 8  # read them all, and left a snapshot of what it learnt
    snapshots = [n for n in store.list("catalog")]
    assert len(snapshots) == 1
    counter = Counting(store)
    c = machine(store, tmp_path, "c")
    report = c.sync()
    assert (report.from_snapshot, report.read) == (8, 0) and counter.reads == []  # no manifest read
    assert sorted(s.key for s in c.stats()) == sorted(first) and {s.label for s in c.stats()} == {"l"}
    assert c.lookup(first[3]) == a.lookup(first[3])  # a lookup still reads and verifies the manifest
    # Entries written since the snapshot, and one deleted: read and dropped as in any sync.
    more = [write_entry(a, value=i).key for i in range(2)]
    a.delete(first[0])
    counter.reads.clear()
    report = machine(store, tmp_path, "d").sync()
    assert (report.from_snapshot, report.read, report.removed) == (8, 2, 1) and sorted(counter.reads) == sorted(more)


def test_a_snapshot_of_another_key_or_tampered_with_is_ignored(store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbcache.store import catalog

    monkeypatch.setattr(catalog, "MIN_READS", 5)
    a = machine(store, tmp_path, "a")
    keys = [write_entry(a, value=i).key for i in range(6)]
    machine(store, tmp_path, "b").sync()
    # Someone with another key: the snapshot does not verify, the manifests are read (and are foreign).
    stranger = machine(store, tmp_path, "s", key="another key")
    report = stranger.sync()
    assert (report.from_snapshot, report.read, report.foreign) == (0, 6, 6) and stranger.stats() == []
    # A snapshot altered in the store (a row added that no manifest backs, say): ignored too.
    (name,) = [n for n in store.list("catalog")]
    raw = bytearray(store.get(name))
    raw[-1] ^= 1
    store.put(name, [bytes(raw)])
    report = machine(store, tmp_path, "c").sync()
    assert (report.from_snapshot, report.read) == (0, 6)
    assert sorted(s.key for s in machine(store, tmp_path, "c").stats()) == sorted(keys)


def test_rows_from_a_snapshot_keep_the_manifest_after_the_first_remote_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbcache.store import catalog

    from nbcache.store import changes

    monkeypatch.setattr(catalog, "MIN_READS", 5)
    monkeypatch.setattr(changes, "MARGIN", 0.0)  # as in test_a_fresh_index_starts_from_the_store_s_snapshot
    store = open_store(f"memory://sync-{uuid.uuid4().hex}")
    keys = [write_entry(machine(store, tmp_path, "a"), value=i).key for i in range(6)]
    machine(store, tmp_path, "b").sync()
    c = machine(store, tmp_path, "c")
    assert c.sync().from_snapshot == 6 and c.index.manifest(keys[0]) is None  # a snapshot carries no manifest
    counter = Counting(store)
    assert c.lookup(keys[0]) is not None and c.lookup(keys[0]) is not None
    assert counter.reads == [keys[0]]  # asked the store once, then the index's copy


def test_an_unchanged_local_folder_of_manifests_is_not_listed_again(tmp_path: Path) -> None:
    import os

    store = LocalFolderStore(str(tmp_path / "store"))
    a = machine(store, tmp_path, "a")
    keys = [write_entry(a, value=i).key for i in range(4)]
    folder = tmp_path / "store" / "manifests"
    past = time.time_ns() - 60 * 10**9
    os.utime(folder, ns=(past, past))  # written a minute ago: a stamp old enough to trust
    b = machine(store, tmp_path, "b")
    assert b.sync().listed == 4
    assert b.sync().listed == -1  # the folder's stamp is unchanged: no listing at all
    assert b.sync(full=True).listed == 4
    write_entry(a, value=99)  # renamed into the folder: its stamp changes
    report = b.sync()
    assert (report.listed, report.read) == (5, 1)
    a.delete(keys[0])
    assert b.sync().removed == 1
