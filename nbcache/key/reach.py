"""What the code a cell runs reaches beyond the names the cell itself reads.

``def add(v): log.append(v)`` then ``%%cache add(5)``: the cell reads ``add`` only, yet it changes
``log``. The globals of the notebook's functions and classes a cell reaches (transitively: the
functions those call, methods of the classes of its inputs, closures, defaults, decorators) are
inputs of the cell like the names it reads: part of the key by value, and, when the run changes
them in place, stored and changed in place again by a hit.

The same holds for working-tree modules: ``helpers.f()`` reading ``helpers.SCALE``, which an
earlier cell set to 2, must not hit an entry made with ``SCALE = 1``. The attributes of
working-tree modules that the cell or the code it reaches reads or assigns (``helpers.SCALE``,
``from helpers import f`` then ``f`` reading ``SCALE``) are keyed by value as well as by the
module's source, and a change the run makes to them is made again on a hit.

Installed libraries are left out: their code is keyed by version, and their global state by the
state providers (:mod:`nbcache.key.state`).
"""

from __future__ import annotations

import dis
import functools
import itertools
import sys
import types
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, TypeGuard

from .modules import is_library_module

__all__ = ["Reached", "reach"]

_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME", "DELETE_NAME"})
_ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR"})
# Elements of an input container looked at for code (a list of callbacks): enough for such lists,
# cheap for a list of 10,000 records.
_CONTAINER_LIMIT = 1000
_CODE = (types.FunctionType, types.MethodType, functools.partial)


@dataclass(frozen=True)
class Reached:
    names: tuple[str, ...]
    """The cell's reads, then the notebook globals the code it reaches reads, in first-seen order."""
    attrs: tuple[tuple[str, str], ...]
    """``(module, attribute)`` of working-tree modules read or assigned by the cell or that code."""


def reach(reads: Iterable[str], attributes: Iterable[tuple[str, str]], namespace: Mapping[str, Any]) -> Reached:
    names: dict[str, None] = dict.fromkeys(reads)
    attrs: dict[tuple[str, str], None] = {}
    walk = _Walk(namespace, names, attrs)
    for name in list(names):
        if name in namespace:
            walk.push(namespace[name])
    for base, attr in sorted(attributes):
        module = namespace.get(base)
        if _local_module(module):
            walk.attribute(module, attr)
    walk.run()
    return Reached(tuple(names), tuple(attrs))


def _local_module(obj: Any) -> TypeGuard[types.ModuleType]:
    return isinstance(obj, types.ModuleType) and bool(getattr(obj, "__file__", None)) and not is_library_module(obj.__name__)


def _library(obj: Any) -> bool:
    return is_library_module(getattr(obj, "__module__", None))


@functools.lru_cache(maxsize=8192)
def _code_refs(code: types.CodeType) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """The global names the code uses, and ``(global, attribute)`` for ``global.attribute``."""
    names: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    previous: Any = None
    for ins in dis.get_instructions(code):
        if ins.opname in _GLOBAL_OPS and isinstance(ins.argval, str):
            names.add(ins.argval)
        elif ins.opname in _ATTR_OPS and previous is not None and previous.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            pairs.add((previous.argval, ins.argval))
        previous = ins
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            inner_names, inner_pairs = _code_refs(const)
            names |= inner_names
            pairs |= inner_pairs
    return frozenset(names), frozenset(pairs)


class _Walk:
    def __init__(self, namespace: Mapping[str, Any], names: dict[str, None], attrs: dict[tuple[str, str], None]):
        self.namespace = namespace
        self.names = names
        self.attrs = attrs
        self.stack: list[Any] = []
        self.seen: set[int] = set()
        self.keep: list[Any] = []  # ids stay unique while the walk lasts

    def push(self, obj: Any) -> None:
        if id(obj) not in self.seen:
            self.seen.add(id(obj))
            self.keep.append(obj)
            self.stack.append(obj)

    def run(self) -> None:
        while self.stack:
            for child in self.children(self.stack.pop()):
                self.push(child)

    def attribute(self, module: types.ModuleType, attr: str) -> None:
        self.attrs.setdefault((module.__name__, attr), None)
        if hasattr(module, attr):
            self.push(getattr(module, attr))

    def children(self, obj: Any) -> Iterator[Any]:
        if isinstance(obj, types.FunctionType):
            if not _library(obj):
                yield from self.function(obj)
        elif isinstance(obj, types.MethodType):
            yield obj.__func__
            if not isinstance(obj.__self__, (type, types.ModuleType)):
                yield type(obj.__self__)
        elif isinstance(obj, functools.partial):
            yield obj.func
            yield from obj.args
            yield from obj.keywords.values()
        elif isinstance(obj, type):
            if not _library(obj):
                yield from self.members(obj)
        elif isinstance(obj, (list, tuple, set, frozenset, dict)):
            values = obj.values() if isinstance(obj, dict) else obj
            kinds: set[type] = set()
            for item in itertools.islice(values, _CONTAINER_LIMIT):
                kind = type(item)
                if kind in _CODE:
                    yield item
                elif kind not in kinds:
                    kinds.add(kind)
                    if not _library(kind):
                        yield kind
        elif not isinstance(obj, types.ModuleType) and not _library(type(obj)):
            yield type(obj)  # an instance of a notebook or working-tree class: its methods run

    def function(self, fn: types.FunctionType) -> Iterator[Any]:
        fn_globals = fn.__globals__
        if fn_globals is self.namespace:
            owner: types.ModuleType | None = None
        else:
            module = sys.modules.get(str(fn_globals.get("__name__")))
            if module is None or getattr(module, "__dict__", None) is not fn_globals or not _local_module(module):
                return  # code exec'd in a globals dict of its own: nothing to follow
            owner = module
        names, pairs = _code_refs(fn.__code__)
        for name in sorted(names):
            if owner is None:
                self.names.setdefault(name, None)
                if name in fn_globals:
                    yield fn_globals[name]
            elif name in fn_globals:
                self.attrs.setdefault((owner.__name__, name), None)
                yield fn_globals[name]
        for base, attr in sorted(pairs):
            module = fn_globals.get(base)
            if _local_module(module):
                self.attribute(module, attr)
        yield from fn.__defaults__ or ()
        yield from (fn.__kwdefaults__ or {}).values()
        for cell in fn.__closure__ or ():
            try:
                yield cell.cell_contents
            except ValueError:  # an empty cell
                continue
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            yield wrapped

    def members(self, cls: type) -> Iterator[Any]:
        for base in cls.__bases__:
            if base is not object:
                yield base
        for member in list(vars(cls).values()):
            if isinstance(member, (staticmethod, classmethod)):
                yield member.__func__
            elif isinstance(member, property):
                yield from (f for f in (member.fget, member.fset, member.fdel) if f is not None)
            elif isinstance(member, (types.FunctionType, functools.partial)):
                yield member
