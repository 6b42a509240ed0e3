"""The kernel end of the JupyterLab extension (``nbcache.jupyter.comm``) with a stand-in comm manager: the
target is registered on load and removed on unload, statuses made before a comm opened are sent
when it opens, and the frontend's refresh and invalidate requests work."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from nbcache.jupyter import comm as nbcomm
from nbcache.store.usage import ListingRow
from nbcache.jupyter.extension import load, session, unload


class FakeComm:
    def __init__(self, comm_id: str = "c1"):
        self.comm_id = comm_id
        self.sent: list[dict[str, Any]] = []
        self.handler: Any = None
        self.closed = False

    def send(self, data: dict[str, Any]) -> None:
        self.sent.append(data)

    def on_msg(self, handler: Any) -> None:
        self.handler = handler

    def on_close(self, handler: Any) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def receive(self, data: dict[str, Any]) -> None:
        self.handler({"content": {"data": data}})


class FakeManager:
    def __init__(self) -> None:
        self.targets: dict[str, Any] = {}

    def register_target(self, name: str, callback: Any) -> None:
        self.targets[name] = callback

    def unregister_target(self, name: str, callback: Any) -> None:
        self.targets.pop(name, None)


def _not_loaded(ip: InteractiveShell) -> None:
    """These tests load and unload nbcache by hand, which IPython's record of loaded extensions does
    not see: nbcache must not be loaded through `%load_ext` already (a test before that did not
    unload it), or the unload here would leave that record saying loaded, with nothing loaded."""
    assert session(ip) is None and "nbcache" not in ip.extension_manager.loaded, "an earlier test left nbcache loaded"


@pytest.fixture
def shell(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("NBCACHE_DIR", str(tmp_path / "cache"))
    ip = InteractiveShell.instance()
    _not_loaded(ip)
    manager = FakeManager()
    parent = {"metadata": {"cellId": "cell-1"}}
    ip.kernel = SimpleNamespace(comm_manager=manager, get_parent=lambda channel="shell": parent)
    load(ip)
    yield ip
    unload(ip)
    del ip.kernel


def test_no_kernel_no_target(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBCACHE_DIR", str(tmp_path / "cache"))
    ip = InteractiveShell.instance()
    _not_loaded(ip)
    assert getattr(ip, "kernel", None) is None
    load(ip)
    try:
        assert session(ip).bridge is None
    finally:
        unload(ip)


def test_target_registered_and_removed(shell: Any) -> None:
    manager = shell.kernel.comm_manager
    assert nbcomm.TARGET in manager.targets
    unload(shell)
    assert nbcomm.TARGET not in manager.targets
    load(shell)
    assert nbcomm.TARGET in manager.targets


def test_status_before_open_is_sent_on_open(shell: Any) -> None:
    shell.run_cell("%%cache\nvalue = 6 * 7\n", store_history=True)
    comm = FakeComm()
    shell.kernel.comm_manager.targets[nbcomm.TARGET](comm, {})
    statuses = [m for m in comm.sent if m["type"] == "status"]
    assert [(m["cell_id"], m["status"]) for m in statuses] == [("cell-1", "stored")]
    assert statuses[0]["names"] == ["value"]
    assert statuses[0]["explain"]
    entries = [m for m in comm.sent if m["type"] == "entries"][-1]
    assert entries["totals"]["count"] == 1
    assert entries["entries"][0]["first_line"] == "value = 6 * 7"


def test_hit_counts_refresh_and_invalidate(shell: Any) -> None:
    session(shell).magics.judge_restores = False  # 6 * 7 does not pay: keep it, count its hit
    comm = FakeComm()
    shell.kernel.comm_manager.targets[nbcomm.TARGET](comm, {})
    shell.run_cell("%%cache\nvalue = 6 * 7\n")
    shell.run_cell("%%cache\nvalue = 6 * 7\n")
    statuses = [m["status"] for m in comm.sent if m["type"] == "status"]
    assert statuses == ["stored", "hit"]
    comm.sent.clear()
    comm.receive({"type": "refresh"})
    (entries,) = comm.sent
    assert entries["entries"][0]["hits"] == 1
    key = entries["entries"][0]["key"]
    comm.sent.clear()
    comm.receive({"type": "invalidate", "key": key})
    assert comm.sent[-1]["totals"]["count"] == 0
    shell.run_cell("%%cache\nvalue = 6 * 7\n")
    assert [m["status"] for m in comm.sent if m["type"] == "status"] == ["stored"]


def test_a_cell_that_does_not_pay_says_so_in_its_status(shell: Any) -> None:
    comm = FakeComm()
    shell.kernel.comm_manager.targets[nbcomm.TARGET](comm, {})
    for _ in range(3):  # stored; a hit slower than 6 * 7 runs (not kept); then it just runs
        shell.run_cell("%%cache\nvalue = 6 * 7\n")
    statuses = [m for m in comm.sent if m["type"] == "status"]
    assert [(m["status"], m["not_worth"]) for m in statuses] == [("stored", False), ("hit", False), ("skipped", True)]
    assert statuses[-1]["reason"].startswith("not worth caching: restoring it took ")
    assert "not worth caching" in statuses[-1]["explain"]
    entries = [m for m in comm.sent if m["type"] == "entries"][-1]
    assert entries["totals"]["count"] == 0


def test_error_status(shell: Any) -> None:
    comm = FakeComm()
    shell.kernel.comm_manager.targets[nbcomm.TARGET](comm, {})
    shell.run_cell("%%cache\nraise ValueError('boom')\n")
    (status,) = [m for m in comm.sent if m["type"] == "status"]
    assert status["status"] == "error"
    assert "boom" in status["reason"]


def _listed(key: str, hits: int, restore_time: float | None) -> ListingRow:
    return ListingRow(key, None, "c", "%%cache\nx = 1", 10, 3.0, 1.0, ("x",), hits, restore_time)


def _listing(*rows: ListingRow) -> Any:
    return SimpleNamespace(listing=lambda sync=False: list(rows))


def test_entries_prefer_the_cache_usage_counters() -> None:
    message = nbcomm.entries_message(_listing(_listed("k", 4, 0.5)), {"k": [1, 2.0]})
    assert (message["entries"][0]["hits"], message["entries"][0]["saved"]) == (4, 10.0)
    assert message["entries"][0]["first_line"] == "x = 1" and message["entries"][0]["names"] == ["x"]
    assert message["totals"] == {"count": 1, "size": 10, "hits": 4, "saved": 10.0}
    # Counters that know fewer hits than this session (an index in memory): the session's count.
    assert nbcomm.entries_message(_listing(_listed("k", 0, None)), {"k": [1, 2.0]})["entries"][0]["hits"] == 1



def test_entries_use_the_counters_when_an_entry_was_never_restored() -> None:
    # The index says None for "never restored here": that entry saved nothing, the others keep theirs.
    cache = _listing(_listed("a", 0, None), _listed("b", 2, 1.0))
    message = nbcomm.entries_message(cache, {"b": [1, 0.5]})
    by_key = {e["key"]: (e["hits"], e["saved"]) for e in message["entries"]}
    assert by_key == {"a": (0, 0.0), "b": (2, 4.0)}


def test_the_entry_list_after_a_cell_reads_no_manifest(shell: Any, tmp_path: Any) -> None:
    from conftest import write_entry

    cache = session(shell).magics.open_cache()
    for i in range(20):  # entries another kernel wrote: the sync on open indexes them
        write_entry(cache, f"{i:032x}", value=i)
    comm = FakeComm()
    shell.kernel.comm_manager.targets[nbcomm.TARGET](comm, {})
    assert comm.sent[-1]["totals"]["count"] == 20
    reads: list[str] = []
    real_get = cache.store.get

    def counting_get(name: str, limit: Any = None) -> bytes:
        reads.append(name)
        return real_get(name, limit)

    cache.store.get = counting_get  # type: ignore[method-assign]
    comm.sent.clear()
    shell.run_cell("%%cache\nvalue = 6 * 7\n")
    (entries,) = [m for m in comm.sent if m["type"] == "entries"]
    assert entries["totals"]["count"] == 21 and entries["entries"][0]["names"] == ["value"]
    # The cell's own lookup probes its key (and its variants); the list after it reads no manifest.
    others = {f"manifests/{i:032x}.json" for i in range(20)}
    assert reads and not others & set(reads)


def test_the_list_after_a_cell_is_the_full_list_updated(shell: Any) -> None:
    from conftest import write_entry

    session(shell).magics.judge_restores = False  # 6 * 7 does not pay: keep it, count its hits
    comm = FakeComm()
    shell.kernel.comm_manager.targets[nbcomm.TARGET](comm, {})
    shell.run_cell("%%cache\nvalue = 6 * 7\n")
    shell.run_cell("%%cache\nvalue = 6 * 7\n")  # a hit: its row's count goes up
    last = [m for m in comm.sent if m["type"] == "entries"][-1]
    assert [(e["names"], e["hits"]) for e in last["entries"]] == [(["value"], 1)]
    # Another kernel writes an entry: the next cell's list has all three, as a full rebuild would.
    cache = session(shell).magics.open_cache()
    other = write_entry(cache, value=1)
    shell.run_cell("%%cache\nother = 1\n")
    last = [m for m in comm.sent if m["type"] == "entries"][-1]
    assert last == nbcomm.entries_message(cache, session(shell).bridge.hits)
    assert {e["key"] for e in last["entries"]} >= {other.key} and last["totals"]["count"] == 3
    # An entry removed behind the panel's back (an eviction): the list follows.
    cache.delete(other.key)
    shell.run_cell("%%cache\nvalue = 6 * 7\n")
    last = [m for m in comm.sent if m["type"] == "entries"][-1]
    assert last["totals"]["count"] == 2 and other.key not in {e["key"] for e in last["entries"]}


def test_automatic_mode_state_and_the_frontends_toggle(shell: Any) -> None:
    comm = FakeComm()
    shell.kernel.comm_manager.targets[nbcomm.TARGET](comm, {})
    assert [m for m in comm.sent if m["type"] == "auto"] == [{"type": "auto", "on": False, "min_runtime": 0.25}]
    comm.sent.clear()
    comm.receive({"type": "auto", "on": True})  # the toolbar toggle
    assert session(shell).auto.on is True
    assert comm.sent == [{"type": "auto", "on": True, "min_runtime": 0.25}]
    shell.run_cell("%config NbCache.min_runtime = 0", store_history=True)
    comm.sent.clear()
    shell.run_cell("value = 6 * 7", store_history=True)
    (status,) = [m for m in comm.sent if m["type"] == "status"]
    assert (status["status"], status["auto"], status["cell_id"]) == ("stored", True, "cell-1")
    shell.run_cell("%%cache\nother = 1\n", store_history=True)  # %%cache in automatic mode: not automatic
    assert [m["auto"] for m in comm.sent if m["type"] == "status"] == [True, False]
    comm.sent.clear()
    shell.run_cell("%cache_all off", store_history=True)  # said to the frontend, whoever turned it off
    assert [m for m in comm.sent if m["type"] == "auto"] == [{"type": "auto", "on": False, "min_runtime": 0.0}]
    comm.receive({"type": "auto", "on": "yes"})  # not a bool: ignored
    assert session(shell).auto.on is False
