"""The ``nbcache`` command, run as a subprocess: exit codes and output."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import run_cli, write_entry
from nbcache.store.cache import Cache
from nbcache.store.backends import LocalFolderStore


@pytest.fixture
def populated(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "c"
    cache = Cache(LocalFolderStore(str(root)))
    now = time.time()
    keys = [
        write_entry(cache, "aaaa" + "0" * 28, label="load", value=list(range(100)), created=now - 40 * 86400).key,
        write_entry(cache, "bbbb" + "0" * 28, label="train", value="model", runtime=12.5).key,
        write_entry(cache, "bbbc" + "0" * 28, label="train", value="model 2").key,
    ]
    cache.record_hit(cache.lookup(keys[1]), 0.25)
    cache.close()
    return root, keys


def test_ls_table_and_json(populated: tuple[Path, list[str]]) -> None:
    root, keys = populated
    table = run_cli("--dir", str(root), "ls").stdout
    assert "KEY" in table and "train" in table and keys[0][:12] in table
    rows = json.loads(run_cli("--dir", str(root), "ls", "--json").stdout)
    assert {r["key"] for r in rows} == set(keys)
    for field in ("key", "label", "size", "hits", "runtime", "created", "last_used"):
        assert all(field in r for r in rows)
    train = next(r for r in rows if r["key"] == keys[1])
    assert (train["hits"], train["runtime"], train["label"]) == (1, 12.5, "train")
    assert train["restore_time"] == 0.25
    assert all(r["restore_time"] == 0 for r in rows if r["key"] != keys[1])  # never restored: 0, not null


def test_dir_from_environment(populated: tuple[Path, list[str]]) -> None:
    root, keys = populated
    rows = json.loads(run_cli("ls", "--json", env={"NBCACHE_DIR": str(root)}).stdout)
    assert len(rows) == 3


def test_show_by_prefix(populated: tuple[Path, list[str]]) -> None:
    root, keys = populated
    out = run_cli("--dir", str(root), "show", "aaaa").stdout
    assert keys[0] in out and "load" in out and "source:" in out
    data = json.loads(run_cli("--dir", str(root), "show", "bbbb", "--json").stdout)
    assert data["key"] == keys[1] and data["usage"]["hits"] == 1
    assert "inline" not in data and data["outputs"]["id"]  # the signed entry, not the base64 its manifest holds
    ambiguous = run_cli("--dir", str(root), "show", "bbb", expect=2)
    assert "2 entries" in ambiguous.stderr
    missing = run_cli("--dir", str(root), "show", "ffff", expect=2)
    assert "no entry" in missing.stderr


def test_stats_json(populated: tuple[Path, list[str]]) -> None:
    root, _ = populated
    stats = json.loads(run_cli("--dir", str(root), "stats", "--json").stdout)
    assert stats["entries"] == 3 and stats["hits"] == 1 and stats["size"] > 0
    assert stats["time_saved"] == pytest.approx(12.25)
    for field in ("entries", "size", "hits", "misses", "time_saved"):
        assert field in stats
    assert "entries:" in run_cli("--dir", str(root), "stats").stdout


def test_clear_by_key_label_age_and_all(populated: tuple[Path, list[str]]) -> None:
    root, keys = populated
    run_cli("--dir", str(root), "clear", expect=2)
    assert "removed 1 entry" in run_cli("--dir", str(root), "clear", "--older-than", "30d").stdout
    remaining = {r["key"] for r in json.loads(run_cli("--dir", str(root), "ls", "--json").stdout)}
    assert remaining == set(keys[1:])
    run_cli("--dir", str(root), "clear", "bbbc")
    assert [r["key"] for r in json.loads(run_cli("--dir", str(root), "ls", "--json").stdout)] == [keys[1]]
    run_cli("--dir", str(root), "clear", "--label", "train")
    assert json.loads(run_cli("--dir", str(root), "ls", "--json").stdout) == []
    assert list((root / "blobs").rglob("*.*")) == [] and not [p for p in (root / "blobs").rglob("*") if p.is_file()]


def test_clear_all(populated: tuple[Path, list[str]]) -> None:
    from nbcache.run import pays

    root, keys = populated
    cache = Cache(LocalFolderStore(str(root)))
    slow = cache.lookup(keys[2])
    assert slow is not None and pays.judge(cache, keys[2], slow, restore_time=10.0) is not None  # not worth caching
    cache.close()
    assert "removed 2 entries" in run_cli("--dir", str(root), "clear", "--all").stdout
    assert "no entries" in run_cli("--dir", str(root), "ls").stdout
    assert pays.standing(Cache(LocalFolderStore(str(root))), keys[2]) is None  # measured again from now on


def test_gc_enforces_the_size_limit(populated: tuple[Path, list[str]]) -> None:
    root, keys = populated
    out = run_cli("--dir", str(root), "--size-limit", "1", "gc").stdout
    assert "evicted" in out
    assert len(json.loads(run_cli("--dir", str(root), "ls", "--json").stdout)) == 0


def test_verify_reports_damaged_and_tampered_entries(populated: tuple[Path, list[str]]) -> None:
    root, keys = populated
    assert "intact" in run_cli("--dir", str(root), "verify").stdout
    blob = next(p for p in (root / "blobs").rglob("*") if p.is_file() and p.stat().st_size > 200)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    manifest = root / "manifests" / f"{keys[2]}.json"
    tampered = json.loads(manifest.read_text())
    tampered["entry"]["runtime"] = 99.0
    manifest.write_text(json.dumps(tampered))
    proc = run_cli("--dir", str(root), "verify", expect=1)
    assert keys[2] in proc.stdout and "not signed" in proc.stdout
    assert "fails" in proc.stdout or "damaged" in proc.stdout
    assert "fail verification" in proc.stderr


def test_no_cache_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("--dir", str(tmp_path / "nowhere"), "ls", expect=2)
    assert proc.stderr.startswith("nbcache:")


def team_store(tmp_path: Path) -> tuple[Path, Path, list[str], list[str]]:
    """A store with two entries signed with the team's key (also in a key file) and one with
    another key; returns the root, the key file, the team's keys and the other key's."""
    root = tmp_path / "shared"
    team = Cache(LocalFolderStore(str(root)), key="team secret")
    ours = [write_entry(team, f"{i:032x}", label="team", value=i).key for i in range(2)]
    other = Cache(LocalFolderStore(str(root)), key="someone else's")
    theirs = [write_entry(other, "f" * 32, label="stranger", value=[1, 2]).key]
    team.close()
    other.close()
    keyfile = tmp_path / "team.key"
    keyfile.write_text("team secret\n")
    return root, keyfile, ours, theirs


def test_key_from_a_file_or_the_environment_for_every_command(tmp_path: Path) -> None:
    root, keyfile, ours, theirs = team_store(tmp_path)
    for given in (["--key", str(keyfile)], []):
        env = {} if given else {"NBCACHE_KEY": "team secret"}
        rows = json.loads(run_cli("--dir", str(root), *given, "ls", "--json", env=env).stdout)
        assert sorted(r["key"] for r in rows) == ours
        assert run_cli("--dir", str(root), *given, "show", ours[0], env=env).stdout.startswith("key:")
        assert json.loads(run_cli("--dir", str(root), *given, "stats", "--json", env=env).stdout)["entries"] == 2
    # With the default key (a fresh key file) none of them verifies.
    assert "no entries" in run_cli("--dir", str(root), "ls").stdout
    bad = run_cli("--dir", str(root), "--key", str(tmp_path / "missing.key"), "ls", expect=2)
    assert bad.stderr.startswith("nbcache: cannot read the key file") and "missing.key" in bad.stderr


def test_ls_all_marks_foreign_entries_and_clear_foreign_removes_them(tmp_path: Path) -> None:
    root, keyfile, ours, theirs = team_store(tmp_path)
    args = ("--dir", str(root), "--key", str(keyfile))
    plain = run_cli(*args, "ls").stdout
    assert theirs[0][:12] not in plain
    listing = run_cli(*args, "ls", "--all").stdout
    line = next(line for line in listing.splitlines() if line.startswith(theirs[0][:12]))
    assert "[foreign: signed with another key]" in line and "stranger" in line
    rows = json.loads(run_cli(*args, "ls", "--all", "--json").stdout)
    assert {r["key"]: r.get("foreign") for r in rows} == {ours[0]: None, ours[1]: None, theirs[0]: "signed with another key"}
    assert "removed 1 foreign entry" in run_cli(*args, "clear", "--foreign").stdout
    assert not (root / "manifests" / f"{theirs[0]}.json").exists()
    assert sorted(r["key"] for r in json.loads(run_cli(*args, "ls", "--all", "--json").stdout)) == ours
    assert "intact" in run_cli(*args, "verify").stdout  # the team's entries and their blobs are untouched


def test_doctor_says_what_is_fine_and_what_to_fix(tmp_path: Path) -> None:
    root, keyfile, ours, theirs = team_store(tmp_path)
    args = ("--dir", str(root), "--key", str(keyfile))
    out = run_cli(*args, "doctor").stdout
    for check in ("reachable", "writable", "key", "signatures", "format", "free space", "index", "index sync", "blobs", "size"):
        assert any(line.split()[1:2] == check.split()[:1] for line in out.splitlines()), (check, out)
    assert "1 entry is signed with another key (2 with yours)" in out and "fix: get the team's key" in out
    assert out.splitlines()[-1].startswith("0 failed")
    # Every entry foreign to the key given: a failure, with the fix.
    stranger = tmp_path / "stranger.key"
    stranger.write_text("nobody's\n")
    proc = run_cli("--dir", str(root), "--key", str(stranger), "doctor", expect=1)
    assert "fail  signatures" in proc.stdout and "3 entries are signed with another key (0 with yours)" in proc.stdout
    # A blob gone and the store over its limit.
    manifest = json.loads((root / "manifests" / f"{ours[0]}.json").read_text())
    (root / "blobs" / manifest["entry"]["values"]["id"][:2] / manifest["entry"]["values"]["id"]).unlink()
    out = run_cli(*args, "--size-limit", "10", "doctor").stdout
    assert "warn  blobs" in out and "warn  size" in out and "fix: nbcache gc" in out


def test_doctor_on_a_store_it_cannot_write(tmp_path: Path) -> None:
    import os
    import stat

    root, keyfile, ours, theirs = team_store(tmp_path)
    if os.geteuid() == 0:
        # root writes anywhere: a read-only bind mount is what refuses it (as in the reliability tests)
        import subprocess

        ro = tmp_path / "ro"
        ro.mkdir()
        subprocess.run(["mount", "--bind", str(root), str(ro)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        try:
            proc = run_cli("--dir", str(ro), "--key", str(keyfile), "doctor", expect=1)
        finally:
            subprocess.run(["umount", str(ro)], check=True)
    else:
        (root / "tmp").mkdir(exist_ok=True)
        os.chmod(root / "tmp", stat.S_IRUSR | stat.S_IXUSR)
        proc = run_cli("--dir", str(root), "--key", str(keyfile), "doctor", expect=1)
    assert "fail  writable" in proc.stdout and "fix:" in proc.stdout
