"""Writing a local file atomically: a temporary file in the same folder, then a rename.

A reader sees the old file or the new one, never a part of either, and a writer that dies leaves
at most a temporary file (named with ``prefix``) behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator, TextIO

__all__ = ["replaced"]


@contextlib.contextmanager
def replaced(path: str, prefix: str, encoding: str = "utf-8") -> Iterator[TextIO]:
    """A text file to write; it replaces ``path`` when the block ends without an error."""
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            yield fh
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
