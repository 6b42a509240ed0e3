"""Does this cache pay? An entry whose first restore is not clearly faster than its run is not kept.

Through real kernels (nbclient) across restarts: a cell that is instant to run but slow to
restore stops being stored after its first hit and says so once, with both times; ``--explain``
says "not worth caching"; ``--force`` stores it anyway and the entry is then kept. A cell that
pays next to it keeps hitting. The rule itself over a real cache in ``tmp_path``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import comparable, run_notebook, slow_to_restore, write_entry
from nbcache.run import pays
from nbcache.store.backends import LocalFolderStore
from nbcache.store.cache import Cache

SETUP = slow_to_restore(0.6)  # a restore of a Frozen takes 0.6 s
SLOW = "%%cache --name slow\ntoken = Frozen()\nprint('made a token')\n"
WORTH = "%%cache --name worth\ntime.sleep(0.6)\nanswer = 42\nprint('computed', answer)\n"
PROBE = "print(type(token).__name__, answer)"


def notes(cell: Any) -> list[dict[str, Any]]:
    """nbcache's hit notes of a cell (display data with nbcache metadata)."""
    return [o for o in cell.outputs if o.get("output_type") == "display_data" and "nbcache" in o.get("metadata", {})]


def lines(cell: Any) -> list[str]:
    """nbcache's one-line messages (stderr) of a cell."""
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stderr")
    return [line for line in text.splitlines() if line.startswith("nbcache:")]


def labels(cache_dir: Path) -> list[str]:
    """The labels of the entries in the store (one manifest each)."""
    return sorted(json.loads(p.read_text())["entry"]["label"] for p in (cache_dir / "manifests").glob("*.json"))


def hit(cell: Any) -> bool:
    return any(n["metadata"]["nbcache"]["status"] == "hit" for n in notes(cell))


def test_a_cell_whose_restore_is_slower_than_its_run_stops_being_stored(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {"NBCACHE_DIR": str(cache)}
    cells = ["%load_ext nbcache", SETUP, SLOW, WORTH, PROBE]

    first = run_notebook(cells, tmp_path, env, timeout=180)
    assert not hit(first.cells[2]) and not hit(first.cells[3])
    assert labels(cache) == ["slow", "worth"]

    # after a restart both hit; the slow one's restore (0.6 s) is judged against its run (µs)
    second = run_notebook(cells, tmp_path, env, timeout=180)
    assert hit(second.cells[2]) and hit(second.cells[3])
    assert comparable(second.cells[4].outputs) == comparable(first.cells[4].outputs)
    assert labels(cache) == ["worth"]  # not kept

    # the next runs just run it, say so once with both times, store nothing; worth still hits
    third = run_notebook(
        ["%load_ext nbcache", SETUP, SLOW, SLOW, WORTH, "%%cache --name slow --explain\ntoken = Frozen()\nprint('made a token')\n", PROBE],
        tmp_path,
        env,
        timeout=180,
    )
    ran_once, ran_again, worth, explained = third.cells[2], third.cells[3], third.cells[4], third.cells[5]
    for cell in (ran_once, ran_again, explained):
        assert not hit(cell) and "made a token\n" in "".join(o.get("text", "") for o in cell.outputs)
    (told,) = lines(ran_once)
    assert re.fullmatch(
        r"nbcache: not worth caching: restoring it took \d+ ms, running it \d+ (µs|ms), so it now runs without "
        r"being stored \(%%cache --force stores it anyway\)",
        told,
    ), told
    assert int(re.search(r"took (\d+) ms", told).group(1)) >= 600  # type: ignore[union-attr]
    assert lines(ran_again) == []  # once
    assert lines(explained) == []
    explanation = [o["data"]["text/plain"] for o in notes(explained)]
    assert len(explanation) == 1 and explanation[0].startswith("nbcache: miss: not worth caching: restoring it took ")
    assert hit(worth)
    assert comparable(third.cells[6].outputs) == comparable(first.cells[4].outputs)
    assert labels(cache) == ["worth"]

    # --force stores it anyway, and that entry is kept through its slow hits
    forced = run_notebook(["%load_ext nbcache", SETUP, "%%cache --name slow --force\ntoken = Frozen()\nprint('made a token')\n"], tmp_path, env, timeout=180)
    assert not hit(forced.cells[2]) and lines(forced.cells[2]) == []
    assert labels(cache) == ["slow", "worth"]
    for _ in range(2):
        again = run_notebook(cells, tmp_path, env, timeout=180)
        assert hit(again.cells[2]) and hit(again.cells[3])
        assert lines(again.cells[2]) == []
        assert comparable(again.cells[4].outputs) == comparable(first.cells[4].outputs)
        assert labels(cache) == ["slow", "worth"]


# -- the rule over a real cache ----------------------------------------------------------------
@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(LocalFolderStore(str(tmp_path / "cache")))


def test_clearly_faster_means_under_eight_tenths_of_the_run() -> None:
    assert pays.pays(1.0, 0.79) and not pays.pays(1.0, 0.8) and not pays.pays(1.0, 2.0)
    assert not pays.pays(0.0, 0.0)


def test_first_hit_that_does_not_pay_removes_the_entry_and_tells_once(cache: Cache) -> None:
    entry = write_entry(cache, "a" * 32, label="records", runtime=0.81)
    found = pays.judge(cache, entry.key, entry, 0.91)
    assert found is not None and (found.runtime, found.restore_time) == (0.81, 0.91)
    assert cache.lookup(entry.key) is None
    standing = pays.standing(cache, entry.key)
    assert standing is not None and standing.label == "records" and not standing.told
    assert pays.tell_once(cache, standing) == (
        "nbcache: not worth caching: restoring it took 910 ms, running it 810 ms, "
        "so it now runs without being stored (%%cache --force stores it anyway)"
    )
    again = pays.standing(cache, entry.key)
    assert again is not None and again.told and pays.tell_once(cache, again) is None
    pays.forget(cache, [entry.key])
    assert pays.standing(cache, entry.key) is None


def test_only_the_first_hit_is_judged(cache: Cache) -> None:
    entry = write_entry(cache, "b" * 32, runtime=1.0)
    assert pays.judge(cache, entry.key, entry, 0.1) is None  # paid: kept
    cache.record_hit(entry, 0.1)
    assert pays.judge(cache, entry.key, entry, 5.0) is None  # a slow later hit changes nothing
    assert cache.lookup(entry.key) is not None and pays.standing(cache, entry.key) is None


def test_an_entry_stored_with_force_is_kept(cache: Cache) -> None:
    from nbcache.run.capture import encode_outputs
    from nbcache.run.contents import Extra
    from nbcache.run.serialize import dump_values

    fields = dict(
        key="c" * 32, cell="c", label=None, source="x = 1", created=1.0, runtime=0.001, names=("x",), deleted=(),
        refs=(), inputs={}, components={}, python="3.11", nbcache="test", extra=Extra(keep=True).to_json(),
    )
    with dump_values({"x": 1}, namespace={}, refs={}) as frames:
        entry = cache.write(fields, frames, encode_outputs([]))
    assert Extra.of(entry).keep
    assert pays.judge(cache, entry.key, entry, 1.0) is None
    assert cache.lookup(entry.key) is not None


def test_an_entry_written_before_keep_existed_reads_as_not_kept(cache: Cache) -> None:
    from nbcache.run.contents import Extra

    entry = write_entry(cache, "d" * 32)
    assert "keep" not in entry.extra and not Extra.of(entry).keep
    assert Extra(keep=False).to_json().keys() == {"mutated", "reads", "requires", "pickled", "rng", "imports"}
