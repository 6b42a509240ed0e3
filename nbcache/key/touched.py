"""What a run did to the files it named or wrote: the inputs it read, the outputs it left.

After a miss ran, every path the :class:`~nbcache.key.deps.Watch` saw is settled by comparing
what was there before with what is there now:

- named and unchanged: an **input** (its stamp; for a folder, every file below it);
- created, changed or removed: an **output**; if it existed before and the cell may have read it
  (appended to, a database, or written by native code, where nobody can tell), its earlier state
  is an input too, so a hit needs the file as the run found it;
- created and removed within the run: nothing.

Files read through Python that changed during the run without the cell writing them (another
process appends to them) are a problem: the run is not stored.
"""

from __future__ import annotations

import glob as _glob
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .disk import DiskProblem, Node, file_digest, node, shallow, unchanged

if TYPE_CHECKING:
    from .deps import Watch

__all__ = ["Change", "Settled", "check_globs", "check_trees", "settle"]


@dataclass(frozen=True)
class Change:
    """One path the run changed: what was there before and after (None: nothing)."""

    path: str
    before: Node | None
    after: Node | None


@dataclass
class Settled:
    files: dict[str, Any] = field(default_factory=dict)
    """Input files: ``path -> [size, mtime_ns, digest]`` (digest None: only these exact stamps)."""
    trees: dict[str, Any] = field(default_factory=dict)
    """Input folders: ``path -> {relative path: [size, mtime_ns, digest] or [kind]}``."""
    globs: dict[str, list[str]] = field(default_factory=dict)
    """Input patterns: ``pattern -> the paths it matched``."""
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cwd: str = ""
    """The working folder when the run started."""
    relative: frozenset[str] = frozenset()
    """Changed paths the cell named relative to the working folder."""


def _after(path: str, settled: Settled, flat: bool = False) -> Node | None:
    """What ``path`` is now (``flat``: a folder without its content); a problem is noted."""
    try:
        return shallow(path) if flat else node(path)
    except DiskProblem as exc:
        settled.problems.append(str(exc))
        return None


def _stamp(item: Node) -> Any:
    return [item.size, item.mtime_ns, item.digest] if item.kind == "file" else [item.kind, item.digest]


def _input(settled: Settled, path: str, before: Node) -> None:
    if before.kind == "dir":
        settled.trees[path] = {rel: _stamp(child) for rel, child in before.below}
    elif before.kind == "file":
        settled.files[path] = _stamp(before)


def settle(watch: Watch) -> Settled:
    """The inputs and outputs of the run ``watch`` saw, now that it ended."""
    settled = Settled(problems=list(watch.problems), cwd=watch.cwd, relative=frozenset(watch.named_relatively))
    for path, before in watch.before.items():
        after = _after(path, settled)
        if unchanged(before, after):
            if before is not None:
                _input(settled, path, before)
            continue
        settled.changes.append(Change(path, before, after))
        replaced = path in watch.overwritten and path not in watch.read_natively and path not in watch.files
        if before is not None and not replaced:
            _input(settled, path, before)  # native code wrote it: it may have read it first
    written = watch.written_before
    for path, before in written.items():
        if before is not None and before.kind == "dir" and path not in watch.removed_trees:
            after = _after(path, settled, flat=True)  # an existing folder: its files have their own events
        else:
            after = _after(path, settled)
        if before is None and after is None:
            continue  # a scratch file
        if before is not None and path in watch.also_read:
            _input(settled, path, before)
        if not unchanged(before, after) or before is None:
            settled.changes.append(Change(path, before, after))
    for path, opened in watch.files.items():
        if path in settled.files or path in watch.before or os.path.isdir(path):
            continue  # (a folder opened to be listed or removed: its listing is in ``dirs``)
        if path in written and written[path] is None:
            continue  # the cell made it (a scratch file read back): no input
        try:
            st = os.stat(path)
            now: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            now = None
        if now == opened:
            continue
        if path in written:
            settled.files[path] = [opened[0], opened[1], None] if opened else None
        elif opened is not None:
            settled.problems.append(f"{path} changed while the cell ran")
    settled.globs = {pattern: list(matches) for pattern, matches in watch.globs.items()}
    return settled


def check_trees(trees: Mapping[str, Any]) -> list[str]:
    """Folders whose content differs from the recorded stamps."""
    changed = []
    for folder, recorded in trees.items():
        try:
            now = node(folder)
        except DiskProblem:
            now = None
        if now is None or now.kind != "dir":
            changed.append(f"folder {folder} is gone")
            continue
        below = dict(now.below)
        if set(below) != set(recorded):
            changed.append(f"folder {folder} changed (files added or removed)")
            continue
        for rel, stamp in recorded.items():
            item = below[rel]
            if item.kind != "file":
                if [item.kind, item.digest] != list(stamp):
                    changed.append(f"file {os.path.join(folder, rel)} changed")
                    break
                continue
            if not isinstance(stamp, list) or len(stamp) != 3 or stamp[0] != item.size:
                changed.append(f"file {os.path.join(folder, rel)} changed")
                break
            if stamp[1] == item.mtime_ns:
                continue
            try:
                same = stamp[2] is not None and file_digest(os.path.join(folder, rel)) == stamp[2]
            except OSError:
                same = False
            if not same:
                changed.append(f"file {os.path.join(folder, rel)} changed")
                break
    return changed


def check_globs(globs: Mapping[str, Any]) -> list[str]:
    return [
        f"the files matching {pattern} changed"
        for pattern, matches in globs.items()
        if sorted(_glob.glob(pattern, recursive=True)) != list(matches)
    ]
