"""A cache shared through a real S3-protocol server (Swift + s3api on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import nbcache_magics, run_cli, slow_to_restore, write_entry
from nbcache.store.cache import Cache
from nbcache.store.backends import open_store
from nbcache.run.serialize import load_values

MACHINE = Path(__file__).with_name("machine.py")

CELL = """%%cache --name shared
import numpy as np
table = np.linspace(0, 1, 300_000) ** 2
answer = float(table.sum())
print("computed on this machine")
"""


def on_machine(tmp_path: Path, name: str, cache_url: str, swift: Any, cell: str = CELL) -> dict[str, Any]:
    """Run ``cell`` on a separate "machine": its own process, working folder and local index."""
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    (home / "cell.py").write_text(cell)
    env = dict(os.environ)
    env.update(swift.env())
    env.update(
        NBCACHE_DIR=cache_url,
        NBCACHE_KEY="the team's shared secret",
        XDG_CACHE_HOME=str(home / ".cache"),
        JUPYTER_DATA_DIR=str(home / "jupyter"),
    )
    proc = subprocess.run(
        [sys.executable, str(MACHINE), str(home / "cell.py"), "answer"],
        cwd=home, env=env, capture_output=True, text=True, timeout=120,
    )
    report = next((line for line in proc.stdout.splitlines() if line.startswith("REPORT ")), None)
    assert proc.returncode == 0 and report, f"machine {name} failed\n{proc.stdout}\n{proc.stderr}"
    data: dict[str, Any] = json.loads(report[len("REPORT "):])
    data["stdout"], data["stderr"] = proc.stdout, proc.stderr
    return data


def test_one_machine_stores_the_other_hits(tmp_path: Path, bucket: str, swift: Any) -> None:
    first = on_machine(tmp_path, "alice", bucket, swift)
    assert first["status"] == "stored", first
    assert "computed on this machine" in first["stdout"]
    second = on_machine(tmp_path, "bob", bucket, swift)
    assert second["status"] == "hit", second
    assert second["values"] == first["values"]
    assert "computed on this machine" in second["stdout"]  # the output is replayed
    # Each machine keeps its own local index, outside the bucket.
    assert first["index"].startswith(str(tmp_path / "alice" / ".cache"))
    assert second["index"].startswith(str(tmp_path / "bob" / ".cache"))
    assert second["stats"] == first["stats"]
    # The CLI sees the shared store too, and every entry verifies.
    env = {**swift.env(), "NBCACHE_KEY": "the team's shared secret", "XDG_CACHE_HOME": str(tmp_path / "cli")}
    rows = json.loads(run_cli("--dir", bucket, "ls", "--json", env=env).stdout)
    assert [r["label"] for r in rows] == ["shared"]
    run_cli("--dir", bucket, "verify", env=env)


FILES_CELL = """%%cache --name export
import os, time
import numpy as np
time.sleep(0.3)  # worth keeping
os.makedirs("export", exist_ok=True)
np.save("export/table.npy", np.linspace(0, 1, 100_000))
with open("export/summary.txt", "w") as fh:
    fh.write("rows: 100000\\n")
answer = 100_000
"""


def test_a_file_written_on_one_machine_is_put_back_on_the_other(tmp_path: Path, bucket: str, swift: Any) -> None:
    first = on_machine(tmp_path, "alice", bucket, swift, cell=FILES_CELL)
    assert first["status"] == "stored", first
    second = on_machine(tmp_path, "bob", bucket, swift, cell=FILES_CELL)
    assert second["status"] == "hit", second
    for name in ("export/table.npy", "export/summary.txt"):  # in bob's own working folder
        assert (tmp_path / "bob" / name).read_bytes() == (tmp_path / "alice" / name).read_bytes()
    assert "files put back: export" in second["stdout"] + second["stderr"]


def test_an_entry_that_does_not_pay_on_one_machine_stays_for_the_team(
    tmp_path: Path, bucket: str, swift: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "team-code"  # the module both machines import, at one path (it is in the key)
    code.mkdir()
    (code / "frozen.py").write_text(slow_to_restore(0.5))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])))
    cell = "%%cache --name frozen\nfrom frozen import Frozen\nanswer = Frozen()\n"
    assert on_machine(tmp_path, "alice", bucket, swift, cell)["status"] == "stored"
    assert on_machine(tmp_path, "bob", bucket, swift, cell)["status"] == "hit"  # 0.5 s to restore a µs cell
    again = on_machine(tmp_path, "bob", bucket, swift, cell)
    assert again["status"] == "skipped" and "not worth caching" in again["stderr"]  # bob now just runs it
    assert on_machine(tmp_path, "alice", bucket, swift, cell)["status"] == "hit"  # the entry is still the team's
    env = {**swift.env(), "NBCACHE_KEY": "the team's shared secret", "XDG_CACHE_HOME": str(tmp_path / "cli")}
    assert [r["label"] for r in json.loads(run_cli("--dir", bucket, "ls", "--json", env=env).stdout)] == ["frozen"]


def test_another_key_does_not_load_the_team_entry(tmp_path: Path, bucket: str, swift: Any) -> None:
    on_machine(tmp_path, "alice", bucket, swift)
    home = tmp_path / "mallory"
    home.mkdir()
    (home / "cell.py").write_text(CELL)
    env = {**os.environ, **swift.env(), "NBCACHE_DIR": bucket, "NBCACHE_KEY": "another key",
           "XDG_CACHE_HOME": str(home / ".cache"), "JUPYTER_DATA_DIR": str(home / "j")}
    proc = subprocess.run([sys.executable, str(MACHINE), str(home / "cell.py")], cwd=home, env=env,
                          capture_output=True, text=True, timeout=120)
    # the cell runs for mallory, who is told why; the team's entry is neither loaded nor replaced
    assert '"status": "skipped"' in proc.stdout, proc.stdout + proc.stderr
    assert "nbcache:" in proc.stderr and "not signed" in proc.stderr
    assert on_machine(tmp_path, "bob", bucket, swift)["status"] == "hit"


def test_store_semantics_on_s3(bucket: str) -> None:
    cache = Cache(open_store(bucket), key="k", compression="auto")
    big = np.random.default_rng(0).random(1_500_000)  # 12 MB: a multipart upload
    entry = write_entry(cache, value=big, label="big")
    small = write_entry(cache, value=np.zeros(10_000), label="small")
    assert small.values.codec == "zstd" and entry.values.codec == "none"
    assert np.array_equal(load_values(cache.read_frames(cache.lookup(entry.key)), namespace={})["x"], big)
    again = write_entry(cache, entry.key, value=big, label="big")  # same key twice: one entry
    assert again.values == entry.values
    assert sorted(s.label or "" for s in cache.stats()) == ["big", "small"]
    assert cache.verify() == []
    assert cache.sweep(older_than=0) == 0  # nothing orphaned
    assert cache.clear(label="small") == [small.key]
    assert [s.key for s in cache.stats()] == [entry.key]


def test_a_small_entry_is_restored_from_the_manifest_the_index_keeps_without_a_request(tmp_path: Path, bucket: str) -> None:
    index = str(tmp_path / "index.sqlite")
    entry = write_entry(Cache(open_store(bucket), key="k", index_path=index), value=[1, "two"])
    assert set(entry.inline) == {entry.values.id, entry.outputs.id}
    store = open_store(bucket)
    outputs = store.get(entry.outputs.name)
    # Everything the entry has in the bucket goes: what the hit restores can only come from the
    # manifest this machine's index kept, so restoring it asked the server nothing.
    for name in (entry.values.name, entry.outputs.name, Cache.manifest_name(entry.key)):
        store.delete(name)
    cache = Cache(open_store(bucket), key="k", index_path=index)
    found = cache.lookup(entry.key)
    assert found is not None and found == entry
    assert load_values(cache.read_frames(found), namespace={})["x"] == [1, "two"]
    assert cache.read_output_bytes(found) == outputs


def test_two_writers_share_a_bucket(tmp_path: Path, bucket: str, swift: Any) -> None:
    env = {**os.environ, **swift.env(), "NBCACHE_KEY": "team"}
    writer = Path(__file__).with_name("writer.py")
    procs = [
        subprocess.Popen([sys.executable, str(writer), bucket, "same", "15", "0.01", str(n + 1)],
                         env={**env, "XDG_CACHE_HOME": str(tmp_path / f"w{n}")}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    cache = Cache(open_store(bucket), key="team")
    assert cache.verify() == []
    assert len(list(cache.entries())) == 15


def test_server_stopped_while_the_notebook_uses_it(ip: Any, bucket: str, swift: Any, capfd: Any) -> None:
    magics = nbcache_magics(ip)
    magics.directory = bucket
    magics.key = "team"
    assert ip.run_cell(CELL).success and magics.engine.last.status == "stored"
    capfd.readouterr()
    swift.stop_proxy()
    try:
        start = time.monotonic()
        for n in range(3):
            cell = CELL.replace("** 2", f"** {n + 3}")
            result = ip.run_cell(cell)
            assert result.success and magics.engine.last.status in ("skipped", "stored")
            assert ip.user_ns["answer"] > 0
        elapsed = time.monotonic() - start
        captured = capfd.readouterr()
        warnings = [line for line in captured.err.splitlines() if line.startswith("nbcache:")]
        assert len(warnings) == 1, captured.err
        assert captured.out.count("computed on this machine") == 3
        assert elapsed < 60, f"cells waited {elapsed:.0f}s for an absent server"
    finally:
        swift.start_proxy()
    # Once the server is back (and the retry pause is over), the cache works again.
    from nbcache.store import cache as cache_module

    cache = magics.engine.cache
    cache.outage.reset()
    del ip.user_ns["answer"]
    assert ip.run_cell(CELL).success and magics.engine.last.status == "hit"
    assert cache_module.Cache.verify(cache) == []


def test_storage_options_from_config(ip: Any, bucket: str, swift: Any, monkeypatch: Any) -> None:
    for var in swift.env():
        monkeypatch.delenv(var)
    from swift_server import ACCESS_KEY, SECRET_KEY

    magics = nbcache_magics(ip)
    magics.directory = bucket
    magics.storage_options = {"endpoint_url": swift.endpoint, "key": ACCESS_KEY, "secret": SECRET_KEY}
    assert ip.run_cell(CELL).success and magics.engine.last.status == "stored"
    del ip.user_ns["answer"]
    assert ip.run_cell(CELL).success and magics.engine.last.status == "hit"


def test_kill_9_during_multipart_uploads(tmp_path: Path, bucket: str, swift: Any) -> None:
    import signal

    env = {**os.environ, **swift.env(), "NBCACHE_KEY": "team", "XDG_CACHE_HOME": str(tmp_path / "w")}
    writer = Path(__file__).with_name("writer.py")
    reported: set[str] = set()
    for n, delay in enumerate((0.8, 1.6, 2.4)):
        proc = subprocess.Popen([sys.executable, str(writer), bucket, "distinct", "100", "12", str(n + 1)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        reported |= set(out.split())
    cache = Cache(open_store(bucket), key="team")
    assert cache.verify() == []
    visible = {entry.key for entry in cache.entries()}
    assert reported <= visible
    for entry in cache.entries():
        assert load_values(cache.read_frames(entry), namespace={})["x"].size == 1_500_000


def test_ls_right_after_a_sync_answers_from_the_index_without_the_s3_client(tmp_path: Path, bucket: str, swift: Any) -> None:
    env = {"NBCACHE_DIR": bucket, "NBCACHE_KEY": "team", "XDG_CACHE_HOME": str(tmp_path / "xdg"), **swift.env()}
    cache = Cache(open_store(bucket), key="team")
    entry = write_entry(cache, label="shared step", value=np.arange(10.0))
    cache.close()
    # What `nbcache ls` imports, in a fresh process: the first run syncs (it needs the client),
    # the next one, moments later, reads the index alone.
    probe = (
        "import sys\nfrom nbcache.cli import main\n"
        "try:\n    main(['ls'])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('s3fs imported:', 's3fs' in sys.modules)\n"
    )
    first, second = (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
        for _ in range(2)
    )
    for done in (first, second):
        assert done.returncode == 0, done.stderr
        assert "shared step" in done.stdout and entry.key[:8] in done.stdout
    assert "s3fs imported: True" in first.stdout
    assert "s3fs imported: False" in second.stdout


def test_a_store_whose_client_is_not_installed_fails_at_once() -> None:
    from nbcache.errors import StoreError

    with pytest.raises(StoreError, match="gcsfs|gcs"):
        open_store("gcs://bucket/cache")
