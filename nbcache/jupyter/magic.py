"""The ``%%cache`` magic and nbcache's configuration (``%config NbCache.<option> = ...``).

A thin magic in IPython's manner: options declared with ``magic_arguments``, user mistakes as
``UsageError``, the work done by :class:`nbcache.run.engine.Engine` over an
:class:`~nbcache.jupyter.host.IPythonHost`. The magic also owns the kernel's open cache, which the
frontend bridge and the dashboard reach through :meth:`NbCache.open_cache`.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Dict, Enum, Float, TraitError, TraitType, Unicode, observe, validate

from ..errors import NbCacheError, SettingError
from ..run.engine import Engine, RunOptions
from ..store.backends import open_store
from ..store.cache import DEFAULT_SIZE_LIMIT, Cache
from ..store.compression import Compression
from ..units import parse_size
from .host import IPythonHost, cell_id, mark_cell_syntax_error, user_frames

__all__ = ["ENV_AUTO", "ENV_DIR", "ENV_SIZE_LIMIT", "InvalidSetting", "NbCache", "drop_empty_cache_cell"]

ENV_DIR = "NBCACHE_DIR"
ENV_SIZE_LIMIT = "NBCACHE_SIZE_LIMIT"
ENV_AUTO = "NBCACHE_AUTO"


class InvalidSetting(SettingError, UsageError, TraitError):
    """A bad value for a setting: refused when it is set. A ``TraitError`` for traitlets (and so
    for ``%config``, which reports it at once), a ``UsageError`` for IPython (no traceback)."""


class _Told:
    """Mixin for the settings' traits: a value of the wrong kind is refused with a message that
    names the setting and shows a good value (``.tag(example=...)``), not traitlets' own."""

    name: str | None
    metadata: dict[str, Any]

    def error(self, obj: Any, value: Any, error: Exception | None = None, info: str | None = None) -> Any:
        want = cast(TraitType[Any, Any], self).info()
        raise InvalidSetting(f"nbcache: NbCache.{self.name} = {value!r} is not {want}; for example %config {self.metadata['example']}")


class _Unicode(_Told, Unicode):
    info_text = "a string"


class _Bool(_Told, Bool):
    pass


class _Enum(_Told, Enum):
    def info(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values or ())


class _Dict(_Told, Dict):
    pass


class _Float(_Told, Float):
    info_text = "a number"


@magics_class
class NbCache(Magics):
    """Configuration of nbcache (``%config NbCache.<option> = ...`` or ``ipython_config.py``)."""

    directory = _Unicode(
        "",
        help="Where the cache lives. Empty: $NBCACHE_DIR, else .nbcache/ in the kernel's starting directory.",
    ).tag(config=True, example="NbCache.directory = 'cache/'")
    quiet = _Bool(False, help="Do not print the note that says a cell was restored from the cache.").tag(
        config=True, example="NbCache.quiet = True"
    )
    size_limit = _Unicode(
        "",
        help="Most the cache may hold, like 20GB or 500MB; least recently used entries are evicted "
        "after each store. Empty: $NBCACHE_SIZE_LIMIT, else 10GB.",
    ).tag(config=True, example="NbCache.size_limit = '20GB'")
    key = _Unicode(
        "",
        help="Secret that signs entries (share it within a team). Empty: $NBCACHE_KEY, else a key "
        "created in the Jupyter data directory.",
    ).tag(config=True, example="NbCache.key = 'a-team-secret'")
    compression = _Enum(
        ["auto", "zstd", "none"], "auto", help="auto: zstd where data compresses, none for incompressible buffers."
    ).tag(config=True, example="NbCache.compression = 'zstd'")
    judge_restores = _Bool(
        True,
        help="Time each entry's first restore against the run it replaces, and drop the entry when "
        "restoring is not clearly faster (under 0.8x): the cell then just runs. False keeps every entry.",
    ).tag(config=True, example="NbCache.judge_restores = False")
    storage_options = _Dict(
        help="Options for fsspec when the cache is a URL, e.g. {'endpoint_url': 'http://127.0.0.1:9000'}."
    ).tag(config=True, example="NbCache.storage_options = {'endpoint_url': 'http://127.0.0.1:9000'}")
    auto = _Bool(
        False,
        help="Automatic mode: every code cell is cached as under %%cache (also %cache_all, and "
        "NBCACHE_AUTO=1 when the extension loads).",
    ).tag(config=True, example="NbCache.auto = True")
    max_output_file_size = _Unicode(
        "1GB",
        help="A file a cached cell writes that is larger than this is not copied into the cache: the entry "
        "keeps its digest, and a hit runs the cell again when the file is missing or differs.",
    ).tag(config=True, example="NbCache.max_output_file_size = '5GB'")
    min_runtime = _Float(
        0.25,
        help="Automatic mode stores a cell only when its run took at least this many seconds (0: every cell).",
    ).tag(config=True, example="NbCache.min_runtime = 1.0")

    def _load_config(self, cfg: Any, section_names: Any = None, traits: Any = None) -> None:
        """While starting, a bad value (from a configuration file) costs only that setting, not
        the extension; afterwards (``%config``) it is refused with its message."""
        if self._starting:
            known = self.traits(config=True)
            cfg = copy.deepcopy(cfg)
            for name, value in list(self._find_my_config(cfg).items()):
                trait = known.get(name)
                if trait is None or not isinstance(value, (str, bool, int, float, dict, type(None))):
                    continue
                try:
                    trait._validate(self, value)
                except InvalidSetting as exc:
                    self._refused[name] = str(exc)
                    for section in self.section_names():
                        if section in cfg:
                            cfg[section].pop(name, None)
        super()._load_config(cfg, section_names=section_names, traits=traits)

    @validate("size_limit")
    def _valid_size(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value.strip():
            try:
                parse_size(value)
            except ValueError:
                raise InvalidSetting(
                    f"nbcache: NbCache.size_limit = {value!r} is not a size; for example %config NbCache.size_limit = '20GB' (or '500MB')"
                ) from None
        return value

    @validate("max_output_file_size")
    def _valid_file_size(self, proposal: Any) -> str:
        value = str(proposal["value"])
        try:
            parse_size(value)
        except ValueError:
            raise InvalidSetting(
                f"nbcache: NbCache.max_output_file_size = {value!r} is not a size; for example "
                "%config NbCache.max_output_file_size = '5GB' (or '500MB')"
            ) from None
        return value

    @property
    def max_file_size(self) -> int:
        text = self.max_output_file_size
        parsed = self.__dict__.get("_max_file_size")
        if parsed is None or parsed[0] != text:  # parsed once per setting: read on every cell
            parsed = self.__dict__["_max_file_size"] = (text, parse_size(text))
        return int(parsed[1])

    @validate("min_runtime")
    def _valid_min_runtime(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not value >= 0:  # NaN too
            raise InvalidSetting(
                f"nbcache: NbCache.min_runtime = {proposal['value']!r} is not a number of seconds of 0 or more; "
                "for example %config NbCache.min_runtime = 1.0 (0 stores every cell)"
            )
        return value

    _starting = True  # while the configuration files' settings are loaded (see _load_config)

    def __init__(self, shell: Any = None, **kwargs: Any):
        self._refused: dict[str, str] = {}
        super().__init__(shell=shell, **kwargs)
        self._starting = False
        for message in self._refused.values():  # a bad line in ipython_config.py: say so, keep the default
            print(f"{message}; using the default", file=sys.stderr)
        self._start_dir = os.getcwd()
        self._cache: Cache | None = None
        self._cache_url: str | None = None
        self.engine = Engine(self.open_cache)
        self._missing_deps: set[str] = set()  # --deps paths the user was told do not exist

    # -- where the cache is ----------------------------------------------------------------------
    @property
    def cache_url(self) -> str:
        return self.directory or os.environ.get(ENV_DIR) or os.path.join(self._start_dir, ".nbcache")

    def open_cache(self) -> Cache:
        """The cache the settings name, opened on first use and again when a setting changes."""
        url = self.cache_url
        if self._cache is None or url != self._cache_url:
            limit_text = self.size_limit or os.environ.get(ENV_SIZE_LIMIT)
            try:
                limit = parse_size(limit_text) if limit_text else DEFAULT_SIZE_LIMIT
                store = open_store(url, self.storage_options or None)
            except ValueError as exc:
                raise NbCacheError(str(exc).removeprefix("nbcache: ")) from exc
            self._cache = Cache(store, key=self.key or None, size_limit=limit, compression=cast(Compression, self.compression))
            self._cache_url = url
        self._cache.ensure_layout()
        return self._cache

    @observe("directory", "size_limit", "key", "compression", "storage_options")
    def _directory_changed(self, change: Any) -> None:
        cache = getattr(self, "_cache", None)  # config applies while __init__ still runs
        if cache is not None:
            cache.close()
        self._cache = None

    # -- the magic -----------------------------------------------------------------------------------
    @magic_arguments()
    @argument(
        "--force",
        action="store_true",
        help="Run the cell even if a stored result exists, and store the new one (kept even if restoring it is no faster than running it).",
    )
    @argument("--skip", action="store_true", help="Run the cell without the cache: no lookup, nothing stored.")
    @argument("--name", metavar="LABEL", default=None, help="A label for this cell's entries (shown by the CLI and dashboard).")
    @argument("--quiet", action="store_true", help="Do not print the note on a cache hit.")
    @argument("--explain", action="store_true", help="Say why the cell hit or missed: which input, function, module, file or state changed.")
    @argument(
        "--deps",
        nargs="+",
        metavar="PATH",
        default=[],
        help="Files or folders whose content the result depends on (files the cell opens are tracked automatically).",
    )
    @cell_magic
    def cache(self, line: str, cell: str) -> None:
        """Cache a cell: run it once, then restore its variables and outputs instantly.

        The first run executes the cell and stores the variables it assigned, the names it
        deleted and everything it showed (printed text, tables, figures, its Out[] result).
        Later runs with the same code and the same input values restore all of it without
        running the cell, even after a kernel restart. Edit the code, or change a variable
        the cell reads, and it runs again.

        A cache must pay: when the first restore of an entry is not clearly faster than
        running the cell (restore >= 0.8x the run time), the entry is dropped and the cell just
        runs from then on (one line says so, with both times). --force stores it anyway.

        Examples::

            %%cache
            df = load_big_table("data.csv")
            features = extract(df)

            %%cache --name training --quiet
            model = train(features, epochs=20)
            model.score(features)

            %%cache --deps data/ --explain
            table = pd.concat(pd.read_csv(p) for p in sorted(Path("data").glob("*.csv")))

        The key covers the code (not comments or layout), the values of the variables the cell
        reads, the functions and classes it calls (and the globals they read, which count as
        inputs: a function that appends to a global list has it restored on a hit), the
        working-tree modules it imports (their sources, and the attributes its code reads), and
        the versions of the libraries it uses. Files the cell reads, folders it lists and
        environment variables it looks up are recorded and re-checked, and so are the settings
        it ran under (print options, rcParams, pandas, scikit-learn, polars and torch settings,
        warnings filters, decimal context, locale). A hit makes the changes the cell made to all
        of these, imports again the modules it imported, and leaves views of existing arrays
        views of them.

        Random generators (random, numpy.random, torch): a cell that draws from a generator you
        seeded (seed(n), manual_seed(n)) is keyed on its state and a hit leaves it exactly where
        the run left it. Draws from a generator nobody seeded, as in a fresh kernel, are cached
        (any draw is as valid as another), and a hit leaves the generator freshly seeded.

        The cache is in .nbcache/ next to the notebook, or where $NBCACHE_DIR or
        %config NbCache.directory says.
        """
        args = parse_argstring(self.cache, line)
        if not cell.strip():
            return  # nothing to run, as the cell without %%cache (see drop_empty_cache_cell)
        host = IPythonHost(self.shell, line)
        self._tell_missing_deps(host, args.deps)
        options = RunOptions(
            force=args.force,
            skip=args.skip,
            quiet=args.quiet or self.quiet,
            label=args.name,
            explain=args.explain,
            deps=tuple(args.deps),
            cell=cell_id(self.shell),
            judge=self.judge_restores,
            max_file_size=self.max_file_size,
        )
        self._run(host, cell, options)

    @cell_magic
    def nocache(self, line: str, cell: str) -> None:
        """Run this cell without the cache, also in automatic mode (%cache_all): no lookup,
        nothing stored. The same as ``%%cache --skip``.

        Example::

            %%nocache
            model.fit(X, y)      # always train afresh
        """
        if line.strip():
            raise UsageError(f"nbcache: %%nocache takes no options (got {line.strip()!r})")
        self._run(IPythonHost(self.shell, magic="nocache"), cell, RunOptions(skip=True, cell=cell_id(self.shell)))

    @line_magic
    def cache_all(self, line: str) -> None:
        """Cache every later cell of this kernel automatically, as if each had %%cache.

        ``%cache_all`` turns automatic mode on, ``%cache_all off`` turns it off (also
        ``%config NbCache.auto = True``, or ``NBCACHE_AUTO=1`` when the extension loads).

        A cell is stored only when its run took at least ``NbCache.min_runtime`` seconds
        (0.25 by default; 0 stores every cell): a cheaper cell just runs. ``%%nocache`` opts a
        cell out. Cells that install packages or load extensions (%pip, %conda, %load_ext),
        run other files (%run), use other line or cell magics (%%bash...), run shell commands
        (!cmd), call get_ipython(), await at top level, ask for input() or wire interactive
        widgets are never cached, and neither is a run that raised, started a process or wrote
        files.

        Examples::

            %cache_all
            %config NbCache.min_runtime = 1.0
            %cache_all off
        """
        word = line.strip().lower()
        if word not in ("", "on", "off"):
            raise UsageError(f"nbcache: %cache_all takes 'on' or 'off', not {line.strip()!r}")
        self.auto = word != "off"

    def _run(self, host: IPythonHost, cell: str, options: RunOptions) -> None:
        try:
            self.engine.run(host, cell, options)
        except BaseException as exc:
            # The cell's own error: show it as IPython would, without nbcache's frames.
            __tracebackhide__ = True  # noqa: F841
            if isinstance(exc, SyntaxError) and exc.filename == host.filename:
                raise mark_cell_syntax_error(exc) from None  # shown as IPython shows one in any cell
            raise exc.with_traceback(user_frames(exc.__traceback__, host.filename))
        # The cell's Out[] value was shown through the display hook by the host (at its place
        # among the outputs), so the magic itself returns nothing.

    def _tell_missing_deps(self, host: IPythonHost, paths: list[str]) -> None:
        """Once per path (until it exists): a ``--deps`` path that does not exist is most likely a
        typo, and the key would silently count it as missing."""
        for path in paths:
            if os.path.exists(os.path.expanduser(path)):
                self._missing_deps.discard(path)
            elif path not in self._missing_deps:
                self._missing_deps.add(path)
                host.warn(
                    f"nbcache: --deps {path}: no such file or folder (from {os.getcwd()}); the key counts it as "
                    "missing, and the cell runs again once it exists"
                )


def drop_empty_cache_cell(lines: list[str]) -> list[str]:
    """An input transformer: ``%%cache`` over an empty body becomes an empty cell, a no-op as the
    cell itself would be (IPython raises UsageError for a cell magic without a body)."""
    if lines and lines[0].startswith("%%cache") and lines[0][7:8] in ("", " ", "\t", "\n") and not "".join(lines[1:]).strip():
        return []
    return lines
