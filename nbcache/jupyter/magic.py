"""The ``%%cache`` magic and nbcache's configuration (``%config NbCache.<option> = ...``).

A thin magic in IPython's manner: options declared with ``magic_arguments``, user mistakes as
``UsageError``, the work done by :class:`nbcache.run.engine.Engine` over an
:class:`~nbcache.jupyter.host.IPythonHost`. The magic also owns the kernel's open cache, which the
frontend bridge and the dashboard reach through :meth:`NbCache.open_cache`.
"""

from __future__ import annotations

import os
from typing import Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Dict, Enum, Unicode, observe

from ..errors import NbCacheError
from ..run.engine import Engine, RunOptions
from ..store.backends import open_store
from ..store.cache import DEFAULT_SIZE_LIMIT, Cache
from ..store.compression import Compression
from ..units import parse_size
from .host import IPythonHost, cell_id, user_frames

__all__ = ["ENV_DIR", "ENV_SIZE_LIMIT", "NbCache"]

ENV_DIR = "NBCACHE_DIR"
ENV_SIZE_LIMIT = "NBCACHE_SIZE_LIMIT"


@magics_class
class NbCache(Magics):
    """Configuration of nbcache (``%config NbCache.<option> = ...`` or ``ipython_config.py``)."""

    directory = Unicode(
        "",
        help="Where the cache lives. Empty: $NBCACHE_DIR, else .nbcache/ in the kernel's starting directory.",
    ).tag(config=True)
    quiet = Bool(False, help="Do not print the note that says a cell was restored from the cache.").tag(config=True)
    size_limit = Unicode(
        "",
        help="Most the cache may hold, like 20GB or 500MB; least recently used entries are evicted "
        "after each store. Empty: $NBCACHE_SIZE_LIMIT, else 10GB.",
    ).tag(config=True)
    key = Unicode(
        "",
        help="Secret that signs entries (share it within a team). Empty: $NBCACHE_KEY, else a key "
        "created in the Jupyter data directory.",
    ).tag(config=True)
    compression = Enum(
        ["auto", "zstd", "none"], "auto", help="auto: zstd where data compresses, none for incompressible buffers."
    ).tag(config=True)
    judge_restores = Bool(
        True,
        help="Time each entry's first restore against the run it replaces, and drop the entry when "
        "restoring is not clearly faster (under 0.8x): the cell then just runs. False keeps every entry.",
    ).tag(config=True)
    storage_options = Dict(
        help="Options for fsspec when the cache is a URL, e.g. {'endpoint_url': 'http://127.0.0.1:9000'}."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self._start_dir = os.getcwd()
        self._cache: Cache | None = None
        self._cache_url: str | None = None
        self.engine = Engine(self.open_cache)

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
        reads, the functions and classes it calls (and what they read), the working-tree
        modules it imports, and the versions of the libraries it uses. Files the cell reads,
        folders it lists and environment variables it looks up are recorded and re-checked.
        Changes the cell makes to the global random generators, pandas options, matplotlib
        rcParams, environment variables and the working directory are restored on a hit.

        The cache is in .nbcache/ next to the notebook, or where $NBCACHE_DIR or
        %config NbCache.directory says.
        """
        args = parse_argstring(self.cache, line)
        if not cell.strip():
            raise UsageError("nbcache: the cell under %%cache is empty; write the code to cache below the magic line")
        host = IPythonHost(self.shell, line)
        options = RunOptions(
            force=args.force,
            skip=args.skip,
            quiet=args.quiet or self.quiet,
            label=args.name,
            explain=args.explain,
            deps=tuple(args.deps),
            cell=cell_id(self.shell),
            judge=self.judge_restores,
        )
        try:
            self.engine.run(host, cell, options)
        except BaseException as exc:
            # The cell's own error: show it as IPython would, without nbcache's frames.
            __tracebackhide__ = True  # noqa: F841
            if isinstance(exc, SyntaxError) and exc.filename == host.filename:
                raise exc.with_traceback(None) from None
            raise exc.with_traceback(user_frames(exc.__traceback__, host.filename))
        # The cell's Out[] value was shown through the display hook by the host (at its place
        # among the outputs), so the magic itself returns nothing.
