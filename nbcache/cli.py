"""The ``nbcache`` command: look into a cache, clean it, check it.

::

    nbcache ls [--json] [--all]         entries, newest last (--all: foreign ones too, marked)
    nbcache show KEY                    one entry (a unique prefix of its key is enough)
    nbcache stats [--json]              totals: entries, size, hits, misses, time saved
    nbcache clear [KEY...] [--label L] [--older-than 30d] [--all] [--foreign]
    nbcache gc                          enforce the size limit, remove orphan blobs
    nbcache verify                      check every signature and checksum (exit 1 on failure)
    nbcache doctor                      check reachability, permissions, key, format, space, index, size
    nbcache run NOTEBOOK.ipynb          execute a notebook with automatic caching (see runner.py)

The cache is ``--dir``, else ``$NBCACHE_DIR``, else ``.nbcache`` in the current folder; it may be
any fsspec URL (``s3://bucket/prefix``). The signing key is read from ``--key FILE``, else
``$NBCACHE_KEY``, else the per-user key file. *Foreign* entries are those this key cannot use:
signed with another key, written in an older store format, or unreadable. Exit codes: 0 done,
1 a check failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import asdict
from typing import Callable, Sequence

from .errors import NbCacheError
from . import runner
from .run import pays
from .store import DEFAULT_SIZE_LIMIT, Cache, EntryStats, Progress, open_store
from .units import format_duration as _seconds
from .units import format_size, parse_age, parse_size

__all__ = ["main"]

ENV_DIR = "NBCACHE_DIR"
ENV_SIZE_LIMIT = "NBCACHE_SIZE_LIMIT"
ENV_KEY = "NBCACHE_KEY"


class _Usage(Exception):
    """A mistake on the command line (exit code 2)."""


def _progress(label: str) -> Progress | None:
    """A one-line progress counter on stderr, only when a person watches it."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.1:
            return
        last[0] = now
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _open(args: argparse.Namespace) -> Cache:
    url = args.dir or os.environ.get(ENV_DIR) or ".nbcache"
    limit_text = args.size_limit or os.environ.get(ENV_SIZE_LIMIT)
    try:
        limit = parse_size(limit_text) if limit_text else DEFAULT_SIZE_LIMIT
    except ValueError as exc:
        raise _Usage(str(exc)) from exc
    if "://" not in url and not os.path.isdir(url):
        raise _Usage(f"nbcache: no cache at {url} (give --dir or set {ENV_DIR})")
    return Cache(open_store(url), key=_key(args), size_limit=limit)


def _key(args: argparse.Namespace) -> bytes | None:
    """The secret in ``--key FILE`` (None: ``$NBCACHE_KEY``, else the key file, as in a kernel)."""
    path = args.key_file
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            secret = fh.read().strip()
    except OSError as exc:
        raise _Usage(f"nbcache: cannot read the key file {path}: {exc.strerror or exc}") from exc
    if not secret:
        raise _Usage(f"nbcache: the key file {path} is empty")
    return secret


_MINUTES: dict[int, str] = {}


def _when(ts: float) -> str:
    # Listings show thousands of times to the minute: each minute is formatted once.
    minute = int(ts // 60)
    text = _MINUTES.get(minute)
    if text is None:
        text = _MINUTES[minute] = dt.datetime.fromtimestamp(minute * 60).strftime("%Y-%m-%d %H:%M")
    return text


def _restore_time(stats: EntryStats) -> float:
    # The JSON has always said 0 for an entry never restored here; scripts may compare with it.
    return 0.0 if stats.restore_time is None else stats.restore_time


def _resolve(cache: Cache, prefix: str) -> str:
    matches = cache.resolve(prefix)
    if not matches:
        raise _Usage(f"nbcache: no entry with a key starting {prefix!r}")
    if len(matches) > 1:
        raise _Usage(f"nbcache: {len(matches)} entries have keys starting {prefix!r}; give more of the key")
    return matches[0]


# -- commands ------------------------------------------------------------------------------------
def cmd_ls(cache: Cache, args: argparse.Namespace) -> int:
    stats = cache.stats()
    foreign = cache.index.foreign() if args.all else []
    if args.json:
        rows: list[dict[str, object]] = [
            {
                "key": s.key,
                "label": s.label,
                "cell": s.cell,
                "size": s.size,
                "hits": s.hits,
                "misses": s.misses,
                "runtime": s.runtime,
                "restore_time": _restore_time(s),
                "created": s.created,
                "last_used": s.last_used,
            }
            for s in stats
        ]
        rows += [
            {"key": f.key, "label": f.label, "cell": f.cell, "size": f.size, "created": f.created, "foreign": f.reason}
            for f in foreign
        ]
        # One line, no indent: the C encoder is many times faster on 10,000 entries.
        sys.stdout.write(json.dumps(rows) + "\n")
        return 0
    if not stats and not foreign:
        print(f"no entries in {cache.store.url}")
        return 0
    header = ("KEY", "LABEL", "SIZE", "HITS", "RUNTIME", "CREATED", "LAST USED", "CELL")
    # Column by column, each value formatted once (100,000 entries list in a fraction of a second).
    sizes: dict[int, str] = {}
    columns = [
        [s.key[:12] for s in stats] + [f.key[:12] for f in foreign],
        [s.label or "-" for s in stats] + [f.label or "-" for f in foreign],
        [sizes.get(s.size) or sizes.setdefault(s.size, format_size(s.size)) for s in stats] + [format_size(f.size) for f in foreign],
        [str(s.hits) for s in stats] + ["-"] * len(foreign),
        [_seconds(s.runtime) for s in stats] + ["-"] * len(foreign),
        [_when(s.created) for s in stats] + [_when(f.created) for f in foreign],
        [_when(s.last_used) for s in stats] + ["-"] * len(foreign),
    ]
    # What a foreign manifest claims is unverified: shown, marked, never used.
    cells = [s.cell[:50] for s in stats] + [f"[foreign: {f.reason}] {f.cell[:40]}" for f in foreign]
    widths = [max(len(header[i]), *map(len, column)) for i, column in enumerate(columns)]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    out = [line.format(*header)]
    out.extend(line.format(*row) for row in zip(*columns, cells))
    print("\n".join(out))
    return 0


def cmd_show(cache: Cache, args: argparse.Namespace) -> int:
    key = _resolve(cache, args.key)
    entry = cache.lookup(key)
    if entry is None:
        raise _Usage(f"nbcache: entry {key} is gone")
    data = asdict(entry)
    del data["inline"]  # (the content of its small blobs, in base64)
    usage = next((s for s in cache.stats() if s.key == key), None)
    if usage is not None:
        data["usage"] = {"hits": usage.hits, "misses": usage.misses, "last_used": usage.last_used, "restore_time": _restore_time(usage)}
    if args.json:
        json.dump(data, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print(f"key:       {entry.key}")
    print(f"label:     {entry.label or '-'}")
    print(f"cell:      {entry.cell}")
    print(f"created:   {_when(entry.created)}")
    print(f"runtime:   {_seconds(entry.runtime)}")
    # The index's figure when it has one: a blob compressed after the write takes less than the
    # manifest says (nbcache.store.later).
    stored = usage.size if usage is not None else entry.stored
    print(f"size:      {format_size(entry.size)} ({format_size(stored)} stored)")
    print(f"variables: {', '.join(entry.names) or '-'}")
    if entry.deleted:
        print(f"deletes:   {', '.join(entry.deleted)}")
    print("versions:  " + ", ".join(f"{k} {v}" for k, v in sorted(entry.packages.items())))
    if usage is not None:
        print(f"hits:      {usage.hits}, last used {_when(usage.last_used)}")
    print("source:")
    for line in entry.source.splitlines():
        print(f"    {line}")
    return 0


def cmd_stats(cache: Cache, args: argparse.Namespace) -> int:
    totals = cache.totals()
    if args.json:
        json.dump(asdict(totals), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    limit = format_size(totals.size_limit) if totals.size_limit else "none"
    print(f"cache:      {cache.store.url}")
    print(f"entries:    {totals.entries}")
    print(f"size:       {format_size(totals.size)} (limit {limit})")
    print(f"hits:       {totals.hits}")
    print(f"misses:     {totals.misses}")
    print(f"time saved: {_seconds(totals.time_saved)}")
    return 0


def cmd_clear(cache: Cache, args: argparse.Namespace) -> int:
    if not (args.keys or args.label or args.older_than or args.all or args.foreign):
        raise _Usage("nbcache: say what to clear: KEY..., --label L, --older-than AGE, --all or --foreign")
    try:
        older = parse_age(args.older_than) if args.older_than else None
    except ValueError as exc:
        raise _Usage(str(exc)) from exc
    keys = [_resolve(cache, k) for k in args.keys]
    if keys or args.label or older is not None or args.all:
        done = cache.clear(keys, label=args.label, older_than=older, everything=args.all, progress=_progress("clearing"))
        if args.all:  # a fresh start: cells found not worth caching are measured again too
            pays.forget(cache, [verdict.key for verdict in cache.index.verdicts()])
        print(f"removed {len(done)} entr{'y' if len(done) == 1 else 'ies'}")
    if args.foreign:
        gone = cache.clear_foreign(progress=_progress("clearing foreign"))
        print(f"removed {len(gone)} foreign entr{'y' if len(gone) == 1 else 'ies'}")
    return 0


def cmd_gc(cache: Cache, args: argparse.Namespace) -> int:
    cache.sync(progress=_progress("indexing"), full=True)  # every manifest: not only what the change log tells
    evicted = cache.enforce_limit()
    swept = cache.sweep()
    print(f"evicted {len(evicted)} entries over the size limit, removed {swept} orphan files")
    return 0


def cmd_verify(cache: Cache, args: argparse.Namespace) -> int:
    problems = cache.verify(progress=_progress("verifying"))
    if not problems:
        print("all entries are intact")
        return 0
    for problem in problems:
        print(f"{problem.key}  {problem.problem}")
    print(f"{len(problems)} entr{'y fails' if len(problems) == 1 else 'ies fail'} verification", file=sys.stderr)
    return 1


def cmd_doctor(cache: Cache, args: argparse.Namespace) -> int:
    from .store.doctor import diagnose

    findings = diagnose(cache, key=_key(args))
    width = max(len(f.check) for f in findings)
    for f in findings:
        print(f"{f.level:4s}  {f.check.ljust(width)}  {f.detail}")
        if f.fix and f.level != "ok":
            print(f"{'':4s}  {'':{width}}  fix: {f.fix}")
    failed = sum(f.level == "fail" for f in findings)
    warned = sum(f.level == "warn" for f in findings)
    print(f"{failed} failed, {warned} warning{'' if warned == 1 else 's'}, {len(findings) - failed - warned} ok")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbcache", description="Inspect and maintain an nbcache cache.")
    parser.add_argument("--dir", help=f"the cache (a folder or an fsspec URL); default ${ENV_DIR}, else .nbcache")
    parser.add_argument("--size-limit", help=f"size limit for gc, like 20GB; default ${ENV_SIZE_LIMIT}, else 10GB")
    parser.add_argument(
        "--key", dest="key_file", metavar="KEYFILE", help=f"a file holding the signing key; default ${ENV_KEY}, else your key file"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("ls", help="list entries")
    ls.add_argument("--json", action="store_true", help="a JSON list of entries")
    ls.add_argument("--all", action="store_true", help="also entries this key cannot use, marked foreign")
    ls.set_defaults(run=cmd_ls)

    show = sub.add_parser("show", help="show one entry")
    show.add_argument("key", help="the entry's key, or a unique prefix of it")
    show.add_argument("--json", action="store_true", help="the manifest as JSON")
    show.set_defaults(run=cmd_show)

    stats = sub.add_parser("stats", help="totals")
    stats.add_argument("--json", action="store_true", help="totals as JSON")
    stats.set_defaults(run=cmd_stats)

    clear = sub.add_parser("clear", help="delete entries")
    clear.add_argument("keys", nargs="*", metavar="KEY", help="keys (or unique prefixes) to delete")
    clear.add_argument("--label", help="delete entries with this label")
    clear.add_argument("--older-than", metavar="AGE", help="delete entries not used for AGE (30d, 12h, 90min)")
    clear.add_argument("--all", action="store_true", help="delete every entry signed with this key")
    clear.add_argument(
        "--foreign", action="store_true", help="delete entries this key cannot use (another key, an older format)"
    )
    clear.set_defaults(run=cmd_clear)

    gc = sub.add_parser("gc", help="enforce the size limit and remove orphan blobs")
    gc.set_defaults(run=cmd_gc)

    verify = sub.add_parser("verify", help="check every signature and checksum")
    verify.set_defaults(run=cmd_verify)

    doctor = sub.add_parser("doctor", help="check the store, the key and the index, and say what to fix")
    doctor.set_defaults(run=cmd_doctor)

    runner.add_parser(sub)  # `nbcache run`: opens no cache itself (sets `main`)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "main", None) is not None:  # `nbcache run`: the kernel opens the cache
        try:
            args.key_secret = _key(args)
        except _Usage as exc:
            print(exc, file=sys.stderr)
            return 2
        return int(args.main(args))
    run: Callable[[Cache, argparse.Namespace], int] = args.run
    try:
        cache = _open(args)
        try:
            return run(cache, args)
        finally:
            cache.close()
    except _Usage as exc:
        print(exc, file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `nbcache ls | head`: the reader has what it wanted; say nothing, as Unix tools do.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except (NbCacheError, OSError) as exc:
        message = str(exc)
        print(message if message.startswith("nbcache:") else f"nbcache: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
