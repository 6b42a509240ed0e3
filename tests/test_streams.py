"""Stream order: the sends a buffering kernel makes from a run's writes, and the recorder that uses it."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from nbcache.run.capture import Recorder
from nbcache.run.streams import StreamOrder


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sends(script: list[tuple[Any, ...]], interval: float | None = 0.2) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    clock = Clock()
    order = StreamOrder(lambda name, text: out.append((name, text)), clock)
    for step in script:
        if step[0] == "at":
            clock.now = step[1]
        elif step[0] == "flush":
            order.flush(step[1])
        elif step[0] == "sync":
            order.sync()
        else:
            order.write(step[0], step[1], interval)
    order.sync()
    return out


@pytest.mark.parametrize(
    "script, expected",
    [
        # a moment apart: the kernel sends each stream's buffer when the cell ends, stdout first
        ([("stdout", "o1"), ("stderr", "e1"), ("stdout", "o2")], [("stdout", "o1o2"), ("stderr", "e1")]),
        # a second apart: each buffer goes out 0.2 s after its first write
        ([("stdout", "o1"), ("at", 0.6), ("stderr", "e1"), ("at", 1.2), ("stdout", "o2")], [("stdout", "o1"), ("stderr", "e1"), ("stdout", "o2")]),
        # an explicit flush sends at once
        ([("stdout", "o1"), ("flush", "stdout"), ("stderr", "e1"), ("stdout", "o2")], [("stdout", "o1"), ("stdout", "o2"), ("stderr", "e1")]),
        # a display flushes both, stdout first, even when stderr was written first
        ([("stderr", "e1"), ("stdout", "o1"), ("sync",), ("stderr", "e2")], [("stdout", "o1"), ("stderr", "e1"), ("stderr", "e2")]),
        # timers fire in the order they were set
        ([("stderr", "e1"), ("at", 0.1), ("stdout", "o1"), ("at", 0.5), ("stdout", "o2")], [("stderr", "e1"), ("stdout", "o1"), ("stdout", "o2")]),
    ],
)
def test_the_kernels_sends(script: list[tuple[Any, ...]], expected: list[tuple[str, str]]) -> None:
    assert sends(script) == expected


def test_an_unbuffered_stream_sends_each_write_in_order() -> None:
    assert sends([("stdout", "o1"), ("stderr", "e1"), ("stdout", "o2")], interval=None) == [("stdout", "o1"), ("stderr", "e1"), ("stdout", "o2")]


class BufferedStream:
    """A stream that buffers like ipykernel's (``flush_interval``)."""

    flush_interval = 0.2

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_the_recorder_records_sends_of_buffered_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = BufferedStream(), BufferedStream()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with Recorder() as rec:
        print("o1")
        sys.stderr.write("e1")
        print("o2", flush=True)
        sys.stderr.write("e2")
    assert [(r["name"], r["text"]) for r in rec.records] == [("stdout", "o1\no2\n"), ("stderr", "e1e2")]
    assert out.text == "o1\no2\n" and err.text == "e1e2"  # the user saw everything, live
    assert "write" not in vars(out) and "flush" not in vars(out)  # taps removed
