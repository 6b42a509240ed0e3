"""Lookup, run, save: what ``%%cache`` does, without IPython.

The engine talks to the notebook through a :class:`~nbcache.run.host.Host` (:mod:`nbcache.jupyter.host`
implements one over IPython; tests implement one over a plain dict). One call of
:meth:`Engine.run`:

1. analyses the source for what it reads and writes;
2. fingerprints the inputs into a key;
3. on a hit, restores the variables, deletes what the cell deleted, and replays the outputs in
   their order (results through the host's display hook, so ``Out[n]`` and ``_`` are set): see
   :mod:`nbcache.run.restore`; a key whose restore did not pay just runs (:mod:`nbcache.run.pays`);
4. on a miss, runs the cell through the host while a :class:`~nbcache.run.capture.Recorder` taps its
   output, then stores what it bound, deleted or mutated, with the outputs: see
   :mod:`nbcache.run.record`;
5. tells its listeners how the run ended.

Every caching problem (an input with no fingerprint, a value that cannot be pickled, a corrupt
entry, a store that cannot be written) is reported in one line starting with ``nbcache:`` and the
cell runs or keeps its result anyway. Only the cell's own exceptions propagate, and a cell that
raised is never stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

from ..errors import AnalysisError, FingerprintError, NbCacheError, SerializationError, StaleModuleError
from ..key.analysis import CellAnalysis, analyze
from ..key.cellkey import CellKey, compute_key
from ..key.adapters import ADAPTERS
from ..key.deps import Watch, command_words, paths_digest
from ..key.paths import code_strings, value_strings, with_quoted
from ..key.fingerprint import Fingerprinter, Substitutes
from ..key.modules import module_digest, note_loaded, reloading
from ..key.reach import reach
from ..key.state import observe, snapshot
from ..store.cache import Cache, Entry
from ..store.frames import VALUES_VERSION
from . import pays
from .capture import encode_outputs
from .explanation import Explanation, explain
from .files import record_files
from .host import Cell, Host, Outcome, RunOptions, Status, warn_once
from .record import Observed, draft
from .restore import FOREIGN_ENTRY, restore
from .serialize import dump_values

__all__ = ["ABSENT_LIMIT", "Engine", "Host", "Lookup", "Outcome", "RunOptions"]

ABSENT_LIMIT = 64
"""Names of files that do not exist yet, among a cell's input values, whose creation is watched
(every one in its constants is; thousands of names in a list are data, not outputs)."""


@dataclass(frozen=True)
class Lookup:
    """What the lookup of the most recent run found, for --explain."""

    key: CellKey
    cell: str
    hit: Entry | None = None
    """The entry restored, on a hit."""
    invalid: tuple[str, ...] = ()
    """Why the entry with this very key could not be used, on a miss."""
    not_worth: str | None = None
    """Why the cell ran without the cache: restoring it does not pay (nbcache.run.pays)."""
    files: tuple[str, ...] = ()
    """On a hit, the files it put back."""


class Engine:
    """Runs cells through the cache: analysis -> key -> hit or miss -> listeners told.

    ``cache`` opens the cache (called on every run: the configuration may have changed); the
    engine keeps what the last run found, for ``explain_last``, and the substitutes for
    restored objects whose pickle round trip is inexact."""

    def __init__(self, cache: Callable[[], Cache]):
        self._cache_factory = cache
        self.last: Outcome | None = None
        self.last_lookup: Lookup | None = None
        self.listeners: list[Callable[[Outcome], None]] = []
        # Restored objects whose pickle digest differs from the original's (see nbcache.key.fingerprint.pickled).
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
        cell = self._keyed(host, source, python, options)
        return cell if isinstance(cell, Outcome) else self._cached(host, cell)

    def _keyed(self, host: Host, source: str, python: str, options: RunOptions) -> Cell | Outcome:
        """The cell analysed and keyed, or the outcome of running it uncached when it cannot be."""
        try:
            analysis = analyze(python, transform=host.transform)
        except AnalysisError:
            # Let Python report the syntax error exactly as it would without nbcache.
            return self._uncached(host, source, python, "the cell does not parse")
        if analysis.dynamic_reason:
            return self._uncached(host, source, python, analysis.dynamic_reason, warn=options.warn_uncached)
        self.substitutes.prune(host.namespace)
        try:
            with reloading("reload" in analysis.called):
                key = self._key(analysis, host, options)
        except StaleModuleError as exc:
            return self._uncached(host, source, python, str(exc), warn=options.warn_uncached)
        except FingerprintError as exc:
            reason = f"input {exc.name!r} ({exc.type_name}) has no fingerprint, so the cell runs uncached"
            return self._uncached(host, source, python, reason, warn=options.warn_uncached)
        name = options.label or options.cell or _first_line(source)  # a label is the user's own name for it
        return Cell(source, python, analysis, key, name, options)

    def _cached(self, host: Host, cell: Cell) -> Outcome:
        """A hit, else run the cell and store what it did."""
        options = cell.options
        cache = self._open_cache(host)
        invalid: tuple[str, ...] = ()
        if cache is not None and not options.force:
            verdict = pays.standing(cache, cell.key.key) if options.judge else None
            if verdict is not None:
                return self._not_worth(host, cache, cell, verdict)
            found = restore(host, cache, cell.key, options, self.substitutes)
            if isinstance(found, Outcome):
                self.last_lookup = Lookup(cell.key, cell.name, hit=found.entry, files=found.files)
                if options.explain:
                    self._explain(host)
                return found
            invalid = found.reasons
        self.last_lookup = Lookup(cell.key, cell.name, invalid=invalid)
        if cache is None:
            return self._run_unstored(host, cell, "the cache is unavailable")
        if options.explain:
            self._explain(host)
        if FOREIGN_ENTRY in invalid:
            return self._run_unstored(host, cell, FOREIGN_ENTRY, exclude=_roots(cache))
        return self._miss(host, cache, cell)

    def _not_worth(self, host: Host, cache: Cache, cell: Cell, verdict: pays.Verdict) -> Outcome:
        """Restoring this key does not pay: run the cell, store nothing, say so once."""
        reason = pays.reason(verdict)
        self.last_lookup = Lookup(cell.key, cell.name, not_worth=reason)
        if cell.options.explain:
            self._explain(host)
        # said once, as other reasons a cell is not cached are: not in automatic mode, which
        # says nothing of the cells it does not store (the badge and --explain do)
        line = pays.tell_once(cache, verdict) if cell.options.warn_uncached else None
        if line is not None:
            host.warn(line)
        return replace(self._run_unstored(host, cell, reason, exclude=_roots(cache)), not_worth=True)

    def _key(self, analysis: CellAnalysis, host: Host, options: RunOptions) -> CellKey:
        extra = {f"module:{name}": module_digest(name) for name in sorted(analysis.imports)}
        extra.update({f"deps:{path}": digest for path, digest in paths_digest(options.deps).items()})
        reached = reach(analysis.reads, analysis.attributes, host.namespace)  # globals of the code it runs
        return compute_key(
            analysis.normalized,
            reached.names,
            host.namespace,
            ignore=host.is_internal,
            fingerprinter=Fingerprinter(self.substitutes),
            extra=extra,
            attrs=reached.attrs,
            values_version=VALUES_VERSION,
        )

    def _open_cache(self, host: Host) -> Cache | None:
        """The cache, or None (said once while the problem lasts) when it cannot be opened."""
        try:
            return self.cache
        except (NbCacheError, OSError) as exc:
            warn_once(host, exc, f"nbcache: the cache is unavailable ({exc}); running the cell without it")
            return None

    # -- explain ---------------------------------------------------------------------------------
    def _explain(self, host: Host) -> None:
        explanation = self.explain_last()
        assert explanation is not None and self.last_lookup is not None
        status: Status = "hit" if self.last_lookup.hit else "skipped" if self.last_lookup.not_worth else "stored"
        host.note("\n".join(explanation.lines()), Outcome(status, self.last_lookup.key.key, str(explanation)))

    def explain_last(self, *, scan: bool = True, lookup: Lookup | None = None) -> Explanation | None:
        """Why the most recent %%cache run (or ``lookup``, an earlier one's) hit or missed
        (compared with the cell's earlier entries).

        With ``scan=False``, only when that needs no look at other entries (a hit, or an entry that
        turned stale), else None: for callers on every cell's path."""
        last = lookup or self.last_lookup
        if last is None:
            return None
        if last.not_worth:
            return Explanation("miss", last.key.key, (last.not_worth,))
        if not scan and last.hit is None and not last.invalid:
            return None
        try:
            entries = [] if last.hit is not None or last.invalid else list(self.cache.entries(cell=last.cell))
        except (NbCacheError, OSError):
            entries = []
        return explain(last.key, entries, hit=last.hit, invalid=last.invalid, files=last.files)

    # -- running the cell --------------------------------------------------------------------------
    def _uncached(self, host: Host, source: str, python: str, reason: str, warn: bool = False) -> Outcome:
        if warn:
            host.warn(f"nbcache: not cached: {reason}")
        with host.recorder() as recorder:
            start = time.perf_counter()
            host.execute(source, python, recorder)
        return Outcome("skipped", None, reason, time.perf_counter() - start)

    @staticmethod
    def _observe(host: Host, cell: Cell, exclude: Iterable[str]) -> Observed:
        """Run the cell as a miss does, watching what it reads. Its exceptions propagate."""
        before = dict(host.namespace)  # strong references: ids stay unique while we compare
        state_before = snapshot()
        ADAPTERS.arm()  # native readers and writers report their paths (see nbcache.key.adapters)
        ADAPTERS.install_ready()
        watch = Watch(exclude=exclude)
        constants, values = _named(cell, host.namespace)  # what native code may read or write: its state now
        watch.expect(constants)
        watch.expect(values, absent_limit=ABSENT_LIMIT)
        with host.recorder() as recorder, watch, observe() as observation:
            start = time.perf_counter()
            host.execute(cell.source, cell.python, recorder)
            runtime = time.perf_counter() - start
        note_loaded(cell.analysis.imports)  # what the kernel now runs for the modules the cell imported
        return Observed(cell, before, state_before, watch, recorder, runtime, observation)

    def _run_unstored(self, host: Host, cell: Cell, reason: str, exclude: Iterable[str] = ()) -> Outcome:
        observed = self._observe(host, cell, exclude)
        return Outcome("skipped", cell.key.key, reason, observed.runtime)

    def _miss(self, host: Host, cache: Cache, cell: Cell) -> Outcome:
        observed = self._observe(host, cell, _roots(cache))
        key, runtime = cell.key.key, observed.runtime
        if cell.options.admit is not None:
            refused = cell.options.admit(observed)
            if refused is not None:
                return Outcome("skipped", key, refused, runtime)
            cache.record_miss(key)  # what restore leaves to automatic mode: see there
        pending = draft(observed, host.namespace, host.is_internal, self.substitutes)
        if pending.problems:
            host.warn(f"nbcache: not cached: {pending.problems[0]}; the cell ran normally")
            return Outcome("skipped", key, pending.problems[0], runtime)
        try:
            outputs = encode_outputs(observed.recorder.records)
        except Exception as exc:  # noqa: BLE001
            host.warn(f"nbcache: not cached: the outputs could not be encoded ({exc})")
            return Outcome("skipped", key, str(exc), runtime)
        try:
            files = record_files(pending.on_disk, cache, cell.options.max_file_size, pending.cwd, pending.relative)
        except (NbCacheError, OSError) as exc:
            host.warn(f"nbcache: not cached: a file the cell wrote could not be stored ({exc}); the cell ran normally")
            return Outcome("skipped", key, str(exc), runtime)
        if files.records:
            pending = replace(pending, extra=replace(pending.extra, files=tuple(files.records)))
        try:
            # The pickle is spooled on the cache's own disk when it is local.
            frames = dump_values(pending.values, namespace=host.namespace, refs=pending.refs, spool=_roots(cache)[0] or None)
            with frames:
                entry = cache.write(pending.fields(), frames, outputs, files.blobs)
        except SerializationError as exc:
            if cell.options.warn_uncached:
                host.warn(f"nbcache: not cached: {exc}")
            return Outcome("skipped", key, str(exc), runtime)
        except (NbCacheError, OSError) as exc:
            warn_once(host, exc, f"nbcache: could not store the result ({exc}); the cell ran normally")
            return Outcome("skipped", key, str(exc), runtime)
        if files.stamps:
            cache.remember_stamps(files.stamps)
        if cell.options.force:
            pays.forget(cache, [key])  # stored anyway: kept, whatever its restores cost
        return Outcome("stored", key, None, runtime, runtime, pending.changes.stored, entry)


def _named(cell: Cell, namespace: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The strings that may name the cell's files: its constants, those of the code it reaches
    and the words of its shell commands; and the strings among its input values (see
    nbcache.key.paths)."""
    inputs = [namespace[name] for name in cell.key.inputs if name in namespace]
    constants = [*with_quoted(cell.analysis.strings), *code_strings(inputs), *command_words(cell.analysis.commands)]
    return constants, value_strings(inputs)


def _roots(cache: Cache) -> list[str]:
    """Where the cache keeps its files: what the cell reads there is nbcache's doing, not its own."""
    return [getattr(cache.store, "root", "")]


def _first_line(source: str) -> str:
    for line in source.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped[:120]
    return ""
