"""Wrappers that note the paths a library is handed before its native code reads or writes them.

A wrapper takes the argument at a position or keyword, and notes it (:func:`~..deps.note_read`,
:func:`~..deps.note_write`, :func:`~..deps.note_text`) when it is a ``str``, ``bytes`` or
``os.PathLike`` (or a list or tuple of them) and no URL (``s3://...``): buffers, open files and
filesystem objects are left alone. Then it calls the library with the arguments unchanged. Noting
never raises, and costs one thread-local lookup when no :class:`~..deps.Watch` is active.

A wrapped function replaces the original under every name given, and in the module it was
defined in (so that it still pickles by reference); wrapping it again returns the same wrapper.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable

from ..deps import current, note_read, note_text, note_write

__all__ = ["MARK", "Note", "argument", "patch", "patch_init", "paths", "reads", "sql", "wrap", "writes"]

MARK = "__nbcache_adapter__"
"""The attribute that marks a wrapper (its value: True)."""

Note = Callable[[tuple[Any, ...], dict[str, Any]], None]
"""Notes the paths among a call's arguments (positional, keyword)."""

_WRAPPERS: dict[int, Callable[..., Any]] = {}  # id of an original -> its wrapper (which keeps it alive)


def paths(value: Any) -> list[Any]:
    """The paths ``value`` names: itself, or the items of a list or tuple, that are paths (not
    URLs, nor text or bytes of a file's content)."""
    items = value if isinstance(value, (list, tuple)) else (value,)
    found = []
    for item in items:
        if isinstance(item, (str, bytes, os.PathLike)):
            text = os.fsdecode(item)  # bytes may be a file's content (polars): such are no path
            if 0 < len(text) <= 4096 and "://" not in text and "\n" not in text and "\0" not in text:
                found.append(item)
    return found


def argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int | None, *names: str) -> Any:
    """The argument given by one of ``names``, or else at ``position`` (None when not given)."""
    for name in names:
        if name in kwargs:
            return kwargs[name]
    if position is not None and position < len(args):
        return args[position]
    return None


def reads(position: int | None, *names: str) -> Note:
    """The argument is read."""

    def note(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for path in paths(argument(args, kwargs, position, *names)):
            note_read(path)

    return note


def writes(position: int | None, *names: str, reads: bool = False) -> Note:
    """The argument is written (``reads``: what it holds may be read first)."""

    def note(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for path in paths(argument(args, kwargs, position, *names)):
            note_write(path, reads=reads)

    return note


def sql(position: int | None, *names: str) -> Note:
    """The argument is SQL text: the paths quoted in it are read or written."""

    def note(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        note_text(argument(args, kwargs, position, *names))

    return note


def wrap(original: Callable[..., Any], note: Note) -> Callable[..., Any]:
    """``original``, noting the paths of its arguments first (a wrapper is returned as it is)."""
    if getattr(original, MARK, False):
        return original
    made = _WRAPPERS.get(id(original))
    if made is not None:
        return made

    @functools.wraps(original)
    def adapter(*args: Any, **kwargs: Any) -> Any:
        if current() is not None:
            try:
                note(args, kwargs)
            except Exception:  # noqa: BLE001 - noting must never change what the call does
                pass
        return original(*args, **kwargs)

    setattr(adapter, MARK, True)
    _WRAPPERS[id(original)] = adapter
    return adapter


def patch(owner: Any, names: str | tuple[str, ...], note: Note) -> bool:
    """Replace each of ``names`` on ``owner`` (a module or class) with a wrapper; False when
    ``owner`` does not allow it. Missing names are skipped."""
    for name in (names,) if isinstance(names, str) else names:
        original = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if not callable(original) or isinstance(original, (staticmethod, classmethod)) or getattr(original, MARK, False):
            continue
        wrapper = wrap(original, note)
        try:
            setattr(owner, name, wrapper)
        except (TypeError, AttributeError):
            return False
        _rehome(original, wrapper)
    return True


def patch_init(cls: type, note: Note) -> bool:
    """Wrap ``cls.__init__`` (``note`` sees ``self`` as the first argument)."""
    return patch(cls, "__init__", note)


def _rehome(original: Any, wrapper: Callable[..., Any]) -> None:
    # pickle finds a function by __module__ and __qualname__: there, too, it must be the wrapper
    qualname = getattr(original, "__qualname__", "")
    home = sys.modules.get(getattr(original, "__module__", None) or "")
    if home is not None and qualname and "." not in qualname and getattr(home, qualname, None) is original:
        try:
            setattr(home, qualname, wrapper)
        except (TypeError, AttributeError):
            pass
