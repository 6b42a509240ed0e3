"""The dashboard through a real IPython shell with the extension loaded, and its pure parts."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any, Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbcache
from nbcache.jupyter.dashboard_view import sorted_rows
from nbcache.jupyter.dashboard_widget import Dashboard
from nbcache.jupyter.extension import session
from nbcache.store.usage import COLUMNS, EntryStats, Totals, collect


@pytest.fixture
def ip(tmp_path: Any) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbcache")
    shell.run_line_magic("config", f"NbCache.directory = {str(tmp_path / 'cache')!r}")
    yield shell
    shell.run_line_magic("unload_ext", "nbcache")
    shell.config.NbCache.pop("directory", None)  # %config persists: later shells must not inherit it
    shell.reset()


def run(shell: InteractiveShell, source: str) -> None:
    result = shell.run_cell(source)
    result.raise_error()


SQUARE = "%%cache --name square\nsquare = 12 ** 2\n"
TOTAL = "%%cache --name total\ntotal = sum(range(1000))\n"


def shown(dash: Dashboard) -> dict[str, str]:
    """Visible rows: key -> the row's HTML."""
    return {
        key: cells.value
        for key, cells, row in zip(dash._row_keys, dash.row_cells, dash.rows)
        if key is not None and row.layout.display != "none"
    }


def button_for(dash: Dashboard, label: str) -> Any:
    matches = [
        b for b, row in zip(dash.invalidate_buttons, dash.rows)
        if b.tooltip == f"Invalidate {label}" and row.layout.display != "none"
    ]
    assert len(matches) == 1, [b.tooltip for b in dash.invalidate_buttons]
    return matches[0]


def store_keys(shell: InteractiveShell) -> set[str]:
    return {entry.key for entry in session(shell).magics.open_cache().entries()}


def test_rows_of_cached_cells_and_their_hits(ip: InteractiveShell) -> None:
    session(ip).magics.judge_restores = False  # square does not pay: keep it, count its hit
    run(ip, SQUARE)
    run(ip, TOTAL)
    run(ip, SQUARE)  # a hit
    dash = nbcache.dashboard()
    try:
        rows = shown(dash)
        assert len(rows) == 2 and rows.keys() == store_keys(ip)
        assert any(">square<" in html for html in rows.values())
        assert any(">total<" in html for html in rows.values())
        assert "2</div>" in dash.summary.value  # two entries
        frame = nbcache.stats()
        assert list(frame.columns) == list(COLUMNS[1:]) and frame.index.name == "key"
        square = frame[frame.label == "square"].iloc[0]
        assert (square.hits, square.misses) == (1, 1)
        assert square.restore_time > 0 and square.speedup == pytest.approx(square.runtime / square.restore_time)
        assert frame[frame.label == "total"].iloc[0].hits == 0
        assert bytes(dash.runtime_chart.value)[:4] == bytes(dash.disk_chart.value)[:4] == b"\x89PNG"
    finally:
        dash.close()


def test_refreshes_after_every_cell(ip: InteractiveShell) -> None:
    dash = nbcache.dashboard()
    try:
        assert shown(dash) == {}
        run(ip, SQUARE)
        assert len(shown(dash)) == 1
        run(ip, SQUARE)
        assert "(1 hit, 1 miss)" in dash.summary.value
    finally:
        dash.close()


def test_invalidate_button_removes_the_entry_and_the_row(ip: InteractiveShell) -> None:
    run(ip, SQUARE)
    run(ip, TOTAL)
    dash = nbcache.dashboard()
    try:
        button_for(dash, "square").click()
        assert len(store_keys(ip)) == 1
        assert shown(dash).keys() == store_keys(ip)
        assert not any(">square<" in html for html in shown(dash).values())
        ip.user_ns.pop("square")
        run(ip, SQUARE)  # runs again: the entry was gone
        assert ip.user_ns["square"] == 144 and len(shown(dash)) == 2
    finally:
        dash.close()


def test_a_cell_that_does_not_pay_has_a_row_that_says_so(ip: InteractiveShell) -> None:
    run(ip, SQUARE)
    run(ip, SQUARE)  # a hit slower than 12 ** 2 runs: the entry is not kept
    assert store_keys(ip) == set()
    dash = nbcache.dashboard()
    try:
        (row,) = shown(dash).values()
        assert ">square<" in row and ">not worth caching<" in row
        assert "Not worth caching" in dash.summary.value
        assert bool(nbcache.stats().iloc[0].not_worth)
        button_for(dash, "square").click()  # forget the verdict: the next run stores the cell again
        assert shown(dash) == {}
        run(ip, SQUARE)
        assert session(ip).magics.engine.last.status == "stored" and len(store_keys(ip)) == 1
    finally:
        dash.close()


def test_clear_all_asks_first(ip: InteractiveShell) -> None:
    run(ip, SQUARE)
    run(ip, TOTAL)
    dash = nbcache.dashboard()
    try:
        assert dash.confirm_box.layout.display == "none"
        dash.clear_button.click()
        assert dash.confirming and dash.confirm_box.layout.display != "none"
        assert len(store_keys(ip)) == 2  # nothing deleted yet
        dash.cancel_button.click()
        assert not dash.confirming and len(store_keys(ip)) == 2
        dash.clear_button.click()
        dash.confirm_button.click()
        assert store_keys(ip) == set() and shown(dash) == {}
        assert dash.confirm_box.layout.display == "none"
    finally:
        dash.close()


def test_close_removes_the_post_run_cell_hook(ip: InteractiveShell) -> None:
    dash = nbcache.dashboard()
    assert dash._after_cell in ip.events.callbacks["post_run_cell"]
    dash.close()
    assert dash._after_cell not in ip.events.callbacks["post_run_cell"]
    run(ip, SQUARE)  # no refresh of a closed dashboard
    dash.close()  # twice is fine


def test_line_magic_and_unload(ip: InteractiveShell) -> None:
    run(ip, SQUARE)
    result = ip.run_cell("%cache_dashboard")
    dash = result.result
    assert isinstance(dash, Dashboard) and len(shown(dash)) == 1
    dash.close()
    ip.run_line_magic("unload_ext", "nbcache")
    assert "cache_dashboard" not in ip.magics_manager.magics["line"]
    ip.run_line_magic("load_ext", "nbcache")
    assert "cache_dashboard" in ip.magics_manager.magics["line"]


def test_callback_errors_go_to_showtraceback(ip: InteractiveShell, monkeypatch: Any) -> None:
    dash = nbcache.dashboard()
    shown_errors: list[Any] = []
    monkeypatch.setattr(ip, "showtraceback", lambda *a, **k: shown_errors.append(sys.exc_info()[1]))

    def broken() -> Any:
        raise RuntimeError("store is on fire")

    dash._cache = broken
    dash.refresh_button.click()
    dash.close()
    assert [str(e) for e in shown_errors] == ["store is on fire"]


def test_package_function_names_survive_their_use(ip: InteractiveShell) -> None:
    nbcache.dashboard().close()
    nbcache.stats()
    assert callable(nbcache.dashboard) and callable(nbcache.stats)


def test_import_stays_light() -> None:
    code = "import sys, nbcache; print(sorted(m for m in ('ipywidgets', 'pandas', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_dashboard_needs_the_extension() -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="load_ext nbcache"):
        nbcache.dashboard()


# -- with an index (Cache.stats/totals), paging, sorting, filtering --------------------------------
class IndexedCache:
    """Many entries without writing them: the part of Cache's API the dashboard reads."""

    def __init__(self, rows: list[EntryStats]):
        self.rows = rows
        self.deleted: list[str] = []
        self.syncs = 0

    def sync(self) -> None:
        self.syncs += 1

    def sync_if_stale(self) -> None:
        self.sync()

    def stats(self) -> list[EntryStats]:
        return list(self.rows)

    def totals(self) -> dict[str, Any]:
        return dict(entries=len(self.rows), size=sum(r.size for r in self.rows), size_limit=10**9,
                    hits=sum(r.hits for r in self.rows), misses=sum(r.misses for r in self.rows), time_saved=42.0)

    def delete(self, key: str) -> None:
        self.deleted.append(key)
        self.rows = [r for r in self.rows if r.key != key]


def make_rows(count: int) -> list[EntryStats]:
    now = time.time()
    return [
        EntryStats(key=f"{i:032x}", label=f"step {i:03d}" if i % 2 else None, cell=f"x{i} = f({i})", size=1000 * i,
                   hits=i % 5, misses=1, runtime=float(i), restore_time=0.01 if i % 5 else None, created=now - i, last_used=now - i)
        for i in range(count)
    ]


def test_uses_the_index_when_the_cache_has_one() -> None:
    cache = IndexedCache(make_rows(3))
    rows, totals = collect(cache)  # type: ignore[arg-type]
    assert rows == cache.rows and totals == Totals(3, 3000, 10**9, 3, 3, 42.0)


def test_pages_sorts_and_filters() -> None:
    cache = IndexedCache(make_rows(50))
    dash = Dashboard(lambda: cache, page_size=15)  # type: ignore[arg-type,return-value]
    assert len(shown(dash)) == 15 and "1–15 of 50" in dash.page_label.value
    assert dash.previous_button.disabled
    dash.next_button.click()
    assert dash.page == 1 and "16–30 of 50" in dash.page_label.value
    for _ in range(5):
        dash.next_button.click()
    assert dash.page == 3 and len(shown(dash)) == 5 and dash.next_button.disabled
    dash.headings["size"].click()  # sort by size, largest first; back to page 0
    assert dash.page == 0 and dash._row_keys[0] == f"{49:032x}"
    dash.headings["size"].click()
    assert dash._row_keys[0] == f"{0:032x}" and "▲" in dash.headings["size"].description
    dash.search.value = "step 04"
    assert len(shown(dash)) == 5  # step 041, 043, ..., 049
    assert button_for(dash, "step 041")
    button_for(dash, "step 043").click()
    assert cache.deleted == [f"{43:032x}"] and len(shown(dash)) == 4
    assert "of 1.0 GB" in dash.summary.value  # the size limit, 10**9 bytes, as the CLI writes it
    dash.close()


def test_rows_without_a_value_sort_last() -> None:
    rows = make_rows(10)
    for descending in (True, False):
        ordered = sorted_rows(rows, "restore_time", descending)
        assert [r.restore_time for r in ordered][-2:] == [None, None]


def test_refresh_reads_no_manifest_when_nothing_changed(tmp_path: Any) -> None:
    from nbcache.store.cache import Cache
    from nbcache.store.backends import LocalFolderStore
    from nbcache.store.usage import collect

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent.parent / "benchmarks"))
    try:
        from bench_dashboard import fill
    finally:
        sys.path.pop(0)

    class CountingStore(LocalFolderStore):
        reads = 0

        def get(self, name: str) -> bytes:
            CountingStore.reads += 1
            return super().get(name)

    cache = Cache(CountingStore(str(tmp_path)))
    fill(cache, 30)  # as if written by another kernel: the index learns of them on a sync
    rows, totals = collect(cache, sync=True)
    assert len(rows) == totals.entries == 30
    CountingStore.reads = 0
    rows, totals = collect(cache)
    assert CountingStore.reads == 0 and len(rows) == 30  # a refresh reads the index, not the store
