"""The interpreter's own global state: warnings filters, the decimal context, the locale, the
environment variables and the working directory."""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import os
import sys
import warnings
from typing import Any, Callable, Iterator

import xxhash

from .registry import NOTHING, StateProvider, reads_noted, register

__all__ = ["decoded_environ"]


# -- warnings filters ---------------------------------------------------------------------------
def _filters() -> tuple[Any, ...]:
    return tuple(warnings.filters)


def _filter_text(item: Any) -> str:
    # Patterns by their text, categories by name: the same filters in every kernel.
    def text(part: Any) -> str:
        if isinstance(part, type):
            return f"{part.__module__}.{part.__qualname__}"
        return repr(getattr(part, "pattern", part))

    return "|".join(map(text, item))


# The last digests by what they leave out, with the filters they are of: a cell rarely changes
# the filters, and their texts cost more than the rest of the snapshot (on every cell's path).
_digested: dict[frozenset[str], tuple[tuple[Any, ...], str]] = {}


def _filters_digest(filters: tuple[Any, ...], leave_out: frozenset[str] = frozenset()) -> str:
    known = _digested.get(leave_out)
    # Filters are tuples of patterns and classes: the same objects, the same text.
    if known is not None and len(known[0]) == len(filters) and all(map(operator.is_, known[0], filters)):
        return known[1]
    texts = [t for t in map(_filter_text, filters) if t not in leave_out]
    digest = xxhash.xxh3_128_hexdigest("\0".join(texts).encode())
    if len(_digested) >= 16:
        _digested.clear()
    _digested[leave_out] = (tuple(filters), digest)
    return digest


# Libraries add filters when they are imported (numpy, torch...). The filters a run added are
# left out of what its entry requires: run again in the same kernel, the cell would add them
# again (or its imports find them there already), so their presence before it is no change.
def _filters_required(before: tuple[Any, ...], after: tuple[Any, ...] | None) -> str:
    added = sorted(set(map(_filter_text, after or ())) - set(map(_filter_text, before)))
    return json.dumps({"digest": _filters_digest(before, frozenset(added)), "added": added})


def _filters_met(required: str, now: tuple[Any, ...]) -> bool:
    try:
        spec = json.loads(required)
        return bool(_filters_digest(now, frozenset(spec["added"])) == spec["digest"])
    except (ValueError, KeyError, TypeError):
        return False


def _importing(frame: Any) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


# The runs watching for reads of the filters now (observations nest: a cell run from a cell).
_filter_readers: list[list[bool]] = []


@functools.lru_cache(maxsize=None)
def _watching(base: type, here: str | None) -> type:
    """The subclass of the warnings module's type that notes reads of ``filters`` (made once:
    a class made for every cell cost more than the rest of the observation)."""

    class Watching(base):
        _nbcache_watching = True

        def __getattribute__(self, name: str) -> Any:
            if name == "filters":
                pending = [seen for seen in _filter_readers if not seen[0]]
                if pending:
                    caller = sys._getframe(1)
                    if caller.f_code.co_filename != here and not _importing(caller):
                        for seen in pending:
                            seen[0] = True
            return super().__getattribute__(name)

    return Watching


@contextlib.contextmanager
def _observe_filters() -> Iterator[Callable[[], bool]]:
    """Whether the run issued a warning: only then did the filters decide anything. Issuing one
    reads ``warnings.filters`` through the module's attribute (from C, with the caller's Python
    frame on top), which a subclass of the module's type notes. Reads from warnings.py itself
    (``catch_warnings``, ``simplefilter``) are bookkeeping, and warnings issued while a module
    is being imported happen once per kernel, not each time the cell runs: neither counts."""
    module: Any = sys.modules["warnings"]
    base: Any = type(module)
    watching = base if getattr(base, "_nbcache_watching", False) else _watching(base, getattr(module, "__file__", None))
    seen = [False]
    _filter_readers.append(seen)
    try:
        with reads_noted(module, watching, seen) as read:
            yield read
    finally:
        # by identity: the flags of nested runs are equal lists
        _filter_readers[:] = [other for other in _filter_readers if other is not seen]


def _set_filters(filters: tuple[Any, ...]) -> None:
    live: Any = warnings.filters  # typed as a Sequence; it is the list the interpreter reads
    live[:] = list(filters)
    warnings._filters_mutated()  # type: ignore[attr-defined]


register(
    StateProvider(
        "warnings.filters",
        _filters,
        _set_filters,
        description="the warnings filters",
        digest=_filters_digest,
        requirement=_filters_required,
        satisfied=_filters_met,
        observe=_observe_filters,
        delta=lambda before, after: NOTHING if _filters_digest(before) == _filters_digest(after) else after,
    )
)


# -- decimal ------------------------------------------------------------------------------------
_DECIMAL_FIELDS = ("prec", "rounding", "Emin", "Emax", "capitals", "clamp")


def _decimal_context() -> dict[str, Any]:
    context = sys.modules["decimal"].getcontext()
    state: dict[str, Any] = {name: getattr(context, name) for name in _DECIMAL_FIELDS}
    state["traps"] = tuple(sorted(s.__name__ for s, on in context.traps.items() if on))
    state["flags"] = tuple(sorted(s.__name__ for s, on in context.flags.items() if on))
    return state


def _decimal_digest(state: dict[str, Any]) -> str:
    # Flags record what arithmetic happened; they are restored, but results do not depend on them.
    settings = {k: v for k, v in state.items() if k != "flags"}
    return xxhash.xxh3_128_hexdigest(repr(sorted(settings.items())).encode())


def _set_decimal_context(state: dict[str, Any]) -> None:
    decimal = sys.modules["decimal"]
    context = decimal.getcontext()
    for name in _DECIMAL_FIELDS:
        setattr(context, name, state[name])
    for attr in ("traps", "flags"):
        signals = getattr(context, attr)
        for signal in list(signals):
            signals[signal] = signal.__name__ in state[attr]


register(StateProvider("decimal.context", _decimal_context, _set_decimal_context, module="decimal", description="the decimal context", digest=_decimal_digest))


# -- locale -------------------------------------------------------------------------------------
_CATEGORIES = ("LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY", "LC_MESSAGES")


def _locale() -> tuple[tuple[str, str], ...]:
    locale = sys.modules["locale"]
    return tuple((name, locale.setlocale(getattr(locale, name))) for name in _CATEGORIES if hasattr(locale, name))


def _set_locale(state: tuple[tuple[str, str], ...]) -> None:
    locale = sys.modules["locale"]
    for name, value in state:
        if locale.setlocale(getattr(locale, name)) != value:
            locale.setlocale(getattr(locale, name), value)


register(StateProvider("locale", _locale, _set_locale, module="locale", description="the locale"))


# -- environment variables and working directory ----------------------------------------------
def _environ() -> dict[Any, Any]:
    """The environment as the OS gave it: on POSIX ``os.environ``'s own bytes, copied without
    decoding every variable (which costs about 0.1 ms a cell); see :func:`decoded_environ`."""
    data = getattr(os.environ, "_data", None)
    return dict(data) if isinstance(data, dict) else dict(os.environ)


def _text(value: Any) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def decoded_environ(captured: dict[Any, Any]) -> dict[str, str]:
    """A captured environment as ``os.environ`` shows it."""
    return {_text(k): _text(v) for k, v in captured.items()}


def _environ_delta(before: dict[Any, Any], after: dict[Any, Any]) -> Any:
    changed: dict[str, str | None] = {_text(k): _text(v) for k, v in after.items() if before.get(k) != v}
    changed.update({_text(k): None for k in before if k not in after})
    return changed or NOTHING


def _set_environ(changed: dict[str, str | None]) -> None:
    for key, value in changed.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


register(StateProvider("environ", _environ, _set_environ, description="environment variables", role="ambient", delta=_environ_delta))
register(
    StateProvider(
        "cwd",
        os.getcwd,
        os.chdir,
        description="the working directory",
        role="ambient",
        # A move relative to where the cell started, as `os.chdir("sub")` is.
        delta=lambda before, after: NOTHING if before == after else os.path.relpath(after, before),
    )
)
