"""Store outages: a store problem is told once, then waited out.

A store that cannot be read or written (a full disk, a read-only folder, an unreachable bucket)
raises :class:`StoreError` once; while the problem lasts, later errors of the same kind carry
``reported = True`` so the user is told once, and the store is not retried for
``RETRY_SECONDS``: an unreachable server should not slow every cell down.
"""

from __future__ import annotations

import time
from typing import Literal

from ..errors import StoreError

__all__ = ["RETRY_SECONDS", "Direction", "Outage"]

RETRY_SECONDS = 30.0

Direction = Literal["read", "write"]


class Outage:
    """The problems of one store being waited out, per direction."""

    def __init__(self, url: str):
        self.url = url
        # Per direction: (message, when to retry).
        self._trouble: dict[Direction, tuple[str, float]] = {}

    def guard(self, direction: Direction) -> None:
        """Raise the (already reported) problem while a store problem is being waited out. A store
        that cannot be read (unreachable) is not written to either; one that cannot be written
        (read-only, full) is still read."""
        sides: tuple[Direction, ...] = ("read", "write") if direction == "write" else ("read",)
        for side in sides:
            trouble = self._trouble.get(side)
            if trouble is not None and time.monotonic() < trouble[1]:
                error = StoreError(trouble[0])
                error.reported = True
                raise error

    def fail(self, direction: Direction, exc: BaseException) -> StoreError:
        """The error to raise for ``exc``; the store is not tried that way for a while."""
        what = "read" if direction == "read" else "written"
        message = f"the cache at {self.url} cannot be {what}: {exc}"
        error = StoreError(message)
        error.reported = bool(self._trouble)  # one outage, one message
        self._trouble[direction] = (message, time.monotonic() + RETRY_SECONDS)
        return error

    def ok(self, direction: Direction) -> None:
        """The store worked that way: the problem, if any, is over."""
        self._trouble.pop(direction, None)

    def reset(self) -> None:
        """Forget every problem: the next operation tries the store at once."""
        self._trouble.clear()
