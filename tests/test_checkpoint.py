"""Checkpoints: an interrupted loop resumes from the last saved state; completion clears it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nbcache
from conftest import Shell


def test_interrupted_loop_resumes_and_completion_clears(tmp_path: Path) -> None:
    done: list[int] = []

    def run(stop_at: int | None) -> None:
        with nbcache.checkpoint("loop", every=3, directory=str(tmp_path)) as ckpt:
            state = ckpt.load(default={"i": 0})
            for i in range(state["i"], 10):
                if i == stop_at:
                    raise KeyboardInterrupt
                done.append(i)
                ckpt.save({"i": i + 1})

    with pytest.raises(KeyboardInterrupt):
        run(stop_at=5)
    assert done == [0, 1, 2, 3, 4]
    assert (tmp_path / "checkpoints" / "loop").exists()
    run(stop_at=None)
    # the interruption saved the latest state (i=5) although only every 3rd save is due
    assert done == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert not (tmp_path / "checkpoints" / "loop").exists()


def test_save_is_written_only_when_due(tmp_path: Path) -> None:
    ckpt = nbcache.checkpoint("c", every=4, directory=str(tmp_path))
    assert [ckpt.save(i) for i in range(8)] == [False, False, False, True, False, False, False, True]
    assert ckpt.saves == 2
    fresh = nbcache.checkpoint("c", directory=str(tmp_path))
    assert fresh.load() == 7 and fresh.resumed


def _refused(ckpt: Any, capfd: Any, why: str) -> None:
    """``ckpt.load`` refuses what is stored: the default comes back, with one ``nbcache:`` line."""
    capfd.readouterr()
    assert ckpt.load(default={"fresh": True}) == {"fresh": True}
    assert not ckpt.resumed and ckpt.refused is not None and why in ckpt.refused
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nbcache: checkpoint") and "starting from the default state" in err[0]


def test_tampered_checkpoint_is_refused_and_the_loop_starts_afresh(tmp_path: Path, capfd: Any) -> None:
    ckpt = nbcache.checkpoint("c", directory=str(tmp_path))
    ckpt.save({"a": 1}, force=True)
    path = tmp_path / "checkpoints" / "c"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    _refused(nbcache.checkpoint("c", directory=str(tmp_path)), capfd, "not signed with this cache's key")
    # The loop's first save replaces the refused file, and resuming works again.
    again = nbcache.checkpoint("c", directory=str(tmp_path))
    again.save({"a": 2}, force=True)
    assert nbcache.checkpoint("c", directory=str(tmp_path)).load() == {"a": 2}


def test_a_checkpoint_of_another_key_or_name_is_refused(tmp_path: Path, capfd: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    nbcache.checkpoint("mine", directory=str(tmp_path), key="team").save({"epoch": 3}, force=True)
    assert nbcache.checkpoint("mine", directory=str(tmp_path), key="team").load() == {"epoch": 3}
    _refused(nbcache.checkpoint("mine", directory=str(tmp_path), key="stranger"), capfd, "another NBCACHE_KEY")
    monkeypatch.setenv("NBCACHE_KEY", "team")  # the environment's key signs too
    assert nbcache.checkpoint("mine", directory=str(tmp_path)).load() == {"epoch": 3}
    # Bytes copied under another name do not verify: the name is under the MAC.
    (tmp_path / "checkpoints" / "other").write_bytes((tmp_path / "checkpoints" / "mine").read_bytes())
    _refused(nbcache.checkpoint("other", directory=str(tmp_path)), capfd, "not signed")


def test_a_checkpoint_of_the_older_unsigned_format_is_refused(tmp_path: Path, capfd: Any) -> None:
    # What nbcache wrote before checkpoints were signed: the xxh3-128 of the pickle, then the pickle.
    import cloudpickle
    import xxhash

    payload = cloudpickle.dumps({"epoch": 9}, protocol=5)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "old").write_bytes(xxhash.xxh3_128_hexdigest(payload).encode() + payload)
    _refused(nbcache.checkpoint("old", directory=str(tmp_path)), capfd, "older nbcache")


def test_checkpoint_uses_the_active_cache(shell: Shell, tmp_path: Path) -> None:
    shell.run("import nbcache\nck = nbcache.checkpoint('x')\nck.save(1, force=True)")
    assert (tmp_path / "cache" / "checkpoints" / "x").exists()
