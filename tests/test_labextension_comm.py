"""The kernel end of the JupyterLab extension (``nbcache.jupyter.comm``) with a stand-in comm manager: the
target is registered on load and removed on unload, statuses made before a comm opened are sent
when it opens, and the frontend's refresh and invalidate requests work."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from nbcache.jupyter import comm as nbcomm
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


@pytest.fixture
def shell(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("NBCACHE_DIR", str(tmp_path / "cache"))
    ip = InteractiveShell.instance()
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


def test_entries_prefer_the_cache_usage_counters() -> None:
    entry = SimpleNamespace(key="k", label=None, cell="c", source="%%cache\nx = 1", size=10, runtime=3.0, created=1.0, names=("x",))
    row = SimpleNamespace(key="k", hits=4, runtime=3.0, restore_time=0.5)
    cache = SimpleNamespace(entries=lambda: [entry], stats=lambda: [row])
    message = nbcomm.entries_message(cache, {"k": [1, 2.0]})
    assert (message["entries"][0]["hits"], message["entries"][0]["saved"]) == (4, 10.0)
    assert message["totals"] == {"count": 1, "size": 10, "hits": 4, "saved": 10.0}
    plain = SimpleNamespace(entries=lambda: [entry])
    assert nbcomm.entries_message(plain, {"k": [1, 2.0]})["entries"][0]["hits"] == 1

