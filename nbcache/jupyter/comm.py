"""The kernel end of the JupyterLab extension: a comm target named ``nbcache``.

``%load_ext nbcache`` registers the target (:meth:`KernelBridge.attach`); the frontend opens a comm to it when
a kernel is ready and retries after each execution until the extension is loaded. Messages (JSON):

kernel -> frontend
    ``{"type": "status", "cell_id", "status", "saved", "runtime", "reason", "key", "names", "explain", "auto",
    "not_worth", "files"}`` after every ``%%cache`` run and every cell automatic mode ran through the cache
    (``auto``: true; a cell it did not store, ``skipped``, shows no badge; ``not_worth``: it ran
    without the cache because restoring it does not pay), ``{"type": "entries", "entries":
    [...], "totals": {...}}`` on request or after the cache changed, and ``{"type": "auto", "on",
    "min_runtime"}`` when a comm opens and whenever automatic mode is turned on or off.
frontend -> kernel
    ``{"type": "refresh"}``, ``{"type": "invalidate", "key": ...}`` and ``{"type": "auto", "on": bool}``
    (the toolbar toggle).

The frontend's comm_open waits on the shell channel behind running cells, so a status can be
produced before anyone listens: the latest status of every cell is kept and sent to each comm when
it opens. In plain IPython (no kernel) nothing is registered.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Literal, Protocol

from ..run.engine import Engine, Outcome
from ..store.cache import Cache
from ..store.usage import time_saved
from .host import cell_id as current_cell_id

__all__ = ["TARGET", "AutoState", "KernelBridge", "auto_message", "entries_message", "status_message"]

TARGET = "nbcache"
# Statuses kept for comms opened later; a notebook rarely has more cached cells than this.
_MAX_STATUSES = 1000


class AutoState(Protocol):
    """Automatic mode as the frontend sees it: on or off, its threshold, and the toggle."""

    @property
    def on(self) -> bool: ...

    @property
    def min_runtime(self) -> float: ...

    @property
    def running(self) -> bool:
        """Whether automatic mode is running the current cell through the cache."""

    def set(self, on: bool) -> None: ...


def auto_message(auto: AutoState | None) -> dict[str, Any]:
    """The ``auto`` message: whether automatic mode is on."""
    return {"type": "auto", "on": bool(auto and auto.on), "min_runtime": auto.min_runtime if auto else None}


def status_message(outcome: Outcome, cell_id: str | None, explanation: Any = None, auto: bool = False, when: float | None = None) -> dict[str, Any]:
    """The ``status`` message for one run (``auto``: automatic mode ran the cell; ``when``: the
    time of the outcome, now by default)."""
    return {
        "type": "status",
        "cell_id": cell_id,
        "status": outcome.status,
        "saved": outcome.saved,
        "runtime": outcome.runtime,
        "original_runtime": outcome.original_runtime,
        "reason": outcome.reason,
        "key": outcome.key,
        "names": list(outcome.names),
        "not_worth": outcome.not_worth,
        "files": list(outcome.files),
        "explain": str(explanation) if explanation is not None else _explain(outcome),
        "time": time.time() if when is None else when,
        "auto": auto,
    }


def _explain(outcome: Outcome) -> str:
    # What the outcome itself says, when the engine's explanation would need a scan of the store.
    names = ", ".join(outcome.names) or "nothing"
    if outcome.status == "hit":
        return (
            f"Restored from the cache: the code and every input it reads match the stored entry. "
            f"Saved {outcome.saved:.3f} s (ran {outcome.original_runtime:.3f} s, restored in {outcome.runtime:.3f} s). "
            f"Restored: {names}." + (f" Files put back: {', '.join(outcome.files)}." if outcome.files else "")
        )
    if outcome.status == "stored":
        return f"No stored entry matched the code and its inputs, so the cell ran ({outcome.runtime:.3f} s) and was stored. Stored: {names}."
    if outcome.status == "skipped":
        return f"Not cached: {outcome.reason or 'no reason given'}."
    return f"The cell raised {outcome.reason or 'an error'}; nothing was stored."


def entries_message(cache: Any, hits: dict[str, list[float]], *, sync: bool | Literal["if stale"] = False) -> dict[str, Any]:
    """The ``entries`` message: every entry in ``cache`` with its hits and time saved (the cache's
    usage counters, or this kernel session's where they count more). The rows come from the
    cache's index (``cache.listing()``), never from reading every manifest. ``sync`` first picks
    up entries that other kernels and machines wrote (on open and on the panel's refresh)."""
    return _message([_panel_row(entry, hits) for entry in cache.listing(sync=sync)])


def _panel_row(entry: Any, hits: dict[str, list[float]]) -> dict[str, Any]:
    count, saved = hits.get(entry.key, (0, 0.0))
    if entry.hits >= count:
        count, saved = entry.hits, time_saved(entry)
    first = next((line.strip() for line in entry.source.splitlines() if _is_code(line)), "")
    return {
        "key": entry.key,
        "label": entry.label,
        "cell": entry.cell,
        "first_line": first[:120],
        "size": entry.size,
        "runtime": entry.runtime,
        "created": entry.created,
        "names": list(entry.names),
        "hits": int(count),
        "saved": float(saved),
    }


def _message(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows.sort(key=lambda row: row["created"], reverse=True)
    totals = {
        "count": len(rows),
        "size": sum(row["size"] for row in rows),
        "hits": sum(row["hits"] for row in rows),
        "saved": sum(row["saved"] for row in rows),
    }
    return {"type": "entries", "entries": rows, "totals": totals}


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(("#", "%%"))


class KernelBridge:
    """Listens to the engine and talks to every open ``nbcache`` comm."""

    def __init__(self, shell: Any, engine: Engine, open_cache: Callable[[], Cache], manager: Any, auto: AutoState | None = None):
        self.shell = shell
        self.engine = engine
        self.open_cache = open_cache
        self.manager = manager
        self.auto = auto
        self.comms: dict[str, Any] = {}
        self.statuses: OrderedDict[str, dict[str, Any] | Callable[[], dict[str, Any]]] = OrderedDict()
        """The last status of each cell: made when a frontend needs it (see on_outcome)."""
        self.hits: dict[str, list[float]] = {}
        self._rows: dict[str, dict[str, Any]] | None = None
        """The panel's rows by key, as last sent (see :meth:`_entries`)."""

    # -- engine side ---------------------------------------------------------------------------
    def on_outcome(self, outcome: Outcome) -> None:
        cell_id = current_cell_id(self.shell)
        auto = bool(self.auto and self.auto.running)
        lookup = self.engine.last_lookup if outcome.status in ("hit", "stored") else None
        when = time.time()

        def message() -> dict[str, Any]:
            explanation = None
            if lookup is not None:
                try:
                    explanation = self.engine.explain_last(scan=False, lookup=lookup)
                except Exception:  # noqa: BLE001 - the badge falls back to what the outcome says
                    explanation = None
            return status_message(outcome, cell_id, explanation, auto=auto, when=when)

        # With no frontend listening, the message is made when one opens (on every cell's path).
        made: dict[str, Any] | Callable[[], dict[str, Any]] = message() if self.comms else message
        if cell_id is not None:
            self.statuses.pop(cell_id, None)
            self.statuses[cell_id] = made
            while len(self.statuses) > _MAX_STATUSES:
                self.statuses.popitem(last=False)
        if outcome.status == "hit" and outcome.key:
            count = self.hits.setdefault(outcome.key, [0, 0.0])
            count[0] += 1
            count[1] += outcome.saved
        if self.comms:
            self._broadcast(made if isinstance(made, dict) else made())
        if outcome.status in ("hit", "stored") and self.comms:
            self._broadcast(self._entries(changed=outcome.key))

    # -- comm side -----------------------------------------------------------------------------
    def on_open(self, comm: Any, msg: Any) -> None:
        self.comms[comm.comm_id] = comm
        comm.on_msg(self._on_msg)
        comm.on_close(lambda _msg, comm_id=comm.comm_id: self.comms.pop(comm_id, None))
        for cell_id, message in list(self.statuses.items()):
            if callable(message):
                message = self.statuses[cell_id] = message()
            comm.send(message)
        comm.send(auto_message(self.auto))
        comm.send(self._entries(sync="if stale"))

    def auto_changed(self) -> None:
        """Automatic mode was turned on or off (by %cache_all, %config or a frontend)."""
        self._broadcast(auto_message(self.auto))

    def _on_msg(self, msg: Any) -> None:
        data = (msg.get("content") or {}).get("data") or {}
        kind = data.get("type")
        if kind == "refresh":
            self._broadcast(self._entries(sync=True))
        elif kind == "invalidate" and isinstance(data.get("key"), str):
            try:
                self.open_cache().delete(data["key"])
            except Exception as exc:  # noqa: BLE001 - report, never break the kernel
                self._broadcast({"type": "error", "message": f"nbcache: could not invalidate: {exc}"})
            self.hits.pop(data["key"], None)
            self._broadcast(self._entries())
        elif kind == "auto" and isinstance(data.get("on"), bool) and self.auto is not None:
            self.auto.set(data["on"])  # the kernel says so to every frontend (auto_changed)

    def _entries(self, sync: bool | Literal["if stale"] = False, changed: str | None = None) -> dict[str, Any]:
        """The entries message. After a cell (``changed``: the key it hit or stored) only that
        entry's row is read from the index again, unless the index holds another number of
        entries than the rows kept (an eviction, another kernel's writes): then all of them."""
        try:
            cache = self.open_cache()
            if changed is not None and self._rows is not None and cache.index.count() == len(self._rows | {changed: {}}):
                for entry in cache.listing(key=changed):
                    self._rows[changed] = _panel_row(entry, self.hits)
                return _message(list(self._rows.values()))
            message = entries_message(cache, self.hits, sync=sync)
            self._rows = {row["key"]: row for row in message["entries"]}
            return message
        except Exception as exc:  # noqa: BLE001 - an unreadable cache shows as an empty list
            message = entries_message(_NoEntries(), {})
            message["error"] = str(exc)
            return message

    def _broadcast(self, message: dict[str, Any]) -> None:
        for comm in list(self.comms.values()):
            try:
                comm.send(message)
            except Exception:  # noqa: BLE001 - a closed frontend is not the user's problem
                self.comms.pop(comm.comm_id, None)

    # -- lifecycle -----------------------------------------------------------------------------
    @classmethod
    def attach(cls, shell: Any, engine: Engine, open_cache: Callable[[], Cache], auto: AutoState | None = None) -> KernelBridge | None:
        """Register the ``nbcache`` comm target and listen to the engine (None without a kernel)."""
        manager = _comm_manager(shell)
        if manager is None:
            return None
        bridge = cls(shell, engine, open_cache, manager, auto)
        manager.register_target(TARGET, bridge.on_open)
        engine.listeners.append(bridge.on_outcome)
        return bridge

    def detach(self) -> None:
        """Mirror of :meth:`attach`."""
        try:
            self.manager.unregister_target(TARGET, self.on_open)
        except Exception:  # noqa: BLE001 - already gone
            pass
        if self.on_outcome in self.engine.listeners:
            self.engine.listeners.remove(self.on_outcome)
        self.close()

    def close(self) -> None:
        for comm in list(self.comms.values()):
            try:
                comm.close()
            except Exception:  # noqa: BLE001
                pass
        self.comms.clear()


class _NoEntries:
    def listing(self, sync: Any = False) -> list[Any]:
        return []


def _comm_manager(shell: Any) -> Any:
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    manager = getattr(kernel, "comm_manager", None)
    if manager is None:
        try:
            from comm import get_comm_manager

            manager = get_comm_manager()
        except Exception:  # noqa: BLE001 - no comm support: no frontend integration
            return None
    return manager
