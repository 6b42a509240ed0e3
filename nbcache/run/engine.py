"""Lookup, run, save: what ``%%cache`` does, without IPython.

The engine talks to the notebook through a :class:`Host` (the magic module implements one over
IPython; tests can implement one over a plain dict). One call of :meth:`Engine.run`:

1. analyses the source for what it reads and writes;
2. fingerprints the inputs into a key;
3. on a hit, restores the variables, deletes what the cell deleted, and replays the outputs in
   their order (results through the host's display hook, so ``Out[n]`` and ``_`` are set);
4. on a miss, runs the cell through the host while a :class:`~nbcache.run.capture.Recorder` taps its
   output, then stores what it bound, deleted or mutated, with the outputs.

Every caching problem (an input with no fingerprint, a value that cannot be pickled, a corrupt
entry, a store that cannot be written) is reported in one line starting with ``nbcache:`` and the
cell runs or keeps its result anyway. Only the cell's own exceptions propagate, and a cell that
raised is never stored.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from .. import __version__
from ..key.analysis import CellAnalysis, analyze
from ..store.cache import Cache, Entry
from .capture import Recorder, decode_outputs, encode_outputs
from ..key.deps import Watch, check_reads, paths_digest, record_reads
from ..errors import AnalysisError, FingerprintError, NbCacheError, SerializationError, SignatureError, StaleModuleError
from .explanation import Explanation, explain
from ..key.fingerprint import Fingerprinter, Substitutes, takes_pickle_path
from ..key.cellkey import UNBOUND, CellKey, compute_key
from ..key.modules import module_digest, note_loaded, reloading
from .serialize import dump_values, load_values
from ..key.state import apply as apply_state
from ..key.state import changes as state_changes_between
from ..key.state import GENERATORS, presentation_requirements, requirements, rng_variant, rng_variants, snapshot, unmet

__all__ = ["Engine", "Host", "Outcome", "RunOptions"]

Status = Literal["hit", "stored", "skipped", "error"]
# The cell's results and state changes are stored with its variables under names no
# identifier can have.
_RESULTS = "\0results"
_STATE = "\0state"
FOREIGN_ENTRY = "the stored entry is signed with another key, so it is kept as it is and this run is not stored"


class Host(Protocol):
    """What the engine needs from the notebook it caches cells of."""

    namespace: dict[str, Any]

    def transform(self, source: str) -> str:
        """Turn the cell's source (IPython syntax) into Python."""

    def execute(self, source: str, python: str, recorder: Recorder) -> None:
        """Run the cell; values for the display hook go to ``recorder.result`` and are shown."""

    def recorder(self) -> Recorder:
        """A recorder tapping this host's output."""

    def replay(self, records: list[dict[str, Any]], results: list[Any]) -> None:
        """Show recorded outputs again, in order; ``result`` records show ``results[i]``."""

    def is_internal(self, name: str) -> bool:
        """Names the host manages itself (``_``, ``Out``, ``get_ipython``...): never inputs or outputs."""

    def note(self, message: str, outcome: Outcome) -> None:
        """A quiet status line (a hit): shown unless the user asked for quiet."""

    def warn(self, message: str) -> None:
        """A caching problem, one line, starting with ``nbcache:``."""


@dataclass(frozen=True)
class RunOptions:
    force: bool = False
    skip: bool = False
    quiet: bool = False
    label: str | None = None
    explain: bool = False
    deps: tuple[str, ...] = ()
    """Files and folders whose content is part of the key (``--deps``)."""
    cell: str | None = None
    """Identity of the cell for --explain (a notebook cell id); the label or first line otherwise."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one run, for the note, the dashboard and the frontend."""

    status: Status
    key: str | None = None
    reason: str | None = None
    runtime: float = 0.0
    """Seconds the cell took now (a miss), or the restore took (a hit)."""
    original_runtime: float = 0.0
    """Seconds the cell took when the entry was made (a hit)."""
    names: tuple[str, ...] = ()
    entry: Entry | None = field(default=None, repr=False)

    @property
    def saved(self) -> float:
        return max(0.0, self.original_runtime - self.runtime) if self.status == "hit" else 0.0


class Engine:
    def __init__(self, cache: Callable[[], Cache]):
        self._cache_factory = cache
        self.last: Outcome | None = None
        self.last_context: tuple[CellKey, str, Entry | None, list[str]] | None = None
        self.listeners: list[Callable[[Outcome], None]] = []
        # Restored objects whose pickle digest differs from the original's (see fingerprint.py).
        self.substitutes = Substitutes()

    @property
    def cache(self) -> Cache:
        return self._cache_factory()

    # -- the one entry point ---------------------------------------------------------------------
    def run(self, host: Host, source: str, options: RunOptions = RunOptions()) -> Outcome:
        """Run one cell through the cache. The cell's own exceptions propagate (after listeners
        heard of them as an ``error`` outcome)."""
        try:
            outcome = self._run(host, source, options)
        except BaseException as exc:
            self._publish(host, Outcome("error", None, f"{type(exc).__name__}: {exc}"))
            raise
        self._publish(host, outcome)
        return outcome

    def _publish(self, host: Host, outcome: Outcome) -> None:
        self.last = outcome
        for listener in list(self.listeners):
            try:
                listener(outcome)
            except Exception as exc:  # a broken listener must not break the cell
                host.warn(f"nbcache: a status listener failed: {exc}")

    def _run(self, host: Host, source: str, options: RunOptions) -> Outcome:
        python = host.transform(source)
        if options.skip:
            return self._uncached(host, source, python, "--skip was given")
        try:
            analysis = analyze(python, transform=host.transform)
        except AnalysisError:
            # Let Python report the syntax error exactly as it would without nbcache.
            return self._uncached(host, source, python, "the cell does not parse")
        if analysis.dynamic_reason:
            return self._uncached(host, source, python, analysis.dynamic_reason, warn=True)

        namespace = host.namespace
        self.substitutes.prune(namespace)
        fingerprinter = Fingerprinter(self.substitutes)
        try:
            with reloading("reload" in analysis.called):
                key = self._key(analysis, namespace, options, host, fingerprinter)
        except StaleModuleError as exc:
            return self._uncached(host, source, python, str(exc), warn=True)
        except FingerprintError as exc:
            reason = f"input {exc.name!r} ({exc.type_name}) has no fingerprint, so the cell runs uncached"
            return self._uncached(host, source, python, reason, warn=True)

        cache: Cache | None
        try:
            cache = self.cache
        except (NbCacheError, OSError) as exc:
            if not getattr(exc, "reported", False):  # a store problem is told once while it lasts
                host.warn(f"nbcache: the cache is unavailable ({exc}); running the cell without it")
            cache = None

        cell = options.label or options.cell or _first_line(source)  # a label is the user's own name for it
        invalid: list[str] = []
        if cache is not None and not options.force:
            hit, invalid = self._try_hit(host, cache, key, options)
            if hit is not None:
                self.last_context = (key, cell, hit.entry, [])
                if options.explain:
                    self._explain(host)
                return hit
        self.last_context = (key, cell, None, invalid)
        if options.explain and cache is not None:
            self._explain(host)
        return self._miss(host, cache, source, python, analysis, key, options, cell, invalid)

    @staticmethod
    def _key(analysis: CellAnalysis, namespace: dict[str, Any], options: RunOptions, host: Host, fingerprinter: Fingerprinter) -> CellKey:
        extra = {f"module:{name}": module_digest(name) for name in sorted(analysis.imports)}
        extra.update({f"deps:{path}": digest for path, digest in paths_digest(options.deps).items()})
        return compute_key(
            analysis.normalized, analysis.reads, namespace, ignore=host.is_internal, fingerprinter=fingerprinter, extra=extra
        )

    # -- explain ---------------------------------------------------------------------------------
    def _explain(self, host: Host) -> None:
        explanation = self.explain_last()
        assert explanation is not None and self.last_context is not None
        key, _, hit, _ = self.last_context
        host.note("\n".join(explanation.lines()), Outcome("hit" if hit else "stored", key.key, str(explanation)))

    def explain_last(self, *, scan: bool = True) -> Explanation | None:
        """Why the most recent %%cache run hit or missed (compared with the cell's earlier entries).

        With ``scan=False``, only when that needs no look at other entries (a hit, or an entry that
        turned stale), else None: for callers on every cell's path."""
        if self.last_context is None:
            return None
        key, cell, hit, invalid = self.last_context
        if not scan and hit is None and not invalid:
            return None
        try:
            entries = [] if hit is not None or invalid else [e for e in self.cache.entries() if e.cell == cell]
        except (NbCacheError, OSError):
            entries = []
        return explain(key, entries, hit=hit, invalid=invalid)

    # -- hit -------------------------------------------------------------------------------------
    def _try_hit(self, host: Host, cache: Cache, key: CellKey, options: RunOptions) -> tuple[Outcome | None, list[str]]:
        """The outcome of restoring ``key``, or None and why the entry with this key is unusable."""
        start = time.perf_counter()
        try:
            # An entry of a cell that drew from global generators is keyed by their states too:
            # probed only when there is no plain entry (the generator states cost a digest each).
            entry = cache.lookup(key.key, count_miss=False) or next(
                filter(None, (cache.lookup(variant, count_miss=False) for variant in rng_variants(key.key))), None
            )
            if entry is None:
                cache.record_miss(key.key)
                return None, []
            stale = check_reads(entry.extra.get("reads") or {}) + unmet(entry.extra.get("requires") or {})
            if stale:
                return None, stale
            values = load_values(cache.read_frames(entry), namespace=host.namespace)
            records = decode_outputs(cache.read_output_bytes(entry))
        except SignatureError as exc:
            # Someone with another key (a teammate without the team key?) wrote this entry: run the
            # cell, and leave their entry alone rather than replacing it with one signed by us.
            host.warn(f"nbcache: {exc}; running the cell")
            return None, [FOREIGN_ENTRY]
        except Exception as exc:  # noqa: BLE001 - anything wrong with an entry makes it a miss
            if not getattr(exc, "reported", False):
                host.warn(f"nbcache: could not restore the stored entry ({exc}); running the cell")
            return None, [f"the stored entry could not be read ({exc})"]
        results = values.pop(_RESULTS, [])
        state_changes = values.pop(_STATE, {})
        namespace = host.namespace
        mutated = set(entry.extra.get("mutated", ()))
        for name in entry.deleted:
            namespace.pop(name, None)
        for name, value in values.items():
            if name in mutated and name in namespace and _update_in_place(namespace[name], value):
                continue
            namespace[name] = value
        try:
            apply_state(state_changes)
        except Exception as exc:  # noqa: BLE001
            host.warn(f"nbcache: could not restore interpreter state ({exc})")
        self._note_restored(namespace, entry.extra.get("pickled") or {})
        host.replay(records, results)
        restore = time.perf_counter() - start
        cache.record_hit(entry, restore)
        outcome = Outcome("hit", key.key, None, restore, entry.runtime, tuple(values), entry)
        if not options.quiet:
            host.note(
                f"nbcache: restored from cache, saved {_seconds(outcome.saved)} "
                f"(ran {_seconds(entry.runtime)}, restored in {_seconds(restore)})",
                outcome,
            )
        return outcome, []

    def _note_restored(self, namespace: dict[str, Any], pickled: dict[str, str]) -> None:
        """Let restored objects whose pickle round trip is inexact fingerprint as the originals."""
        for name, digest in pickled.items():
            if name in namespace:
                try:
                    self.substitutes.add(namespace[name], bytes.fromhex(digest))
                except Exception:  # noqa: BLE001 - only a needless miss later, never a wrong hit
                    pass

    def _pickle_digests(self, values: dict[str, Any]) -> dict[str, str]:
        """The pickle digests of the values fingerprinted through pickle, for _note_restored."""
        out = {}
        for name, value in values.items():
            if not takes_pickle_path(value):
                continue
            try:
                digest = Fingerprinter(self.substitutes).pickle_digest(value)
            except Exception:  # noqa: BLE001 - no digest: only a needless miss later
                continue
            if digest is not None:
                out[name] = digest.hex()
        return out

    # -- miss ------------------------------------------------------------------------------------
    def _uncached(self, host: Host, source: str, python: str, reason: str, warn: bool = False) -> Outcome:
        if warn:
            host.warn(f"nbcache: not cached: {reason}")
        with host.recorder() as recorder:
            start = time.perf_counter()
            host.execute(source, python, recorder)
        return Outcome("skipped", None, reason, time.perf_counter() - start)

    def _miss(
        self,
        host: Host,
        cache: Cache | None,
        source: str,
        python: str,
        analysis: CellAnalysis,
        key: CellKey,
        options: RunOptions,
        cell: str,
        invalid: list[str],
    ) -> Outcome:
        namespace = host.namespace
        before = dict(namespace)  # strong references: ids stay unique while we compare
        state_before = snapshot()
        exclude = [getattr(cache.store, "root", "")] if cache is not None else []
        with host.recorder() as recorder, Watch(exclude=exclude) as watch:
            start = time.perf_counter()
            host.execute(source, python, recorder)  # the cell's exceptions propagate: nothing stored
            runtime = time.perf_counter() - start

        note_loaded(analysis.imports)  # what the kernel now runs for the modules the cell imported
        if cache is None:
            return Outcome("skipped", key.key, "the cache is unavailable", runtime)
        if FOREIGN_ENTRY in invalid:
            return Outcome("skipped", key.key, FOREIGN_ENTRY, runtime)

        internal = host.is_internal
        # Rebound names, found by identity, plus names the cell binds on every path: `x = 1` when x
        # already was 1 rebinds it to the very same object, and a fresh kernel must still get it.
        written = {
            name
            for name, value in namespace.items()
            if not internal(name) and (name not in before or before[name] is not value or name in analysis.bound)
        }
        deleted = {name for name in before if name not in namespace and not internal(name)}
        # Inputs changed in place (lst.append, df["c"] = ...): store their new value too.
        # (`vec += 1` on an array rebinds vec to the same object: that is a mutation too.)
        mutated = set()
        pickled: dict[str, str] = {}  # see _pickle_digests; the mutation check computes them too
        for name, digest in key.inputs.items():
            if name not in namespace or digest == UNBOUND or before.get(name) is not namespace[name]:
                continue  # gone, or rebound to a new object (stored by value below)
            try:
                now, pickle_digest = Fingerprinter(self.substitutes).digests(namespace[name])
            except FingerprintError:
                mutated.add(name)
                continue
            if now.hex() != digest:
                mutated.add(name)
                if pickle_digest is not None:
                    pickled[name] = pickle_digest.hex()
        mutated_ids = {id(namespace[name]) for name in mutated}
        stored_names = sorted(written | mutated)
        state_after = snapshot()
        state_changes = state_changes_between(state_before, state_after)
        observed = [gen for call, gen in (("getstate", "random"), ("get_state", "numpy.random")) if call in analysis.called]
        requires = requirements(state_before, state_changes, seeded="seed" in analysis.called, observed=observed)
        requires.update(presentation_requirements(state_before))
        if watch.relative:
            requires["cwd"] = state_before.cwd
        reads = record_reads(watch, commands=analysis.commands, environ=state_before.environ)

        refs: dict[int, str] = {}
        for name, value in before.items():
            if internal(name) or id(value) in mutated_ids or _is_atomic(value):
                continue  # a mutated object must be stored by value, never as "what is there now"
            if name in key.inputs or isinstance(value, (type, types.FunctionType, types.ModuleType)):
                refs.setdefault(id(value), name)

        values = {name: namespace[name] for name in stored_names}
        pickled.update(self._pickle_digests({name: v for name, v in values.items() if name not in pickled}))
        values[_RESULTS] = recorder.results
        values[_STATE] = state_changes
        try:
            frames = dump_values(values, namespace=namespace, refs=refs)
            outputs = encode_outputs(recorder.records)
        except SerializationError as exc:
            host.warn(f"nbcache: not cached: {exc}")
            return Outcome("skipped", key.key, str(exc), runtime)
        except Exception as exc:  # noqa: BLE001
            host.warn(f"nbcache: not cached: the outputs could not be encoded ({exc})")
            return Outcome("skipped", key.key, str(exc), runtime)

        rng: dict[str, str] = {name: requires.pop(name) for name in GENERATORS if name in requires}
        fields = dict(
            key=rng_variant(key.key, rng) if rng else key.key,
            cell=cell,
            label=options.label,
            source=source,
            created=time.time(),
            runtime=runtime,
            names=tuple(stored_names),
            deleted=tuple(sorted(deleted)),
            refs=tuple(sorted(set(refs.values()))),
            inputs=dict(key.inputs),
            components=dict(key.components),
            python=key.components["python"],
            nbcache=__version__,
            extra={"mutated": sorted(mutated), "reads": reads, "requires": requires, "pickled": pickled, "rng": rng},
        )
        try:
            entry = cache.write(fields, frames, outputs)
        except (NbCacheError, OSError) as exc:
            if not getattr(exc, "reported", False):
                host.warn(f"nbcache: could not store the result ({exc}); the cell ran normally")
            return Outcome("skipped", key.key, str(exc), runtime)
        return Outcome("stored", key.key, None, runtime, runtime, tuple(stored_names), entry)


def _is_atomic(value: Any) -> bool:
    """Immutable scalars: their identity is never observable in a way worth preserving."""
    return value is None or type(value) in (bool, int, float, complex, str, bytes)


def _update_in_place(live: Any, new: Any) -> bool:
    """Make ``live`` equal to ``new`` without replacing it, so other names that alias it see the
    change as they would after running the cell. False when the type does not allow it."""
    if type(live) is not type(new):
        return False
    try:
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


def _first_line(source: str) -> str:
    for line in source.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped[:120]
    return ""


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.1f} s"
    return f"{value * 1000:.0f} ms" if value >= 0.001 else f"{value * 1e6:.0f} µs"
