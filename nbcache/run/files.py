"""Files a run wrote: stored with its entry, put back by a hit exactly as the run left them.

After a miss, every path the run created, changed or removed (see :mod:`nbcache.key.touched`)
becomes a record in the entry's ``extra["files"]``::

    {"path": "out/o.parquet", "kind": "file", "mode": 420, "size": 1234, "digest": "<blake3>", "blob": true}
    {"path": "scratch.txt", "kind": "gone"}
    {"path": "out", "kind": "dir", "mode": 493, "created": ["o.parquet"]}
    {"path": "latest", "kind": "link", "target": "out/o.parquet"}

A path inside the working folder is kept relative to it (a colleague's clone elsewhere gets the
files in the same place), any other path as it is. A file's content is a blob of the entry
(content-addressed, BLAKE3-256, under the signed manifest, counted against the size limit like
values); a file larger than ``NbCache.max_output_file_size`` is not copied: the entry keeps its
digest only, and a hit runs the cell when that file is missing or differs.

A hit first decides, for every record, whether the disk already holds it (size, then the stamp
this machine remembered, else the content's digest), then writes what differs to temporary
files beside their targets, each checked against its digest as it is written. Only when all of
them are ready are they moved into place (and the removed files removed); any failure before
that leaves the disk as it was, and the cell runs instead. Nothing partial is restored.
"""

from __future__ import annotations

import os
import stat
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from ..key.disk import Node, shallow, tree
from ..key.touched import Change
from ..store import digest
from ..store.cache import Cache, Entry
from ..store.manifest import BlobRef
from ..units import format_size

__all__ = ["MAX_FILE_SIZE", "Prepared", "Unrestorable", "prepare", "record_files"]

MAX_FILE_SIZE = 10**9
"""Default of ``NbCache.max_output_file_size``: larger files are recorded by digest, not copied."""

_CHUNK = 16 << 20
_TEMP = ".nbcache-"


class Unrestorable(Exception):
    """The files of an entry cannot all be put back (the message says which and why)."""


def _relative(path: str, cwd: str, relative: bool) -> str:
    """How the entry names ``path``: relative to the working folder the run started in when the
    cell named it so (a clone elsewhere gets it in the same place), else as it is."""
    return os.path.relpath(path, cwd) if relative else path


def _chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def blake3_file(path: str) -> str:
    return digest.hexdigest(_chunks(path))


@dataclass
class Recorded:
    records: list[dict[str, Any]] = field(default_factory=list)
    blobs: list[BlobRef] = field(default_factory=list)
    stamps: list[tuple[str, int, int, str]] = field(default_factory=list)
    """``(path, size, mtime_ns, digest)`` of the files as the run left them (this machine's)."""


def record_files(
    changes: Sequence[Change], cache: Cache, max_size: int, cwd: str | None = None, relative: frozenset[str] = frozenset()
) -> Recorded:
    """The records (and blobs, already put) of the paths the run changed (``relative``: those
    the cell named relative to ``cwd``, the working folder it started in). OSError when a file
    cannot be read: the run is then not stored."""
    cwd = cwd or os.getcwd()
    out = Recorded()
    seen: set[str] = set()
    for change in sorted(changes, key=lambda c: c.path):
        _record(change.path, change.before, change.after, cache, max_size, cwd, out, seen, change.path in relative)
    return out


def _record(
    path: str,
    before: Node | None,
    after: Node | None,
    cache: Cache,
    max_size: int,
    cwd: str,
    out: Recorded,
    seen: set[str],
    relative: bool,
) -> None:
    if path in seen:
        return
    seen.add(path)
    rel = _relative(path, cwd, relative)
    if after is None:
        out.records.append({"path": rel, "kind": "gone"})
        return
    if after.kind == "link":
        out.records.append({"path": rel, "kind": "link", "target": after.digest})
        return
    if after.kind == "dir":
        folder: dict[str, Any] = {"path": rel, "kind": "dir", "mode": after.mode}
        if before is None:  # made by the run (tempfile.mkdtemp): what it held when the run ended
            folder["created"] = sorted(os.listdir(path))
        out.records.append(folder)
        old = dict(before.below) if before is not None and before.kind == "dir" else {}
        for child_rel, child in tree(path):
            now = shallow(child)
            if now is None:
                continue
            was = old.pop(child_rel, None)
            if now.kind == "file" and was is not None and was.kind == "file" and (was.size, was.mtime_ns, was.mode) == (now.size, now.mtime_ns, now.mode):
                continue  # untouched by the run
            if now.kind == "dir" and was is not None and was.kind == "dir" and was.mode == now.mode:
                continue
            _record(child, was, now, cache, max_size, cwd, out, seen, relative)
        for child_rel in old:
            _record(os.path.join(path, child_rel), old[child_rel], None, cache, max_size, cwd, out, seen, relative)
        return
    st = os.stat(path)
    record: dict[str, Any] = {"path": rel, "kind": "file", "mode": stat.S_IMODE(st.st_mode), "size": st.st_size}
    if st.st_size > max_size:
        record["digest"] = blake3_file(path)
        record["blob"] = False
    else:
        ref = cache.put_blob(lambda: _chunks(path), st.st_size)
        record["digest"] = ref.id
        record["blob"] = True
        out.blobs.append(ref)
    out.records.append(record)
    out.stamps.append((path, st.st_size, st.st_mtime_ns, record["digest"]))


# -- a hit -------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """What a hit does to the disk, ready to be done (:meth:`commit`) or undone (:meth:`discard`)."""

    moves: list[tuple[str, str, int]] = field(default_factory=list)
    """``(temporary file, target, mode)``."""
    links: list[tuple[str, str]] = field(default_factory=list)
    folders: list[tuple[str, int]] = field(default_factory=list)
    modes: list[tuple[str, int]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    """The paths written or removed, as the records name them (for --explain and the badge)."""
    stamps: list[tuple[str, int, int, str]] = field(default_factory=list)
    _digests: dict[str, tuple[int, str]] = field(default_factory=dict)

    made: list[str] = field(default_factory=list)
    """Folders made for the temporary files, which a discard removes again."""

    def discard(self) -> None:
        """Leave the disk as it was: remove the temporary files and the folders made for them."""
        for temp, _, _ in self.moves:
            try:
                os.remove(temp)
            except OSError:
                pass
        self.moves.clear()
        for folder in reversed(self.made):
            try:
                os.rmdir(folder)  # only while empty
            except OSError:
                pass
        self.made.clear()

    def commit(self) -> list[tuple[str, int, int, str]]:
        """Put everything in place, or nothing: what a target held is moved aside first and put
        back if a later step fails (the exception then propagates). Returns the stamps of the
        files written (for the index)."""
        done: list[tuple[str, str, str | None]] = []  # (what was done, path, what it held, moved aside)
        modes: list[tuple[str, int]] = []
        try:
            for folder, mode in self.folders:
                if not os.path.isdir(folder):
                    os.makedirs(folder)
                    done.append(("made", folder, None))
                else:
                    modes.append((folder, stat.S_IMODE(os.stat(folder).st_mode)))
                os.chmod(folder, mode)
            for temp, target, mode in self.moves:
                os.chmod(temp, mode)
                done.append(("put", target, _aside(target)))
                os.replace(temp, target)
            for path, mode in self.modes:
                modes.append((path, stat.S_IMODE(os.stat(path).st_mode)))
                os.chmod(path, mode)
            for link, target in self.links:
                done.append(("put", link, _aside(link)))
                os.symlink(target, link)
            for path in self.removals:
                done.append(("removed", path, _aside(path)))
        except BaseException:
            _undo(done, modes)
            self.discard()
            raise
        stamps = list(self.stamps)
        for temp, target, mode in self.moves:
            st = os.stat(target)
            size, found = self._digests[target]
            stamps.append((target, size, st.st_mtime_ns, found))
        self.moves.clear()
        self.made.clear()
        for _, _, aside in done:
            if aside is not None:
                _remove_all(aside)
        return stamps


def _aside(path: str) -> str | None:
    """Move what ``path`` holds out of the way (beside it, under a temporary name); None when
    nothing is there."""
    if not os.path.lexists(path):
        return None
    aside = os.path.join(os.path.dirname(path), f"{_TEMP}{os.getpid()}-{uuid.uuid4().hex[:12]}-old")
    os.rename(path, aside)
    return aside


def _undo(done: list[tuple[str, str, str | None]], modes: list[tuple[str, int]]) -> None:
    """Take back what a failed commit did, last first."""
    for what, path, aside in reversed(done):
        try:
            if what in ("made", "put"):
                _remove_all(path)
            if aside is not None:
                os.rename(aside, path)
        except OSError:
            pass
    for path, mode in modes:
        try:
            os.chmod(path, mode)
        except OSError:
            pass


def _remove_all(path: str) -> None:
    import shutil

    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
    except OSError:
        pass


def _identical(cache: Cache, path: str, record: Mapping[str, Any], prepared: Prepared) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != record["size"]:
        return False
    remembered = None
    try:
        remembered = cache.index.file_stamp(path, st.st_size, st.st_mtime_ns)
    except Exception:  # noqa: BLE001 - the index is a nicety
        pass
    if remembered is None:
        try:
            remembered = blake3_file(path)
        except OSError:
            return False
        prepared.stamps.append((path, st.st_size, st.st_mtime_ns, remembered))
    if remembered != record["digest"]:
        return False
    if stat.S_IMODE(st.st_mode) != record["mode"]:
        prepared.modes.append((path, record["mode"]))
        prepared.restored.append(record["path"])
    return True


def _foreign(path: str, record: Mapping[str, Any]) -> list[str]:
    """What a folder the run created holds now that the run did not leave in it (a plain run
    would have made it afresh, empty: reusing a folder with other content would differ)."""
    created = record.get("created")
    if created is None or not os.path.isdir(path):
        return []
    try:
        names = os.listdir(path)
    except OSError:
        return []
    return sorted(n for n in names if n not in set(created) and not n.startswith(_TEMP))


def _sweep(folder: str) -> None:
    """Remove the temporary files that a restore killed mid-way (kill -9) left in ``folder``:
    those of processes that no longer run."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(_TEMP)]
    except OSError:
        return
    for name in names:
        pid = name[len(_TEMP) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            os.remove(os.path.join(folder, name))
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def prepare(cache: Cache, entry: Entry, records: Sequence[Mapping[str, Any]], cwd: str | None = None) -> Prepared:
    """Check every record against the disk and write what differs to temporary files.
    Raises :class:`Unrestorable` (with nothing left behind) when a file cannot be put back."""
    cwd = cwd or os.getcwd()
    prepared = Prepared()
    blobs = {ref.id: ref for ref in entry.blobs}
    try:
        for record in records:
            path = os.path.join(cwd, record["path"])
            kind = record["kind"]
            if kind == "gone":
                if os.path.lexists(path):
                    prepared.removals.append(path)
                    prepared.restored.append(record["path"])
            elif kind == "dir":
                extra = _foreign(path, record)
                if extra:
                    raise Unrestorable(
                        f"the folder {record['path']}, which the run created, now holds {extra[0]}"
                        + (f" and {len(extra) - 1} more" if len(extra) > 1 else "")
                        + " that the run did not leave there"
                    )
                if not os.path.isdir(path) or stat.S_IMODE(os.stat(path).st_mode) != record["mode"]:
                    prepared.folders.append((path, record["mode"]))
                    prepared.restored.append(record["path"])
            elif kind == "link":
                if not os.path.islink(path) or os.readlink(path) != record["target"]:
                    prepared.links.append((path, record["target"]))
                    prepared.restored.append(record["path"])
            elif not _identical(cache, path, record, prepared):
                if not record.get("blob"):
                    state = "is missing" if not os.path.exists(path) else "differs from what the run left"
                    raise Unrestorable(
                        f"{record['path']} {state}, and at {format_size(record['size'])} it is larger than "
                        "NbCache.max_output_file_size, so the entry has its digest only"
                    )
                ref = blobs.get(record["digest"])
                if ref is None:
                    raise Unrestorable(f"the entry names no blob for {record['path']}")
                if os.path.isdir(path) and not os.path.islink(path):
                    raise Unrestorable(f"{record['path']} is now a folder, where the run left a file")
                folder = os.path.dirname(path)
                _make_folders(folder, prepared.made)
                _sweep(folder)
                temp = os.path.join(folder, f"{_TEMP}{os.getpid()}-{uuid.uuid4().hex[:12]}-{os.path.basename(path)}")
                cache.copy_blob(entry, ref, temp)
                prepared.moves.append((temp, path, record["mode"]))
                prepared._digests[path] = (record["size"], record["digest"])
                prepared.restored.append(record["path"])
    except Unrestorable:
        prepared.discard()
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged blob, a read-only folder, a full disk
        prepared.discard()
        raise Unrestorable(f"the files it wrote could not be restored ({exc})") from exc
    except BaseException:  # an interrupt: nothing left behind either
        prepared.discard()
        raise
    return prepared


def _make_folders(folder: str, made: list[str]) -> None:
    """``os.makedirs(folder)``, noting the folders it made (outermost first) in ``made``."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for path in reversed(missing):
        os.mkdir(path)
        made.append(path)
