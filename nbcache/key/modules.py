"""Which code a module stands for: installed libraries by version, working-tree modules by source.

A module installed in site-packages (or the standard library) changes when its version changes,
so its name and version are its digest. A module from the working tree (``helpers.py`` next to
the notebook) changes whenever its source does, and so does any working-tree module it imports:
its digest covers its source and, transitively, theirs. Editing ``utils.py`` that ``helpers.py``
imports invalidates every cell that uses ``helpers``.
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
from typing import Iterable

import xxhash

from ..errors import StaleModuleError

__all__ = ["is_library_module", "is_library_path", "module_digest", "module_version", "note_loaded", "reloading"]


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
    for path in sorted(closure.values()):
        hasher.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as fh:
                hasher.update(fh.read())
        except OSError:
            hasher.update(b"<unreadable>")
    digest = f"src:{hasher.hexdigest()}"
    _check_loaded(name, digest, closure)
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


# For each working-tree module the kernel has loaded: the digest of its sources when nbcache first
# saw it loaded, and the identities of the functions and classes loaded from them then.
_loaded: dict[str, tuple[str, frozenset[int]]] = {}


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


def _code_ids(names: Iterable[str]) -> frozenset[int]:
    ids: set[int] = set()
    for mod_name in names:
        module = sys.modules.get(mod_name)
        if module is not None:
            ids.update(id(v) for v in vars(module).values() if isinstance(v, (type, types.FunctionType)))
    return frozenset(ids)


def _check_loaded(name: str, digest: str, closure: dict[str, str]) -> None:
    """Raise StaleModuleError when the sources changed but the loaded code did not (no reload):
    the cell would run the old code, so a result keyed on the new sources would be wrong."""
    if name not in sys.modules or _cell_reloads:
        return
    ids = _code_ids(closure)
    seen = _loaded.get(name)
    if seen is None and not _compiled_from_current_source(closure):
        seen = ("<older sources>", ids)  # imported before an edit nbcache did not witness
    if seen is None or seen[1] != ids:  # first sight, or reloaded (new function objects) since
        _loaded[name] = (digest, ids)
    elif seen[0] != digest:
        raise StaleModuleError(
            f"module {name} changed on disk after it was imported, and the kernel still runs the old code "
            f"(importlib.reload({name}) or %autoreload 2 loads the new one), so the cell runs uncached",
            name=name,
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
