"""Checkpoints: an interrupted loop resumes from the last saved state; completion clears it."""

from __future__ import annotations

from pathlib import Path

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


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    ckpt = nbcache.checkpoint("c", directory=str(tmp_path))
    ckpt.save({"a": 1}, force=True)
    path = tmp_path / "checkpoints" / "c"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(nbcache.errors.CorruptEntryError):
        ckpt.load()


def test_checkpoint_uses_the_active_cache(shell: Shell, tmp_path: Path) -> None:
    shell.run("import nbcache\nck = nbcache.checkpoint('x')\nck.save(1, force=True)")
    assert (tmp_path / "cache" / "checkpoints" / "x").exists()
