"""What a cell read from outside Python: files, folder listings, environment variables.

Static analysis cannot see that ``pd.read_csv("sales.csv")`` depends on a file, so nbcache
watches while a cell runs (on a miss only):

- **Files and folders**: a ``sys.addaudithook`` hook records every file opened for reading and
  every folder listed (``open``, ``os.listdir``, ``os.scandir`` audit events, which pandas, numpy
  and the standard library all go through). Files of the interpreter and of installed packages,
  ``__pycache__``, pseudo-filesystems (``/proc``, ``/sys``, ``/dev``) and dot-folders of the home
  directory (caches, configs) are not recorded.
- **Files written**: the same hook notes files opened for writing and paths created, moved or
  removed (``os.remove``, ``os.rename``, ``shutil.rmtree``...), anywhere (a temporary folder
  made by one cell is often used by the next), except scratch files made and removed within the
  cell. A hit does not write them again, so automatic mode does not store such a run
  (``Watch.written``).
- **Environment variables**: ``os.environ`` is switched to a subclass that records the names the
  cell looks up (``os.environ[...]``, ``os.getenv``, ``in``), and back afterwards.

The entry stores what was read with a fingerprint; a lookup re-checks them (size and mtime first,
the content hash only when those differ) and treats any difference as a miss. ``--deps PATH``
names files or folders explicitly; their content goes into the key itself.

An audit hook cannot be removed once added, so one is installed per process and does nothing
unless a :class:`Watch` is active on the calling thread.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import xxhash

from .disk import TREE_LIMIT, DiskProblem, Node, file_digest, node, shallow
from .modules import is_library_path
from .touched import Settled, check_globs, check_trees

__all__ = ["Watch", "check_reads", "command_words", "current", "note_read", "note_text", "note_write", "paths_digest", "record_reads", "unwatched"]

_state = threading.local()
_hook_installed = False
_active: set[Watch] = set()
"""The watches of the runs going on, on any thread."""
# A process the cell starts reads files and the environment where no audit hook sees it.
_SPAWN_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.spawn", "os.fork", "os.forkpty", "pty.fork"})
# Variables that differ between two starts of the same notebook server and kernel.
_VOLATILE_ENV = ("JPY_", "KERNEL_ID", "JUPYTER_SERVER", "PYDEVD", "_", "OLDPWD", "PWD", "SHLVL")
# Variables a library sets to a default of its own the first time it needs one, and reads back:
# the default is no input of the cell. Recorded as an input (absent before the cell, set after),
# it would make every later run in the same kernel miss, and the entry it then stores miss after a
# restart. torch sets TORCHINDUCTOR_CACHE_DIR (a folder under /tmp) when an optimizer first steps;
# polars sets _RJEM_MALLOC_CONF (its allocator's settings) when it is imported.
_SET_BY_LIBRARIES = frozenset({"TORCHINDUCTOR_CACHE_DIR", "_RJEM_MALLOC_CONF"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# Events that change the file system: ``(position, read)`` of each path argument changed (``read``:
# what it held is kept in some form: the source of a move or a link, a truncated file), and the
# positions of their ``dir_fd`` arguments (a path relative to a folder descriptor names nothing
# the watch can resolve: ``shutil.rmtree`` removes a tree's files that way, after its own event).
_CHANGE_EVENTS: dict[str, tuple[tuple[tuple[int, bool], ...], tuple[int, ...]]] = {
    "os.remove": (((0, False),), (1,)),
    "os.rename": (((0, True), (1, False)), (2, 3)),
    "os.mkdir": (((0, False),), (2,)),
    "os.rmdir": (((0, False),), (1,)),
    "os.truncate": (((0, True),), ()),
    "os.link": (((0, True), (1, False)), (2, 3)),
    "os.symlink": (((1, False),), (2,)),  # (its first argument is the text the link holds)
    "shutil.rmtree": (((0, False),), (1,)),
    "shutil.copyfile": (((1, False),), ()),
    "shutil.copytree": (((1, False),), ()),
    "shutil.move": (((0, True), (1, False)), ()),
}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    try:
        _follow(event, args)
    except Exception as exc:  # noqa: BLE001 - the hook runs inside the user's own call: never break it
        watch = getattr(_state, "watch", None)
        if watch is not None:
            watch.problems.append(f"nbcache could not follow {event} ({type(exc).__name__}: {exc})")


def _follow(event: str, args: tuple[Any, ...]) -> None:
    watch: Watch | None = getattr(_state, "watch", None)
    if watch is None:
        if _active and event in _SPAWN_EVENTS:
            # a process started by another thread while a cell runs (nbclient starts kernels
            # from a thread of its own): the cell's doing, as far as anyone can tell
            for active in list(_active):
                active.spawned = True
        return
    if event == "open":
        path, mode, flags = args
        if isinstance(path, int):
            return
        if isinstance(mode, str):
            if any(c in mode for c in "wax+"):
                watch.note_write(path, reads="a" in mode or "+" in mode)
                return
        elif isinstance(flags, int) and flags & _WRITE_FLAGS:
            watch.note_write(path, reads=not flags & os.O_TRUNC)
            return
        watch.note_file(path)
    elif event == "sqlite3.connect":
        # a database is read and written in C: what it was before is an input, what it is after an output
        database = _database_file(args[0] if args else None)
        if database is not None:
            watch.note_write(database, reads=True)
    elif event in _CHANGE_EVENTS:
        changed, folder_fds = _CHANGE_EVENTS[event]
        relative_to_fd = any(p < len(args) and args[p] is not None for p in folder_fds)
        for position, read in changed:
            if position >= len(args) or isinstance(args[position], int):
                continue
            path = args[position]
            if relative_to_fd and not os.path.isabs(os.fsdecode(path)):
                continue
            watch.note_write(path, reads=read, tree=event == "shutil.rmtree")
    elif event in _SPAWN_EVENTS:
        watch.note_spawn(args)
    elif event in ("os.listdir", "os.scandir"):
        path = args[0] if args else "."
        if not isinstance(path, int):
            watch.note_dir("." if path is None else path)


def _database_file(database: Any) -> str | None:
    """The file of a ``sqlite3.connect`` argument: a path, or a ``file:`` URI's path (None for
    a database in memory)."""
    if not isinstance(database, (str, bytes, os.PathLike)):
        return None
    text = os.fsdecode(database)
    if text.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(text)
        if "mode=memory" in parts.query:
            return None
        text = unquote(parts.path)
    return None if text in ("", ":memory:") else text


# Folder listings that look for modules or installed distributions along sys.path: what they find
# is covered by the modules' sources and the libraries' versions in the key, and a sys.path entry
# of "" would otherwise make every cell that imports such a library depend on the working folder.
_METADATA = os.path.join("importlib", "metadata", "")


def _in_import_machinery() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<frozen importlib") or _METADATA in filename:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@functools.lru_cache(maxsize=64)
def _real_folder(path: str) -> str:
    # A watch starts with every miss, and resolving a path costs a stat per component: the
    # cache's own folder does not move while a kernel runs.
    return os.path.realpath(path)


# Pseudo-filesystems: their listings and contents change with every process and every moment
# (plotly's import lists /proc), and they are the machine's state, never a cell's data.
_PSEUDO = ("/proc", "/sys", "/dev")


def _is_pseudo(path: str) -> bool:
    return path in _PSEUDO or path.startswith(tuple(root + os.sep for root in _PSEUDO))


# Folders never taken whole when a cell names them (``os.path.join("..", name)``, ``dir="/tmp"``):
# the machine's, not the cell's; what the cell reads or writes inside them is seen file by file.
_SYSTEM_FOLDERS = frozenset({"/tmp", "/var", "/usr", "/etc", "/opt", "/mnt", "/media", "/srv", "/home", "/root", "/run"})


def _too_wide(path: str, home: str) -> bool:
    """Whether ``path`` is the working folder, one of its ancestors, the home folder or a system folder."""
    cwd = os.getcwd()
    return path == cwd or path == home or path in _SYSTEM_FOLDERS or cwd.startswith(path.rstrip(os.sep) + os.sep)


class Watch:
    """Records files, folders and environment variables read on this thread while active."""

    def __init__(self, exclude: Iterable[str] = ()):
        self.files: dict[str, tuple[int, int] | None] = {}
        """Files read through Python, with their size and mtime when opened."""
        self.dirs: dict[str, None] = {}
        self.env: dict[str, None] = {}
        self._written: dict[str, Node | None] = {}
        """Paths the cell wrote (seen by the audit hook), with what was there before."""
        self.also_read: set[str] = set()
        """Written paths whose earlier content the cell may have read (append, databases)."""
        self.before: dict[str, Node | None] = {}
        """Paths named by the cell's values, constants and library calls (native code reads and
        writes them where no audit hook sees it), with what was there before the call."""
        self.globs: dict[str, tuple[str, ...]] = {}
        """Glob patterns named the same way, with what they matched before."""
        self.removed_trees: set[str] = set()
        """Folders removed whole (``shutil.rmtree``): taken with their content, before and after."""
        self.named_relatively: set[str] = set()
        """Paths the cell named relative to the working folder (their outputs are restored so)."""
        self.overwritten: set[str] = set()
        """Named paths that a writer replaced whole (``open(p, "w")``, ``to_parquet``), that no
        reader was handed first: their earlier content is no input."""
        self.read_natively: set[str] = set()
        """Named paths handed to a library reader."""
        self.problems: list[str] = []
        """Paths whose state could not be taken (too many files, a link loop...): nothing is stored."""
        self.spawned = False
        self.relative = False
        """Whether a file or folder was read by a relative path (the result then depends on the
        working directory, which the recorded absolute paths do not show)."""
        self.command_words: list[str] = []
        self.programs: list[str] = []
        """The program of each process started (its first word), where the event names one."""
        self.cwd = os.getcwd()
        """The working folder when the run started: outputs named relatively are relative to it."""
        self._exclude = tuple(_real_folder(p) + os.sep for p in exclude if p)
        self._folders: dict[str, bool] = {}
        home = os.path.expanduser("~")
        self._home = home
        self._home_dot = os.path.join(home, ".")
        # caches of libraries wherever $XDG_CACHE_HOME puts them (matplotlib's font list, which
        # any kernel may rewrite at any moment): like the dot-folders of the home directory
        caches = os.environ.get("XDG_CACHE_HOME")
        self._caches = (os.path.abspath(caches) + os.sep,) if caches else ()

    def _absolute(self, path: Any) -> str | None:
        """The absolute path, or None for what is not the cell's own business: the interpreter's
        and libraries' files, caches and settings in the home folder, nbcache's own folder."""
        try:
            absolute = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return None
        if absolute.startswith(self._home_dot) or _is_pseudo(absolute) or (self._caches and absolute.startswith(self._caches)):
            return None
        folder, name = os.path.split(absolute)
        if name == "__pycache__" or not self._folder_ok(folder):
            return None
        if self._exclude and os.path.join(_real_folder(folder), name).startswith(self._exclude):
            return None
        return absolute

    def _folder_ok(self, folder: str) -> bool:
        """Whether files in ``folder`` may be the cell's own (not a library's, not the machine's):
        one answer per folder, as a cell may name thousands of files in one."""
        known = self._folders.get(folder)
        if known is None:
            known = self._folders[folder] = not (
                _is_pseudo(folder) or "__pycache__" in folder or is_library_path(folder + os.sep)
            )
        return known

    def _keep(self, path: Any) -> str | None:
        absolute = self._absolute(path)
        if absolute is not None and not os.path.isabs(os.fsdecode(path)):
            self.relative = True
        return absolute

    def note_write(self, path: Any, reads: bool = False, tree: bool = False) -> None:
        """``path`` is about to be written (``reads``: what it holds now may be read first;
        ``tree``: a folder removed with all it holds)."""
        if isinstance(path, str) and path.startswith("~"):
            path = os.path.expanduser(path)
        absolute = self._absolute(path)
        if absolute is None:
            return
        if os.path.islink(absolute) and not tree:
            # written through a link: the file it points to is what changes
            target = os.path.realpath(absolute)
            absolute = self._absolute(target) or absolute
        self._name(path, absolute)
        if tree and absolute not in self._written and absolute not in self.before:
            self.removed_trees.add(absolute)
            self._written[absolute] = self._state(absolute, digest=False)
            return
        if reads and absolute not in self.also_read:
            self.also_read.add(absolute)
            first = self._written.get(absolute)
            if first is not None and first.digest is None:
                del self._written[absolute]  # stamped without content when first written: take it now
        if absolute in self.before:
            if not reads:
                self.overwritten.add(absolute)
            return
        if absolute in self._written:
            return
        # What was there before: a scratch file made and removed within the cell is no change. A
        # folder is taken without its content: what the cell writes inside it has events of its
        # own (``os.makedirs(exist_ok=True)`` of a folder of 100,000 files is no write of them).
        self._written[absolute] = self._state(absolute, digest=reads, flat=True)

    def _name(self, text: Any, absolute: str) -> None:
        try:
            if not os.path.isabs(os.fsdecode(text)):
                self.named_relatively.add(absolute)
        except (TypeError, ValueError):
            pass

    def _state(self, path: str, digest: bool, flat: bool = False) -> Node | None:
        outer = getattr(_state, "watch", None)
        _state.watch = None  # our own reads of the path are not the cell's
        try:
            return shallow(path, digest=digest) if flat else node(path, digest=digest)
        except DiskProblem as exc:
            self.problems.append(str(exc))
            return None
        finally:
            _state.watch = outer

    def expect(self, strings: Iterable[str], absent_limit: int | None = None) -> None:
        """Take the state of the paths named by ``strings`` (before the run: see nbcache.key.paths;
        ``absent_limit``: at most that many of the names of files that do not exist yet)."""
        from .paths import named_paths

        for path in named_paths(strings, absent_limit):
            self.note_path(path)

    def note_path(self, path: Any, read: bool = False) -> None:
        """A file, folder or glob named where native code may read or write it (before it does;
        ``read``: a library reader was handed it)."""
        try:
            text = os.fsdecode(path)
        except (TypeError, ValueError):
            return
        if any(c in text for c in "*?["):
            self.note_glob(text)
            return
        absolute = self._absolute(os.path.expanduser(text))
        if read and absolute is not None:
            self.read_natively.add(absolute)
        if absolute is None or absolute in self.before or _too_wide(absolute, self._home):
            return
        self._name(text, absolute)
        if absolute in self._written:
            self.before[absolute] = self._written.pop(absolute)
            self.also_read.add(absolute)
            return
        self.before[absolute] = found = self._state(absolute, digest=True)
        if found is not None and not os.path.isabs(text):
            self.relative = True
        if found is not None and found.kind == "link":
            # native code reads what the link points to: that is the input (and what changes)
            self.note_path(os.path.realpath(absolute), read=read)

    def note_glob(self, pattern: str) -> None:
        import glob

        absolute = os.path.abspath(os.path.expanduser(pattern))
        if absolute in self.globs or self._absolute(absolute) is None:
            return
        outer = getattr(_state, "watch", None)
        _state.watch = None
        try:
            found = list(itertools.islice(glob.iglob(absolute, recursive=True), TREE_LIMIT + 1))
        finally:
            _state.watch = outer
        matches = tuple(sorted(found))
        if len(matches) > TREE_LIMIT:
            self.problems.append(f"the pattern {pattern} matches more than {TREE_LIMIT} files, too many to watch")
            matches = ()
        self.globs[absolute] = matches
        self.relative = self.relative or not os.path.isabs(pattern)
        for match in matches:
            self.note_path(match)
            if not os.path.isabs(pattern):
                self.named_relatively.add(match)

    @property
    def written(self) -> list[str]:
        """Files and folders the cell wrote, created, moved or removed: what exists now and was
        written, and what existed before and was changed (a scratch file made and removed
        within the cell is neither)."""
        return [path for path, before in self._written.items() if before is not None or os.path.lexists(path)]

    @property
    def written_before(self) -> dict[str, Node | None]:
        """The paths the audit hook saw written, with what was there before."""
        return dict(self._written)

    def note_file(self, path: Any) -> None:
        kept = self._keep(path)
        if kept is not None and kept not in self.files:
            try:
                st = os.stat(kept)
                self.files[kept] = (st.st_size, st.st_mtime_ns)
            except OSError:
                self.files[kept] = None

    def note_spawn(self, args: tuple[Any, ...]) -> None:
        self.spawned = True
        words = len(self.command_words)
        for arg in args:
            if isinstance(arg, (str, bytes, os.PathLike)):
                self.command_words.append(os.fsdecode(arg))
            elif isinstance(arg, (list, tuple)):
                self.command_words.extend(os.fsdecode(a) for a in arg if isinstance(a, (str, bytes, os.PathLike)))
        if len(self.command_words) > words:
            self.programs.append(os.path.basename(self.command_words[words]))
            # what it is handed may be read or written by it: take their state before it runs
            self.expect(_words(self.command_words[words + 1 :]))

    def note_dir(self, path: Any) -> None:
        if _in_import_machinery():
            return  # the import system lists every folder on sys.path to find modules
        kept = self._keep(path)
        if kept is not None:
            self.dirs.setdefault(kept, None)

    def __enter__(self) -> Watch:
        global _hook_installed
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
        self._outer = getattr(_state, "watch", None)
        _state.watch = self
        _active.add(self)
        self._environ_class = type(os.environ)
        if isinstance(os.environ, os._Environ):
            recording = _recording_environ(self._environ_class)
            try:
                os.environ.__class__ = recording
            except TypeError:
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        _state.watch = self._outer
        _active.discard(self)
        try:
            os.environ.__class__ = self._environ_class
        except TypeError:
            pass


def _words(texts: Iterable[str]) -> list[str]:
    """The words of command lines (``cat a.txt > b.txt`` -> ``cat``, ``a.txt``, ``b.txt``)."""
    import shlex

    words: list[str] = []
    for text in texts:
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()
        words.extend(p.lstrip(">") for p in parts if p and not p.startswith("-"))
    return [w for w in words if w]


def command_words(commands: Iterable[str]) -> list[str]:
    """The words of shell command lines that may name files (not the programs)."""
    words: list[str] = []
    for text in commands:
        words.extend(_words([text])[1:])
    return words


@contextlib.contextmanager
def unwatched() -> Iterator[None]:
    """What runs inside is nbcache's own doing, not the cell's (importing an adapter, say)."""
    outer = getattr(_state, "watch", None)
    _state.watch = None
    try:
        yield
    finally:
        _state.watch = outer


def current() -> Watch | None:
    """The watch active on this thread (None: no cell is being watched): for library adapters."""
    return getattr(_state, "watch", None)


def note_read(path: Any) -> None:
    """A library is about to read ``path`` (a file, a folder, a glob) in native code."""
    watch = getattr(_state, "watch", None)
    if watch is not None:
        watch.note_path(path, read=True)


def note_write(path: Any, reads: bool = False) -> None:
    """A library is about to write ``path`` in native code (``reads``: and may read it first)."""
    watch = getattr(_state, "watch", None)
    if watch is not None:
        watch.note_path(path) if reads else watch.note_write(path)


def note_text(text: Any) -> None:
    """A library is about to run ``text`` (SQL): the paths and globs quoted in it are read or written."""
    watch = getattr(_state, "watch", None)
    if watch is not None and isinstance(text, str):
        from .paths import in_text

        for path in in_text(text):
            watch.note_path(path)


@functools.lru_cache(maxsize=None)
def _recording_environ(base: type) -> type:
    """The subclass of ``os.environ``'s class that notes reads (made once: on every cell's path)."""
    def note(key: Any) -> None:
        watch = getattr(_state, "watch", None)
        if watch is not None and isinstance(key, str):
            watch.env.setdefault(key, None)

    class RecordingEnviron(base):
        def __getitem__(self, key: Any) -> Any:
            note(key)
            return super().__getitem__(key)

        def __contains__(self, key: Any) -> bool:
            note(key)
            return super().__contains__(key)

    return RecordingEnviron


# -- fingerprints of what was read ----------------------------------------------------------------
@dataclass(frozen=True)
class FileStamp:
    size: int
    mtime_ns: int
    digest: str

    def to_json(self) -> list[Any]:
        return [self.size, self.mtime_ns, self.digest]


_hash_file = file_digest


def _stamp(path: str) -> list[Any] | None:
    """[size, mtime_ns, digest] of a file, or None when it does not exist (also a fact)."""
    try:
        st = os.stat(path)
        if not os.path.isfile(path):
            return None
        return FileStamp(st.st_size, st.st_mtime_ns, _hash_file(path)).to_json()
    except OSError:
        return None


def _listing(path: str) -> str | None:
    try:
        return xxhash.xxh3_128_hexdigest("\0".join(sorted(os.listdir(path))).encode("utf-8", "surrogateescape"))
    except OSError:
        return None


def _environment_digest(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    stable = sorted((k, v) for k, v in environ.items() if not k.startswith(_VOLATILE_ENV))
    return xxhash.xxh3_128_hexdigest("\0".join(f"{k}={v}" for k, v in stable).encode("utf-8", "surrogateescape"))


def _command_paths(words: Iterable[str]) -> tuple[list[str], list[str]]:
    """Words of command lines that name existing files or folders (``cat data.txt``)."""
    import shlex

    files, dirs = [], []
    for text in words:
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()
        for part in parts:
            if not part or part.startswith("-") or len(part) > 4096:
                continue
            path = os.path.abspath(os.path.expanduser(part))
            if os.path.isfile(path):
                files.append(path)
            elif os.path.isdir(path) and path not in ("/", os.path.expanduser("~")):
                dirs.append(path)
    return files, dirs


def record_reads(
    watch: Watch, commands: Iterable[str] = (), environ: Mapping[str, str] | None = None, settled: Settled | None = None
) -> dict[str, Any]:
    """What the watch saw, with fingerprints taken now (after the cell ran).

    Environment variables are inputs as they were before the cell (``environ``; default: now): a
    cell (or a library it imports, like scikit-learn's ``KMP_INIT_AT_FORK``) that sets a variable
    and reads it back depends on its value before, and a hit sets it again.

    When the cell started processes, what they read is invisible to the audit hook: the entry
    then depends on the whole environment (which processes inherit) and on every file or folder
    named on their command lines.
    """
    environ = os.environ if environ is None else environ
    files, dirs = list(watch.files), list(watch.dirs)
    reads: dict[str, Any] = {}
    outputs = {change.path for change in settled.changes} if settled is not None else set()
    if watch.spawned:
        more_files, more_dirs = _command_paths([*commands, *watch.command_words])
        more_files = [f for f in more_files if f not in outputs]  # what the commands wrote: outputs
        more_dirs = [d for d in more_dirs if d not in outputs]
        files.extend(f for f in more_files if watch._keep(f))
        dirs.extend(d for d in more_dirs if watch._keep(d))
        reads["environ"] = _environment_digest(environ)
    reads["files"] = {path: _stamp(path) for path in dict.fromkeys(files)}
    reads["dirs"] = {path: _listing(path) for path in dict.fromkeys(dirs)}
    if settled is not None:  # what the cell named (see nbcache.key.touched): stamped before it ran
        reads["files"].update(settled.files)
        if settled.trees:
            reads["trees"] = settled.trees
        if settled.globs:
            reads["globs"] = settled.globs
    reads["env"] = {name: environ.get(name) for name in watch.env if name not in _SET_BY_LIBRARIES}
    return reads


def check_reads(reads: Mapping[str, Any]) -> list[str]:
    """What differs now from the recorded reads: a list of short descriptions (empty = valid)."""
    changed: list[str] = []
    for path, stamp in (reads.get("files") or {}).items():
        if stamp is None:  # not a file when read (gone, or a folder opened by os.open)
            if os.path.isfile(path):
                changed.append(f"file {path} now exists")
            continue
        size, mtime_ns, digest = stamp
        try:
            st = os.stat(path)
        except OSError:
            changed.append(f"file {path} is gone")
            continue
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            continue  # the fast path: unchanged size and modification time
        try:
            same = st.st_size == size and _hash_file(path) == digest
        except OSError:
            same = False
        if not same:
            changed.append(f"file {path} changed")
    for path, listing in (reads.get("dirs") or {}).items():
        if _listing(path) != listing:
            changed.append(f"folder {path} changed")
    if reads.get("trees"):
        changed.extend(check_trees(reads["trees"]))
    if reads.get("globs"):
        changed.extend(check_globs(reads["globs"]))
    for name, value in (reads.get("env") or {}).items():
        if os.environ.get(name) != value:
            changed.append(f"environment variable {name} changed")
    if "environ" in reads and _environment_digest() != reads["environ"]:
        changed.append("the environment changed (the cell runs shell commands, which see all of it)")
    return list(dict.fromkeys(changed))  # a file in a folder read whole is said once


def paths_digest(paths: Iterable[str]) -> dict[str, str]:
    """Content digests of files and folders named with ``--deps`` (folders: every file below)."""
    digests: dict[str, str] = {}
    for raw in paths:
        path = os.path.abspath(os.path.expanduser(raw))
        if os.path.isfile(path):
            digests[raw] = _hash_file(path)
        elif os.path.isdir(path):
            hasher = xxhash.xxh3_128()
            for folder, dirs, files in sorted(os.walk(path)):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(folder, name)
                    hasher.update(os.path.relpath(full, path).encode() + b"\0")
                    try:
                        hasher.update(_hash_file(full).encode())
                    except OSError:
                        hasher.update(b"<unreadable>")
            digests[raw] = hasher.hexdigest()
        else:
            digests[raw] = "missing"
    return digests
