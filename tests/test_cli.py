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
