"""Sizes (``20GB``, ``500MB``), ages (``30d``, ``12h``) and durations as users write and read them."""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["format_duration", "format_size", "parse_age", "parse_size", "size_scale"]

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str | int) -> int:
    """Bytes in ``text``: ``500MB`` and ``20GB`` are powers of 1000, ``1GiB`` of 1024."""
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"nbcache: {text!r} is not a size (write it like 500MB or 20GB)")
    number, unit = match.group(1), (match.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    return int(float(number) * base ** _POWERS[unit[:1] if unit[:1] in _POWERS else ""])


def parse_age(text: str) -> float:
    """Seconds in ``text``: ``30d``, ``12h``, ``90min``, ``45s`` (a bare number is seconds)."""
    match = _AGE.fullmatch(text)
    if not match:
        raise ValueError(f"nbcache: {text!r} is not an age (write it like 30d, 12h or 90min)")
    return float(match.group(1)) * _SECONDS[(match.group(2) or "s").lower()]


_UNITS = ("B", "kB", "MB", "GB", "TB")


def size_scale(n: float) -> tuple[float, str]:
    """The power of 1000 and the unit that :func:`format_size` shows ``n`` bytes in."""
    scale = 1.0
    for unit in _UNITS[:-1]:
        if abs(n) < 1000 * scale:
            return scale, unit
        scale *= 1000
    return scale, _UNITS[-1]


def format_size(n: float) -> str:
    """``n`` bytes as people read them, in powers of 1000 as sizes are written (``10GB``): the
    one size formatter of the CLI, the dashboard and (ported) the JupyterLab panel."""
    scale, unit = size_scale(n)
    if unit == "B":
        return f"{n:.0f} B"
    # Tenths of the exact quotient, halves rounded up: float formatting rounds ties to even and
    # JavaScript's toFixed rounds them up, and the panel's port must print the same text.
    tenths = math.floor(Fraction(abs(n)) * 10 / Fraction(scale) + Fraction(1, 2))
    return f"{'-' if n < 0 else ''}{tenths // 10}.{tenths % 10} {unit}"


def format_duration(seconds: float) -> str:
    """``seconds`` as people read them (``1.2 h``, ``12 s``, ``1.5 s``, ``340 ms``, ``80 µs``;
    ``0 s`` for nothing): the one duration formatter of the notes, the CLI, the dashboard, the
    runner and (ported as ``formatSeconds``) the JupyterLab badges."""
    if not seconds > 0:
        return "0 s"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f} µs"
