"""A hit: find the entry for a key, check it still holds, and make the namespace what it was.

:func:`restore` looks the key up (then its variants keyed by generator states), re-checks what a
key cannot see (files the cell read, state it required), imports again the modules the run
imported (:mod:`nbcache.run.imports`), reads and unpickles the values, and only then touches the
namespace: deletes what the cell deleted, binds what it bound, updates mutated inputs in place so
other names for the same object see the change, makes the cell's changes to working-tree module
attributes and to the interpreter state, and replays the outputs in their order. Anything wrong
with the entry before the namespace is touched makes the run a miss, with a reason for
``--explain``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import SignatureError
from ..key.cellkey import CellKey
from ..key.deps import check_reads
from ..key.fingerprint import Substitutes
from ..key.state import apply as apply_state
from ..key.state import rng_variants, unmet
from ..store.cache import Cache, Entry
from ..store.compression import load_codec
from . import pays
from .attributes import apply_attribute_changes
from .capture import decode_outputs
from .files import Unrestorable, prepare
from .contents import ATTRS, RESULTS, STATE, Extra
from .host import Host, Outcome, RunOptions, warn_once
from .imports import reimport
from .reducers import REDUCERS
from .serialize import load_values
from ..units import format_duration as _seconds

__all__ = ["FOREIGN_ENTRY", "Unusable", "restore"]

FOREIGN_ENTRY = "the stored entry is signed with another key, so it is kept as it is and this run is not stored"


@dataclass(frozen=True)
class Unusable:
    """No hit: why the entry with this key cannot be used (empty when there is none)."""

    reasons: tuple[str, ...] = ()


def restore(host: Host, cache: Cache, key: CellKey, options: RunOptions, substitutes: Substitutes) -> Outcome | Unusable:
    """Restore the entry for ``key`` into ``host``: the hit's outcome, or why there is none."""
    _warm(cache)
    start = time.perf_counter()
    try:
        entry = _find(cache, key.key)
        if entry is None:
            if options.admit is None:  # (automatic mode counts a miss only for a run it stores)
                cache.record_miss(key.key)
            return Unusable()
        extra = Extra.of(entry)
        stale = check_reads(extra.reads) + unmet(extra.requires)
        if stale:
            return Unusable(tuple(stale))
        reimport(extra.imports)
        values = load_values(cache.read_frames(entry), namespace=host.namespace)
        records = decode_outputs(cache.read_output_bytes(entry))
        files = prepare(cache, entry, extra.files) if extra.files else None
    except Unrestorable as exc:
        return Unusable((str(exc),))
    except SignatureError as exc:
        # Someone with another key (a teammate without the team key?) wrote this entry: run the
        # cell, and leave their entry alone rather than replacing it with one signed by us.
        host.warn(f"nbcache: {exc}; running the cell")
        return Unusable((FOREIGN_ENTRY,))
    except Exception as exc:  # noqa: BLE001 - anything wrong with an entry makes it a miss
        warn_once(host, exc, f"nbcache: could not restore the stored entry ({exc}); running the cell")
        return Unusable((f"the stored entry could not be read ({exc})",))
    if files is not None:
        try:
            cache.remember_stamps(files.commit())
        except OSError as exc:
            files.discard()
            host.warn(f"nbcache: could not put back the files the cell wrote ({exc}); running the cell")
            return Unusable((f"the files it wrote could not be restored ({exc})",))
    results = values.pop(RESULTS, [])
    state_changes = values.pop(STATE, {})
    attrs = values.pop(ATTRS, {})
    _bind(host.namespace, entry.deleted, values, set(extra.mutated))
    failed = apply_attribute_changes(attrs, update_in_place) + apply_state(state_changes)
    if failed:
        host.warn(f"nbcache: could not restore {', '.join(failed)} as the cell left it")
    _substitute(substitutes, host.namespace, extra.pickled)
    host.replay(records, results)
    seconds = time.perf_counter() - start
    if options.judge:
        pays.judge(cache, key.key, entry, seconds)  # before the hit is counted: is this the first?
    cache.record_hit(entry, seconds)
    restored = tuple(files.restored) if files is not None else ()
    outcome = Outcome("hit", key.key, None, seconds, entry.runtime, tuple(values), entry, files=restored)
    if not options.quiet:
        host.note(
            f"nbcache: restored from cache, saved {_seconds(outcome.saved)} "
            f"(ran {_seconds(entry.runtime)}, restored in {_seconds(seconds)}){_files_note(restored)}",
            outcome,
        )
    return outcome


def _files_note(restored: tuple[str, ...]) -> str:
    if not restored:
        return ""
    shown = ", ".join(restored[:3])
    more = f" and {len(restored) - 3} more" if len(restored) > 3 else ""
    return f"; files put back: {shown}{more}"


def _warm(cache: Cache) -> None:
    """Do now what a kernel does once, on its first restore (load the signing key, import the
    codec): the restore's time is judged against the run's (nbcache.run.pays), and these
    one-time costs are no part of either. Cheap after the first call; errors surface later."""
    try:
        cache.secret
        load_codec()
    except Exception:  # noqa: BLE001 - the lookup meets the same problem and reports it
        pass


def _find(cache: Cache, key: str) -> Entry | None:
    # An entry of a cell that drew from global generators is keyed by their states too: probed
    # only when there is no plain entry (the generator states cost a digest each).
    return cache.lookup(key, count_miss=False) or next(
        filter(None, (cache.lookup(variant, count_miss=False) for variant in rng_variants(key))), None
    )


def _bind(namespace: dict[str, Any], deleted: tuple[str, ...], values: dict[str, Any], mutated: set[str]) -> None:
    for name in deleted:
        namespace.pop(name, None)
    for name, value in values.items():
        if name in mutated and name in namespace and update_in_place(namespace[name], value):
            continue
        namespace[name] = value


def _substitute(substitutes: Substitutes, namespace: Mapping[str, Any], pickled: Mapping[str, str]) -> None:
    """Let restored objects whose pickle round trip is inexact fingerprint as the originals."""
    for name, digest in pickled.items():
        if name in namespace:
            try:
                substitutes.add(namespace[name], bytes.fromhex(digest))
            except Exception:  # noqa: BLE001 - only a needless miss later, never a wrong hit
                pass


def update_in_place(live: Any, new: Any) -> bool:
    """Make ``live`` equal to ``new`` without replacing it, so other names that alias it see the
    change as they would after running the cell. False when the type does not allow it."""
    if type(live) is not type(new):
        return False
    try:
        by_library = REDUCERS.updater(type(live))
        if by_library is not None:
            return by_library(live, new)
        if isinstance(live, list):
            live[:] = new
        elif isinstance(live, (dict, set)):
            live.clear()
            live.update(new)
        elif type(live).__module__ == "numpy" and hasattr(live, "shape"):
            if live.shape != new.shape or live.dtype != new.dtype:
                return False
            live[...] = new
        elif type(live).__module__.startswith("pandas") and hasattr(live, "_mgr"):
            live._mgr = new._mgr  # the frame's whole content: columns, index, blocks
            for attr in ("_item_cache", "_cache"):
                cache = getattr(live, attr, None)
                if isinstance(cache, dict):
                    cache.clear()
            live.attrs = new.attrs
        elif hasattr(live, "__dict__") and not isinstance(live, type):
            live.__dict__.clear()
            live.__dict__.update(new.__dict__)
        else:
            return False
    except Exception:  # noqa: BLE001 - read-only arrays, slots...: rebinding is the fallback
        return False
    return True
