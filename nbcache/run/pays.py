"""Does this cache pay? An entry that restores no faster than its cell runs is not kept.

A hit is worth its entry only when restoring is clearly cheaper than running: object-heavy
values (a list of 500,000 small dicts) can take as long to unpickle as to build. So the first hit
of every entry is timed against the run it replaced, on this machine:

- restore < :data:`PAYS_BELOW` x run: the entry is kept (later hits are not judged again);
- otherwise the entry is removed and a verdict is kept in the index under the cell's key. The
  next run with that key just runs and stores nothing, and says so once, in one ``nbcache:``
  line with both times; ``--explain``, the dashboard and the JupyterLab badge say "not worth
  caching". A change to the code or to an input is another key, measured afresh. On a shared
  store (``BlobStore.shared``) the entry stays: it is the team's, and a restore over the network
  from one machine says little about another's; only this machine stops using it.
- ``%%cache --force`` runs the cell and stores it even so, marked as kept: its hits are not
  judged, and the verdict is forgotten.

The same :func:`pays` is what an automatic mode asks before it keeps a cell it was not told to
cache. The index is bookkeeping: when it cannot be read or written, every entry is kept.
"""

from __future__ import annotations

import time
from typing import Iterable

from ..store.cache import Cache, Entry
from ..store.index import Verdict
from ..units import format_duration
from .contents import Extra

__all__ = ["NOT_WORTH", "PAYS_BELOW", "Verdict", "forget", "judge", "message", "pays", "reason", "standing", "tell_once"]

# "Clearly faster": a restore that takes 80% of the run saves too little for the disk it takes,
# and a slower disk or a busier machine would make it a loss.
PAYS_BELOW = 0.8
NOT_WORTH = "not worth caching"


def pays(runtime: float, restore_time: float) -> bool:
    """Whether restoring in ``restore_time`` seconds is clearly faster than running in ``runtime``."""
    return restore_time < PAYS_BELOW * runtime


def reason(found: Verdict) -> str:
    """Why the cell runs without the cache (for ``--explain``, the badge and the dashboard)."""
    return (
        f"{NOT_WORTH}: restoring it took {format_duration(found.restore_time)}, "
        f"running it {format_duration(found.runtime)}"
    )


def message(found: Verdict) -> str:
    """The one line the user is shown, on the first run after the verdict."""
    return f"nbcache: {reason(found)}, so it now runs without being stored (%%cache --force stores it anyway)"


def standing(cache: Cache, key: str) -> Verdict | None:
    """The verdict on ``key``, if there is one."""
    try:
        return cache.index.verdict(key)
    except Exception:  # noqa: BLE001 - the index is bookkeeping: no verdict, the cell is looked up
        return None


def judge(cache: Cache, key: str, entry: Entry, restore_time: float) -> Verdict | None:
    """On a hit of ``entry`` (looked up as ``key``), before the hit is counted: when this is the
    entry's first restore here and it did not pay, remove the entry and return the verdict."""
    if pays(entry.runtime, restore_time) or Extra.of(entry).keep:
        return None
    found = Verdict(key, entry.label, entry.cell, entry.runtime, restore_time, time.time(), told=False)
    try:
        if cache.index.restored_since(entry.key, entry.created):
            return None  # its first restore paid: kept for good
        cache.index.record_verdict(found)
    except Exception:  # noqa: BLE001 - the index cannot say or keep it: the entry stays
        return None
    if cache.store.shared:
        return found
    try:
        cache.delete(entry.key)
    except Exception:  # noqa: BLE001 - a store that cannot delete keeps the entry (a hit next time)
        forget(cache, [key])
        return None
    return found


def tell_once(cache: Cache, found: Verdict) -> str | None:
    """The line to show for a run under ``found``: once per verdict, None afterwards."""
    if found.told:
        return None
    try:
        cache.index.mark_told(found.key)
    except Exception:  # noqa: BLE001 - told again next time: better than never
        pass
    return message(found)


def forget(cache: Cache, keys: Iterable[str]) -> None:
    """Drop the verdicts on ``keys`` (``--force`` stored one anyway, or the user invalidated it)."""
    try:
        cache.index.forget_verdicts(list(keys))
    except Exception:  # noqa: BLE001
        pass
