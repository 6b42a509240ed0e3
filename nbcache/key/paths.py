"""Paths a cell names: where native code may read or write files that no audit hook sees.

``pd.read_parquet("d.parquet")``, ``pl.scan_csv("data/*.csv")`` and
``duckdb.sql("select * from 'q.parquet'")`` read in C++ or Rust. What the cell names is what it
can reach, so before a miss runs, nbcache takes the state of every path named by:

- the cell's string constants (``"d.parquet"``, and the constant parts of f-strings:
  ``f"data/{name}.parquet"`` names the folder ``data/``), and those of the notebook's functions
  and classes that it reaches;
- its inputs: strings and ``os.PathLike`` values, also inside lists, tuples, sets and dicts (up to
  :data:`VALUE_LIMIT` strings per cell);
- the quoted strings inside SQL text (``'data/*.parquet'``, ``read_csv_auto('x.csv')``);
- the library adapters (:mod:`nbcache.key.adapters`), with the paths handed to readers and
  writers at run time.

A string names a path when a file or folder of that name exists, or when it looks like a file
name (no spaces, an extension or a ``/``: the file a cell is about to create), or when it is a
glob with such a part (``*.csv``: every file it matches, and the set of matches). Whatever
exists before and is unchanged after the run is an input; whatever changed is an output (see
:mod:`nbcache.run.files`).
"""

from __future__ import annotations

import ast
import os
import re
import types
from typing import Any, Iterable, Iterator

__all__ = ["VALUE_LIMIT", "code_strings", "in_text", "named_paths", "source_strings", "value_strings", "with_quoted"]

VALUE_LIMIT = 100_000
"""Strings looked at among a cell's input values (a list of a million tokens is no list of paths)."""

_QUOTED = re.compile(r"'([^'\n]{1,4096})'|\"([^\"\n]{1,4096})\"")
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")
_SPACE = re.compile(r"\s")
_GLOB = frozenset("*?[")


def looks_like_path(text: str) -> bool:
    """Whether ``text`` could be a file about to be created (``out.parquet``, ``runs/a``)."""
    if not text or len(text) > 4096 or "://" in text or _SPACE.search(text):
        return False
    return "/" in text.rstrip("/") or bool(_EXTENSION.search(text))


_FEW = 64
"""Up to this many strings, a stat each costs less than listing the working folder (which may
hold 100,000 files); beyond, one listing per folder costs less than a stat per string."""


def _exists(text: str) -> bool:
    try:
        return 0 < len(text) <= 4096 and "\0" not in text and os.path.lexists(text)
    except (OSError, ValueError):
        return False


class _Listings:
    """Whether names exist, by one listing per folder (a stat per string costs too much), or,
    for ``few`` names, by a stat each."""

    def __init__(self, few: bool = False) -> None:
        self.few = few
        self._names: dict[str, frozenset[str]] = {}

    def names(self, folder: str) -> frozenset[str]:
        names = self._names.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(folder or "."))
            except OSError:
                names = frozenset()
            self._names[folder] = names
        return names

    def exists(self, path: str) -> bool:
        if self.few:
            return _exists(path)
        folder, name = os.path.split(path.rstrip("/") or path)
        if not name or name in (".", ".."):
            return os.path.exists(path)
        return name in self.names(folder)


def named_paths(strings: Iterable[str], absent_limit: int | None = None) -> Iterator[str]:
    """The strings among ``strings`` that name a path or a glob (see the module docstring), in
    order; with ``absent_limit``, at most that many that name nothing yet (files the cell may
    create). Set operations first: a cell's inputs may hold 10,000 strings, and a Python step
    per string costs more than the whole budget."""
    ordered = dict.fromkeys(strings)
    if not ordered:
        return iter(())
    listings = _Listings(few=len(ordered) <= _FEW)
    here = listings.names("") if not listings.few else frozenset(t for t in ordered if type(t) is str and _exists(t))
    chosen = set(ordered.keys() & here)  # names in the working folder
    absent = 0
    for text in ordered:
        if text in chosen or type(text) is not str:
            continue
        if "/" not in text and "." not in text and "~" not in text and "*" not in text and "?" not in text and "[" not in text:
            continue  # a word that names nothing here
        if not text or len(text) > 4096 or "\n" in text or "\0" in text:
            continue
        if "*" in text or "?" in text or "[" in text:
            if not _SPACE.search(text) and ("/" in text or "." in text.replace("*", "")) and text.strip("*?[]./"):
                chosen.add(text)
            continue
        if "/" in text or "~" in text:
            expanded = os.path.expanduser(text) if text.startswith("~") else text
            if listings.exists(expanded):
                chosen.add(text)
                continue
        if (absent_limit is None or absent < absent_limit) and looks_like_path(text):
            absent += 1
            chosen.add(text)
    return (text for text in ordered if text in chosen)


def in_text(text: str) -> list[str]:
    """The quoted strings of SQL (or any) text that name paths or globs."""
    if "'" not in text and '"' not in text:
        return []
    return list(named_paths(a or b for a, b in _QUOTED.findall(text)))


def source_strings(python: str) -> list[str]:
    """The string constants of a cell's Python source, with the constant parts of f-strings and
    the paths quoted inside any of them (SQL)."""
    from ..errors import AnalysisError
    from .analysis import analyze  # (analysis imports this module)

    try:
        return with_quoted(analyze(python).strings)
    except (AnalysisError, ValueError):
        return []


def with_quoted(strings: Iterable[str]) -> list[str]:
    """``strings``, each followed by the paths quoted inside it (SQL)."""
    found: list[str] = []
    for text in strings:
        found.append(text)
        found.extend(in_text(text))
    return found


def fstring_folder(item: ast.JoinedStr) -> list[str]:  # (also used by key.analysis)
    """``f"data/{x}.parquet"`` -> ``data/``: the folder a formatted path lies in, when it has one."""
    first = item.values[0] if item.values else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str) and "/" in first.value:
        return [first.value[: first.value.rindex("/") + 1]]
    return []


def code_strings(objects: Iterable[Any]) -> list[str]:
    """The string constants of the notebook's functions and classes among ``objects``."""
    found: list[str] = []
    seen: set[int] = set()

    def code(co: types.CodeType) -> None:
        if id(co) in seen:
            return
        seen.add(id(co))
        for const in co.co_consts:
            if isinstance(const, str):
                found.append(const)
                found.extend(in_text(const))
            elif isinstance(const, types.CodeType):
                code(const)

    for obj in objects:
        if isinstance(obj, types.FunctionType):
            code(obj.__code__)
        elif isinstance(obj, type) and obj.__module__ == "__main__":
            for attr in vars(obj).values():
                func = getattr(attr, "__func__", attr)
                if isinstance(func, types.FunctionType):
                    code(func.__code__)
    return found


def value_strings(values: Iterable[Any], limit: int = VALUE_LIMIT) -> list[str]:
    """Strings and ``os.PathLike`` paths among ``values`` and inside their lists, tuples, sets
    and dicts (keys and values), up to ``limit`` of them."""
    found: list[str] = []
    stack = list(values)
    budget = limit
    while stack and budget > 0:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            found.append(value)
            budget -= 1
        elif kind in (list, tuple, set, frozenset):
            budget -= 1
            stack.extend(value if len(value) <= budget else list(value)[:budget])
        elif kind is dict:
            budget -= 1
            items = list(value.items())[:budget]
            stack.extend(k for k, _ in items)
            stack.extend(v for _, v in items)
        elif isinstance(value, os.PathLike):
            try:
                path = os.fspath(value)
            except Exception:  # noqa: BLE001 - a broken __fspath__ is no path
                continue
            if isinstance(path, str):
                found.append(path)
                budget -= 1
    return found
