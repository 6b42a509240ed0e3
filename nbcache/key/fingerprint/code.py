"""Code: functions, code objects, classes and modules, by what they do rather than where they are.

A function hashes its code (bytecode, constants, names, defaults, closure) plus the globals the
code refers to, at their current values and transitively. A class hashes its bases, metaclass and
members; a module from the working tree its source. Line numbers and file names are left out: they
differ between kernels. Code from installed libraries hashes as module, name and the library's
version instead, which is both cheaper and what changes when the library changes.

Each digest is computed once per :class:`~.core.Fingerprinter` (``code_digest``), and stands for
the object wherever it appears: in a walk, and inside another object's pickle.
"""

from __future__ import annotations

import types
from typing import Any

from ...errors import FingerprintError
from ..modules import is_library_module, module_digest, module_version
from .core import _CLASS, _CODE, _FUNC, _LIBOBJ, _MODULE, _NONE, Fingerprinter, _qualname, _Walk

__all__: list[str] = []  # encoders registered with the registry; nothing to import from here


def _code_like_digest(fp: Fingerprinter, obj: Any) -> bytes:
    if isinstance(obj, types.ModuleType):
        return fp.code_digest(obj, lambda w: _module(w, obj))
    module = getattr(obj, "__module__", None)
    if isinstance(obj, types.BuiltinFunctionType) or is_library_module(module):
        # Installed code: its identity and the library's version stand for its behaviour.
        return fp.code_digest(obj, lambda w: _library_object(w, obj, module or "builtins"))
    if isinstance(obj, type):
        return fp.code_digest(obj, lambda w: _class(w, obj))
    return fp.code_digest(obj, lambda w: _function(w, obj))


def _library_object(w: _Walk, obj: Any, module: str) -> None:
    w.tag(_LIBOBJ)
    w.text(_qualname(obj))
    w.text(module_version(module))


def _module(w: _Walk, module: types.ModuleType) -> None:
    w.tag(_MODULE)
    w.text(module.__name__)
    # Installed: its version; working tree: its source and the sources it imports.
    w.text(module_digest(module.__name__) if getattr(module, "__file__", None) else module_version(module.__name__))


def _function(w: _Walk, fn: types.FunctionType) -> None:
    w.tag(_FUNC)
    w.text(fn.__qualname__)
    _code(w, fn.__code__)
    w.value(fn.__defaults__)
    w.value(fn.__kwdefaults__)
    w.value([c.cell_contents if _cell_filled(c) else _EmptyCell for c in fn.__closure__ or ()])
    w.value(getattr(fn, "__wrapped__", None))
    # The globals the code refers to, at their current values: a helper edited two cells up,
    # or a constant it reads, changes the fingerprint of every function that uses it.
    fn_globals = fn.__globals__
    builtins_ns = fn_globals.get("__builtins__")
    for name in sorted(_code_names(fn.__code__)):
        if name in fn_globals:
            w.text(name)
            w.value(fn_globals[name])
        elif builtins_ns is not None and name not in _builtin_names(builtins_ns):
            w.text(name)
            w.tag(_NONE)


class _EmptyCell:
    """Stands for a closure cell that has no value yet."""


# Where nbcache is installed as a library, this class is encoded by its qualified name: it keeps
# the one it had before the package moved under nbcache.key (see pickled.py's marker).
_EmptyCell.__module__ = "nbcache.fingerprint"


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _builtin_names(builtins_ns: Any) -> Any:
    return builtins_ns if isinstance(builtins_ns, dict) else vars(builtins_ns)


_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME", "DELETE_NAME"})


def _code_names(code: types.CodeType) -> set[str]:
    """Names the code looks up as globals (``co_names`` also holds attribute names: ``x.mean``)."""
    import dis

    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_OPS and isinstance(ins.argval, str)}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _code(w: _Walk, code: types.CodeType) -> None:
    w.tag(_CODE)
    w.blob(code.co_code)
    w.length(code.co_argcount)
    w.length(code.co_posonlyargcount)
    w.length(code.co_kwonlyargcount)
    w.length(code.co_flags)
    w.value(code.co_names)
    w.value(code.co_varnames)
    w.value(code.co_freevars)
    w.value(code.co_cellvars)
    w.length(len(code.co_consts))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code(w, const)
        else:
            w.value(const)


def _class(w: _Walk, cls: type) -> None:
    w.tag(_CLASS)
    w.text(cls.__qualname__)
    w.length(len(cls.__bases__))
    for base in cls.__bases__:
        w.update(_code_like_digest(w.fp, base))
    w.text(type(cls).__qualname__)  # the metaclass
    for name, member in vars(cls).items():
        if name in ("__dict__", "__weakref__", "__module__", "__slotnames__"):
            continue  # __slotnames__: copyreg caches it on the class the first time one is pickled
        w.text(name)
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property):
            member = (member.fget, member.fset, member.fdel)
        try:
            w.value(member)
        except FingerprintError:
            w.text(f"<{type(member).__qualname__}>")  # slot descriptors and the like
