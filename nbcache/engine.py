"""Lookup, run, save: what ``%%cache`` does, without IPython.

The engine talks to the notebook through a :class:`Host` (the magic module implements one over
IPython; tests can implement one over a plain dict). One call of :meth:`Engine.run`:

1. analyses the source for what it reads and writes;
2. fingerprints the inputs into a key;
3. on a hit, restores the variables, deletes what the cell deleted, and replays the outputs in
   their order (results through the host's display hook, so ``Out[n]`` and ``_`` are set);
4. on a miss, runs the cell through the host while a :class:`~nbcache.capture.Recorder` taps its
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
from typing import Any, Callable, Literal, Mapping, Protocol

from . import __version__
from .analysis import CellAnalysis, analyze
from .cache import Cache, Entry
from .capture import Recorder, encode_outputs
from .errors import AnalysisError, FingerprintError, NbCacheError, SerializationError
from .fingerprint import Fingerprinter
from .key import CellKey, compute_key
from .serialize import dump_values

__all__ = ["Engine", "Host", "Outcome", "RunOptions"]

Status = Literal["hit", "stored", "skipped", "error"]
# The cell's results are stored with its variables under a name no identifier can have.
_RESULTS = "\0results"


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
        self.listeners: list[Callable[[Outcome], None]] = []

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
            return self._uncached(host, source, python, analysis.dynamic_reason, warn=host)

        namespace = host.namespace
        fingerprinter = Fingerprinter()
        try:
            key = compute_key(analysis.normalized, analysis.reads, namespace, ignore=host.is_internal, fingerprinter=fingerprinter)
        except FingerprintError as exc:
            reason = f"input {exc.name!r} ({exc.type_name}) has no fingerprint, so the cell runs uncached"
            return self._uncached(host, source, python, reason, warn=host)

        cache: Cache | None
        try:
            cache = self.cache
        except NbCacheError as exc:
            if not getattr(exc, "reported", False):  # a store problem is told once while it lasts
                host.warn(f"nbcache: the cache is unavailable ({exc}); running the cell without it")
            cache = None

        if cache is not None and not options.force:
            hit = self._try_hit(host, cache, key, options)
            if hit is not None:
                return hit
        return self._miss(host, cache, source, python, analysis, key, options, fingerprinter)

    # -- hit -------------------------------------------------------------------------------------
    def _try_hit(self, host: Host, cache: Cache, key: CellKey, options: RunOptions) -> Outcome | None:
        start = time.perf_counter()
        try:
            entry = cache.lookup(key.key)
            if entry is None:
                return None
            values = cache.read_values(entry, host.namespace)
            records = cache.read_outputs(entry)
        except (NbCacheError, OSError, Exception) as exc:  # noqa: BLE001 - anything wrong here is a miss
            if not getattr(exc, "reported", False):
                host.warn(f"nbcache: could not restore the stored entry ({exc}); running the cell")
            return None
        results = values.pop(_RESULTS, [])
        namespace = host.namespace
        mutated = set(entry.extra.get("mutated", ()))
        for name in entry.deleted:
            namespace.pop(name, None)
        for name, value in values.items():
            if name in mutated and name in namespace and _update_in_place(namespace[name], value):
                continue
            namespace[name] = value
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
        return outcome

    # -- miss ------------------------------------------------------------------------------------
    def _uncached(self, host: Host, source: str, python: str, reason: str, warn: Host | None = None) -> Outcome:
        if warn is not None:
            warn.warn(f"nbcache: not cached: {reason}")
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
        fingerprinter: Fingerprinter,
    ) -> Outcome:
        namespace = host.namespace
        before = dict(namespace)  # strong references: ids stay unique while we compare
        with host.recorder() as recorder:
            start = time.perf_counter()
            host.execute(source, python, recorder)  # the cell's exceptions propagate: nothing stored
            runtime = time.perf_counter() - start

        if cache is None:
            return Outcome("skipped", key.key, "the cache is unavailable", runtime)

        internal = host.is_internal
        written = {
            name
            for name, value in namespace.items()
            if not internal(name) and (name not in before or before[name] is not value)
        }
        deleted = {name for name in before if name not in namespace and not internal(name)}
        # Inputs changed in place (lst.append, df["c"] = ...): store their new value too.
        mutated = set()
        for name, digest in key.inputs.items():
            if name in written or name not in namespace or digest == "unbound":
                continue
            try:
                if Fingerprinter().digest(namespace[name]).hex() != digest:
                    mutated.add(name)
            except FingerprintError:
                mutated.add(name)
        stored_names = sorted(written | mutated)

        refs: dict[int, str] = {}
        for name, value in before.items():
            if internal(name) or name in mutated or _is_atomic(value):
                continue
            if name in key.inputs or isinstance(value, (type, types.FunctionType, types.ModuleType)):
                refs.setdefault(id(value), name)

        values = {name: namespace[name] for name in stored_names}
        values[_RESULTS] = recorder.results
        try:
            frames = dump_values(values, namespace=namespace, refs=refs)
            outputs = encode_outputs(recorder.records)
        except SerializationError as exc:
            host.warn(f"nbcache: not cached: {exc}")
            return Outcome("skipped", key.key, str(exc), runtime)
        except Exception as exc:  # noqa: BLE001
            host.warn(f"nbcache: not cached: the outputs could not be encoded ({exc})")
            return Outcome("skipped", key.key, str(exc), runtime)

        fields = dict(
            key=key.key,
            cell=options.cell or options.label or _first_line(source),
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
            extra={"mutated": sorted(mutated)},
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
