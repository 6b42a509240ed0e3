"""Which code a module stands for: installed libraries by version, working-tree modules by source.

A module installed in site-packages (or the standard library) changes when its version changes,
so its name and version are its digest. A module from the working tree (``helpers.py`` next to
the notebook) changes whenever its source does, and so does any working-tree module it imports:
its digest covers its source and, transitively, theirs. Editing ``utils.py`` that ``helpers.py``
imports invalidates every cell that uses ``helpers``.

A source edited after the module was imported is only the new code once the kernel reloaded it
(``importlib.reload``, ``%autoreload``): until then the cell would run the old code, and a result
keyed on the new source would be wrong, so keying raises :class:`StaleModuleError`. A reload is
seen in the loaded functions and classes (new objects, or new code objects patched into the old
ones) or reported by a registered :class:`Reloader` (``%autoreload`` re-running a changed
constant leaves every function as it was).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import os
import sys
import sysconfig
import types
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

import xxhash

from ..errors import StaleModuleError

__all__ = [
    "Reloader",
    "is_library_module",
    "is_library_path",
    "module_digest",
    "module_version",
    "note_loaded",
    "register_reloader",
    "reloading",
    "unregister_reloader",
]


@functools.lru_cache(maxsize=None)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    roots.update({sys.prefix, sys.base_prefix, sys.exec_prefix})
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots if r))


def is_library_path(path: str) -> bool:
    return os.path.realpath(path).startswith(_library_roots())


@functools.lru_cache(maxsize=4096)
def is_library_module(name: str | None) -> bool:
    """True for installed and standard modules, False for ``__main__`` and working-tree code."""
    if not name or name == "__main__":
        return False
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if module is None:
        path = _origin(name)
    if path is None:
        # Built-in and namespace modules: the interpreter's own, or installed.
        return True
    return is_library_path(path)


@functools.lru_cache(maxsize=4096)
def module_version(name: str) -> str:
    """The installed version of the distribution a module belongs to ('' when unknown)."""
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return "python-" + sys.version.split()[0]
    module = sys.modules.get(top)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:  # most distributions are named like their module: one metadata lookup, not a scan of all
        return importlib.metadata.version(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    for dist in importlib.metadata.packages_distributions().get(top, ()):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def _find_spec(name: str) -> object | None:
    """The import spec of ``name`` without importing it or its parent packages."""
    from importlib.machinery import PathFinder

    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError, AttributeError):
        return None
    for depth in range(1, len(parts)):
        locations = getattr(spec, "submodule_search_locations", None)
        if spec is None or not locations:
            return None
        spec = PathFinder.find_spec(".".join(parts[: depth + 1]), list(locations))
    return spec


def _origin(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    spec = _find_spec(name)
    origin = getattr(spec, "origin", None)
    if origin in (None, "built-in", "frozen", "namespace"):
        return None
    return str(origin)


def module_digest(name: str) -> str:
    """A digest of what importing ``name`` runs: a version, or working-tree sources.

    ``missing`` when the module cannot be found (the cell will fail to import it, or creates it).
    """
    if name.partition(".")[0] in sys.builtin_module_names:
        return "builtin"
    origin = _origin(name)
    if origin is None:
        return f"lib:{module_version(name)}" if (name in sys.modules or _spec_exists(name)) else "missing"
    if is_library_path(origin):
        return f"lib:{module_version(name)}"
    closure = _local_closure(name, origin)
    hasher = xxhash.xxh3_128()
    files: dict[str, str] = {}
    for path in sorted(closure.values()):
        hasher.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as fh:
                content = fh.read()
        except OSError:
            content = b"<unreadable>"
        hasher.update(content)
        files[path] = xxhash.xxh3_64_hexdigest(content)
    digest = f"src:{hasher.hexdigest()}"
    _check_loaded(name, digest, closure, files)
    return digest


# Set while keying a cell that reloads modules itself (importlib.reload): it runs the new code.
_cell_reloads = False


class reloading:
    """Context manager: key a cell that calls ``reload`` (no staleness check for loaded modules)."""

    def __init__(self, active: bool):
        self.active = active

    def __enter__(self) -> None:
        global _cell_reloads
        self._outer, _cell_reloads = _cell_reloads, self.active or _cell_reloads

    def __exit__(self, *exc: object) -> None:
        global _cell_reloads
        _cell_reloads = self._outer


class Reloader(Protocol):
    """Something in the kernel that reloads edited modules before cells run (IPython's
    ``%autoreload``). The jupyter layer registers one with :func:`register_reloader`."""

    def reconciled(self, name: str) -> float | None:
        """The source mtime the reloader last brought module ``name`` up to (None: it does not
        track the module, or its last reload failed)."""

    def remedy(self, names: list[str]) -> str:
        """What the user should do to load the current code of these modules, in their setup."""


_reloaders: list[Reloader] = []


def register_reloader(reloader: Reloader) -> None:
    if reloader not in _reloaders:
        _reloaders.append(reloader)


def unregister_reloader(reloader: Reloader) -> None:
    if reloader in _reloaders:
        _reloaders.remove(reloader)


@dataclass(frozen=True)
class _Loaded:
    """What nbcache knows of the code the kernel runs for one working-tree module (and the
    working-tree modules it imports)."""

    digest: str
    """The digest of the sources the loaded code was made from (``<older sources>``: not these)."""
    files: dict[str, str]
    """Source file -> its content digest then, to name the modules that changed since."""
    code: frozenset[int]
    """Identities of the module's functions and classes and of their code objects: a reload
    (``importlib.reload``, ``%autoreload``'s in-place patching) changes some of them."""
    reconciled: tuple[float | None, ...]
    """What the registered reloaders said of each module of the closure (see :class:`Reloader`)."""


# For each working-tree module the kernel has loaded: what its code was made from.
_loaded: dict[str, _Loaded] = {}


def note_loaded(names: Iterable[str]) -> None:
    """Record what the kernel loaded, right after a cell imported these modules."""
    for name in names:
        if name in sys.modules and not is_library_module(name):
            try:
                module_digest(name)
            except StaleModuleError:
                pass


def _compiled_from_current_source(closure: dict[str, str]) -> bool:
    """Whether each loaded module's bytecode cache was compiled from its source as it is now.

    A ``.pyc`` header records the source's mtime and size; when the source differs, the module
    was (most likely) imported before the source was edited."""
    import importlib.util

    for mod_name, path in closure.items():
        if mod_name not in sys.modules:
            continue
        try:
            with open(importlib.util.cache_from_source(path), "rb") as fh:
                header = fh.read(16)
            st = os.stat(path)
        except (OSError, ValueError, NotImplementedError):
            continue  # no bytecode cache: nothing to compare with
        flags = int.from_bytes(header[4:8], "little")
        if flags == 0 and len(header) == 16:
            mtime, size = int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")
            if (mtime, size) != (int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF):
                return False
    return True


def _functions_of(value: object) -> Iterator[types.FunctionType]:
    if isinstance(value, types.FunctionType):
        yield value
    elif isinstance(value, (staticmethod, classmethod)):
        yield from _functions_of(value.__func__)
    elif isinstance(value, property):
        for accessor in (value.fget, value.fset, value.fdel):
            yield from _functions_of(accessor)


def _code_ids(names: Iterable[str]) -> frozenset[int]:
    """Identities of the loaded functions and classes, of their methods, and of the code objects
    they run: ``importlib.reload`` makes new functions and classes, ``%autoreload`` (IPython 9's
    in-place patching) gives the old ones new code objects."""
    ids: set[int] = set()
    for mod_name in names:
        module = sys.modules.get(mod_name)
        if module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type):
                ids.add(id(value))
                for attr in list(vars(value).values()):
                    ids.update(id(f.__code__) for f in _functions_of(attr))
            for func in _functions_of(value):
                ids.update((id(func), id(func.__code__)))
    return frozenset(ids)


def _reconciled(closure: dict[str, str]) -> tuple[float | None, ...]:
    if not _reloaders:
        return ()
    out: list[float | None] = []
    for mod_name in sorted(closure):
        marks = [reloader.reconciled(mod_name) for reloader in _reloaders]
        out.append(max((m for m in marks if m is not None), default=None))
    return tuple(out)


def _reloader_caught_up(before: tuple[float | None, ...], now: tuple[float | None, ...], closure: dict[str, str]) -> bool:
    """Whether a registered reloader reloaded the closure since nbcache last looked, up to the
    sources as they are now. A first mark (None before) proves nothing: ``%load_ext autoreload``
    marks every loaded module as current without reloading it."""
    if not now or before == now or len(before) != len(now) or None in before or None in now:
        return False
    for mark, mod_name in zip(now, sorted(closure)):
        try:
            if mark != os.stat(closure[mod_name]).st_mtime:
                return False
        except OSError:
            return False
    return True


def _check_loaded(name: str, digest: str, closure: dict[str, str], files: dict[str, str]) -> None:
    """Raise StaleModuleError when the sources changed but the loaded code did not (no reload):
    the cell would run the old code, so a result keyed on the new sources would be wrong."""
    if name not in sys.modules or _cell_reloads:
        return
    code, reconciled = _code_ids(closure), _reconciled(closure)
    seen = _loaded.get(name)
    if seen is None and not _compiled_from_current_source(closure):
        seen = _Loaded("<older sources>", {}, code, reconciled)  # imported before an edit nbcache did not witness
    if seen is None or seen.code != code or _reloader_caught_up(seen.reconciled, reconciled, closure):
        _loaded[name] = _Loaded(digest, files, code, reconciled)  # first sight, or reloaded since
        return
    if seen.digest == digest:
        if seen.reconciled != reconciled:
            _loaded[name] = _Loaded(digest, files, code, reconciled)
        return
    _loaded[name] = _Loaded(seen.digest, seen.files, code, reconciled)
    changed = [m for m, path in sorted(closure.items()) if seen.files.get(path) != files.get(path)] or [name]
    remedy = next((r.remedy(changed) for r in reversed(_reloaders)), None) or (
        " or ".join(f"importlib.reload({m})" for m in changed) + " loads the new code"
    )
    which = f"module {changed[0]}" if len(changed) == 1 else "modules " + ", ".join(changed)
    raise StaleModuleError(
        f"{which} changed on disk after it was imported, and the kernel still runs the old code "
        f"({remedy}), so the cell runs uncached",
        name=changed[0],
        type_name="module",
    )


def _spec_exists(name: str) -> bool:
    return _find_spec(name) is not None


def _local_closure(name: str, origin: str) -> dict[str, str]:
    """Module name -> source file, for a working-tree module and the working-tree modules it imports."""
    seen: dict[str, str] = {}
    stack = [(name, origin)]
    while stack:
        mod_name, path = stack.pop()
        if path in seen.values() or not path.endswith(".py"):
            continue
        seen[mod_name] = path
        package = mod_name if os.path.basename(path) == "__init__.py" else mod_name.rpartition(".")[0]
        for imported in _imports_of(path, package):
            sub_origin = _origin(imported)
            if sub_origin and not is_library_path(sub_origin):
                stack.append((imported, sub_origin))
    return seen


def _imports_of(path: str, package: str) -> set[str]:
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module and prefix else (node.module or prefix)
            else:
                module = node.module or ""
            if module:
                names.add(module)
                # "from pkg import sub" may name a submodule
                names.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
    return {n for n in names if n and not n.startswith(".")}
