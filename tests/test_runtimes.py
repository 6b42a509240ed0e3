"""The runtime hints of automatic mode: remembered across sessions, forgotten, compacted."""

from __future__ import annotations

import os
from pathlib import Path

from nbcache.run import runtimes
from nbcache.run.runtimes import Runtimes, source_digest


def test_hints_survive_a_new_session_and_forgetting_is_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "runtimes.log")
    a, b = source_digest("x = 1"), source_digest("y = 2")
    first = Runtimes(path)
    first.remember(a, 0.002)
    first.remember(b, 0.003)
    first.forget(b)
    first.flush()  # (changes are batched; a kernel that exits flushes them)
    again = Runtimes(path)  # a new kernel
    assert again.get(a) == 0.002 and again.get(b) is None and len(again) == 1


def test_the_digest_is_of_the_source_as_typed() -> None:
    assert source_digest("x = 1") == source_digest("x = 1")
    assert source_digest("x = 1") != source_digest("x = 1  # note")


def test_a_truncated_line_or_a_foreign_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "runtimes.log"
    digest = source_digest("x")
    path.write_text(f"nbcache-runtimes 1\n{digest} 0.5\n{digest[:7]} 0.")
    assert Runtimes(str(path)).get(digest) == 0.5
    path.write_text(f"something else\n{digest} 0.5\n")
    fresh = Runtimes(str(path))
    assert fresh.get(digest) is None
    fresh.remember(digest, 0.1)
    fresh.flush()
    assert Runtimes(str(path)).get(digest) == 0.1  # rewritten in our format


def test_the_file_is_compacted_when_it_grows(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runtimes, "_COMPACT_SLACK", 10)
    path = tmp_path / "runtimes.log"
    hints = Runtimes(str(path))
    digest = source_digest("x")
    for i in range(50):
        hints.remember(digest, i / 1000)
    hints.flush()
    assert len(path.read_text().splitlines()) < 15
    assert Runtimes(str(path)).get(digest) == 0.049


def test_an_unwritable_folder_keeps_hints_in_memory(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        hints = Runtimes(str(folder / "runtimes.log"))
        digest = source_digest("x")
        hints.remember(digest, 0.01)
        assert hints.get(digest) == 0.01
    finally:
        os.chmod(folder, 0o700)


def test_changes_are_batched_between_flushes(tmp_path: Path) -> None:
    path = tmp_path / "runtimes.log"
    hints = Runtimes(str(path))
    hints.remember(source_digest("a"), 0.1)  # the first change is written at once
    hints.remember(source_digest("b"), 0.2)  # later ones wait for the next flush
    assert Runtimes(str(path)).get(source_digest("b")) is None
    hints.flush()
    assert Runtimes(str(path)).get(source_digest("b")) == 0.2
