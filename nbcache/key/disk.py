"""What a path is on disk at one moment: the before and after of a run, for files read and written.

A cell's files are compared twice: before and after the run (which of them it wrote, and what
they were before it did), and at a lookup (whether what it read is still there). Both compare
:class:`Node` values: a file is its size, modification time, mode and (when asked) its xxh3
digest; a folder is every file below it, up to :data:`TREE_LIMIT`; a symbolic link is its target.

A folder with more files than that, a symlink loop or an unreadable path is no state: it raises
:class:`DiskProblem`, whose message names the path, and the engine then stores nothing of the run.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import Iterator

import xxhash

__all__ = ["TREE_LIMIT", "DiskProblem", "Node", "file_digest", "node", "shallow", "tree", "unchanged"]

TREE_LIMIT = 10_000
"""Files below a folder that a cell reads or writes as a whole: more, and the run is not stored."""


# lstat's answers for names that cannot exist: too long, a file used as a folder, invalid.
_NO_SUCH_NAME = frozenset({errno.ENAMETOOLONG, errno.ENOTDIR, errno.EINVAL})


class DiskProblem(Exception):
    """A path whose state cannot be taken (the message is for the user and names it)."""


@dataclass(frozen=True)
class Node:
    kind: str
    """``file``, ``dir`` or ``link``."""
    size: int = 0
    mtime_ns: int = 0
    mode: int = 0
    digest: str | None = None
    """xxh3-128 of a file's content, when taken; a link's target."""
    below: tuple[tuple[str, Node], ...] = ()
    """A folder's files and folders, by path relative to it, sorted."""


def file_digest(path: str) -> str:
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            hasher.update(chunk)
    return hasher.hexdigest()


def node(path: str, digest: bool = False, limit: int = TREE_LIMIT) -> Node | None:
    """The state of ``path`` now (None: nothing there). ``digest``: hash files' content."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _NO_SUCH_NAME:
            return None  # a name no file can have here: nothing there (the cell's own call says why)
        raise DiskProblem(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISLNK(st.st_mode):
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == 40:  # ELOOP
                raise DiskProblem(f"{path} is a symbolic link loop") from exc
        return Node("link", digest=os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Node("dir", mode=stat.S_IMODE(st.st_mode), below=tuple(_below(path, digest, limit)))
    if not stat.S_ISREG(st.st_mode):
        return None  # sockets, fifos, devices: never a cell's data
    found = None
    if digest:
        try:
            found = file_digest(path)
        except OSError as exc:
            raise DiskProblem(f"{path} cannot be read ({exc.strerror or exc})") from exc
    return Node("file", st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), found)


def _below(root: str, digest: bool, limit: int) -> Iterator[tuple[str, Node]]:
    count = 0
    for rel, path in tree(root):
        count += 1
        if count > limit:
            raise DiskProblem(f"folder {root} has more than {limit} files, too many to watch")
        found = shallow(path, digest)
        if found is not None:
            yield rel, found


def shallow(path: str, digest: bool = False) -> Node | None:
    """A folder's child: files and links as :func:`node` has them, folders without their content."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DiskProblem(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(st.st_mode):
        return Node("dir", mode=stat.S_IMODE(st.st_mode))
    return node(path, digest)


def tree(root: str) -> Iterator[tuple[str, str]]:
    """``(relative path, path)`` of everything below ``root``, sorted, without following links."""
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(folder), reverse=True)
        except OSError as exc:
            raise DiskProblem(f"folder {folder} cannot be listed ({exc.strerror or exc})") from exc
        for name in names:
            child_rel = os.path.join(rel, name) if rel else name
            child = os.path.join(folder, name)
            yield child_rel, child
            if os.path.isdir(child) and not os.path.islink(child):
                stack.append(child_rel)


def unchanged(before: Node | None, after: Node | None) -> bool:
    """Whether nothing differs that a cell could have changed (stamps and, when both have them,
    content digests; a digest only on one side is taken as a difference in stamps only)."""
    if before is None or after is None:
        return before is after
    if before.kind != after.kind or before.mode != after.mode:
        return False
    if before.kind == "link":
        return before.digest == after.digest
    if before.kind == "dir":
        if len(before.below) != len(after.below):
            return False
        return all(a[0] == b[0] and unchanged(a[1], b[1]) for a, b in zip(before.below, after.below))
    if before.size != after.size:
        return False
    if before.mtime_ns == after.mtime_ns:
        return True
    return before.digest is not None and after.digest is not None and before.digest == after.digest
