"""``nbcache.units``: the one size formatter and the one duration formatter (the CLI, the
dashboard, the notes, and the JupyterLab panel's ports of them in labextension/src/helpers.ts,
whose unit tests use the same cases)."""

from __future__ import annotations

import pytest

from nbcache.units import format_duration, format_size, size_scale

CASES = [
    (0, "0 B"),
    (999, "999 B"),
    (1000, "1.0 kB"),
    (2048, "2.0 kB"),
    (50 * 1000 * 1000, "50.0 MB"),
    (1.5e9, "1.5 GB"),
    (1250, "1.3 kB"),  # an exact half: rounded up, on both sides
    (1050, "1.1 kB"),
    (2250, "2.3 kB"),
    (1_249_999, "1.2 MB"),
    (5e15, "5000.0 TB"),
]


@pytest.mark.parametrize(("size", "text"), CASES)
def test_format_size(size: float, text: str) -> None:
    assert format_size(size) == text


def test_size_scale_matches_format_size() -> None:
    # The dashboard's disk chart labels its axis with size_scale's unit: it must be format_size's.
    for size, text in CASES:
        scale, unit = size_scale(size)
        assert text.endswith(" " + unit) and (unit == "B") == (scale == 1)


# The same cases as formatSeconds in labextension/test/helpers.test.ts.
DURATIONS = [
    (0, "0 s"),
    (-1, "0 s"),
    (float("nan"), "0 s"),
    (0.0000042, "4 µs"),
    (0.0042, "4 ms"),
    (2.54, "2.5 s"),
    (150.4, "150 s"),
    (7200, "2.0 h"),
]


@pytest.mark.parametrize(("seconds", "text"), DURATIONS)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
