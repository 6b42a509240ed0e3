"""Entries on top of a store: manifests that name content-addressed blobs.

Layout inside a store (``STORE_FORMAT`` = 1)::

    nbcache-store.json          {"format": 1}: refuse to mix layouts
    .gitignore                  "*": a cache folder inside a repository stays out of git
    manifests/<key>.json        one per entry, written last: the entry exists once it exists
    blobs/<id[:2]>/<id>         content-addressed; <id> is the xxh3-128 of the content

A blob's name is its checksum, so a reader verifies every byte before it unpickles anything, and
identical outputs or values written by two cells (or two machines) are stored once. An entry is
visible only when its manifest is, and the manifest is written after its blobs: a writer killed
at any moment leaves no visible partial entry, only orphan blobs that :meth:`Cache.sweep`
collects.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping

import xxhash

from .errors import CorruptEntryError, StoreError, StoreFormatError
from .serialize import Frames, load_values, read_frames
from .store import BlobStore

__all__ = ["STORE_FORMAT", "BlobRef", "Cache", "Entry"]

STORE_FORMAT = 1
_FORMAT_FILE = "nbcache-store.json"


@dataclass(frozen=True)
class BlobRef:
    id: str
    size: int

    @property
    def name(self) -> str:
        return f"blobs/{self.id[:2]}/{self.id}"


@dataclass(frozen=True)
class Entry:
    """What a manifest says about one stored run of a cell."""

    key: str
    cell: str
    """Which cell this is a run of (its label, else the first line of code): for --explain."""
    label: str | None
    source: str
    created: float
    runtime: float
    """Seconds the cell took when it ran."""
    names: tuple[str, ...]
    """Variables the entry restores."""
    deleted: tuple[str, ...]
    refs: tuple[str, ...]
    """Names of pre-existing variables the values refer to (resolved on load)."""
    inputs: Mapping[str, str]
    """Fingerprint (hex) of every input, by name, as the key saw them."""
    components: Mapping[str, str]
    """Fingerprint (hex) of the other parts of the key (source, versions...)."""
    values: BlobRef
    outputs: BlobRef
    python: str
    nbcache: str
    format: int = STORE_FORMAT
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.values.size + self.outputs.size

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Entry:
        try:
            data = json.loads(raw)
            if data.get("format") != STORE_FORMAT:
                raise CorruptEntryError(f"manifest has format {data.get('format')!r}, expected {STORE_FORMAT}")
            data["values"] = BlobRef(**data["values"])
            data["outputs"] = BlobRef(**data["outputs"])
            for name in ("names", "deleted", "refs"):
                data[name] = tuple(data[name])
            return cls(**data)
        except CorruptEntryError:
            raise
        except Exception as exc:
            raise CorruptEntryError(f"manifest is not readable: {exc}") from exc


def _digest(chunks: Any) -> str:
    hasher = xxhash.xxh3_128()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


class Cache:
    """Reads and writes entries in a :class:`~nbcache.store.BlobStore`."""

    def __init__(self, store: BlobStore):
        self.store = store
        self._checked = False

    # -- layout --------------------------------------------------------------------------------
    def ensure_layout(self) -> None:
        """Create the layout files, or check that an existing store has our format."""
        if self._checked:
            return
        try:
            raw = self.store.get(_FORMAT_FILE)
        except FileNotFoundError:
            self.store.put(_FORMAT_FILE, [json.dumps({"format": STORE_FORMAT}).encode()])
            if not self.store.contains(".gitignore"):
                self.store.put(".gitignore", [b"# written by nbcache: a cache is not source\n*\n"])
        else:
            try:
                found = json.loads(raw).get("format")
            except ValueError:
                found = None
            if found != STORE_FORMAT:
                raise StoreFormatError(
                    f"the cache at {self.store.url} has format {found!r}; this nbcache uses {STORE_FORMAT}. "
                    "Point NBCACHE_DIR elsewhere or clear it."
                )
        self._checked = True

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def manifest_name(key: str) -> str:
        return f"manifests/{key}.json"

    def lookup(self, key: str) -> Entry | None:
        """The entry for ``key``, None when there is none. Raises CorruptEntryError."""
        self.ensure_layout()
        try:
            raw = self.store.get(self.manifest_name(key))
        except FileNotFoundError:
            return None
        entry = Entry.from_json(raw)
        if entry.key != key:
            raise CorruptEntryError(f"manifest {key} names another key ({entry.key})")
        return entry

    def read_outputs(self, entry: Entry) -> list[dict[str, Any]]:
        from .capture import decode_outputs

        raw = self._read_verified(entry.outputs)
        return decode_outputs(raw)

    def read_values(self, entry: Entry, namespace: Mapping[str, Any]) -> dict[str, Any]:
        hasher = xxhash.xxh3_128()
        try:
            with self.store.open(entry.values.name) as fh:
                frames = read_frames(fh, hasher=hasher)
                if fh.read(1):
                    raise CorruptEntryError("values blob has trailing bytes")
        except FileNotFoundError:
            raise CorruptEntryError(f"values blob {entry.values.id} is missing") from None
        if hasher.hexdigest() != entry.values.id:
            raise CorruptEntryError(f"values blob {entry.values.id} fails its checksum")
        return load_values(frames, namespace=namespace)

    def _read_verified(self, ref: BlobRef) -> bytes:
        try:
            raw = self.store.get(ref.name)
        except FileNotFoundError:
            raise CorruptEntryError(f"blob {ref.id} is missing") from None
        if xxhash.xxh3_128_hexdigest(raw) != ref.id:
            raise CorruptEntryError(f"blob {ref.id} fails its checksum")
        return raw

    def entries(self) -> Iterator[Entry]:
        """Every readable entry (unreadable manifests are skipped)."""
        self.ensure_layout()
        for name in self.store.list("manifests"):
            if not name.endswith(".json"):
                continue
            try:
                yield Entry.from_json(self.store.get(name))
            except (CorruptEntryError, FileNotFoundError):
                continue

    # -- writing -------------------------------------------------------------------------------
    def put_blob(self, chunks: list[Any]) -> BlobRef:
        ref = BlobRef(_digest(chunks), sum(memoryview(c).nbytes for c in chunks))
        if not self.store.contains(ref.name):
            self.store.put(ref.name, chunks)
        return ref

    def write(self, fields: Mapping[str, Any], frames: Frames, outputs: bytes) -> Entry:
        """Write blobs, then the manifest. ``fields`` are the Entry fields other than blobs."""
        self.ensure_layout()
        values_ref = self.put_blob(frames.chunks())
        outputs_ref = self.put_blob([outputs])
        entry = Entry(values=values_ref, outputs=outputs_ref, **fields)
        self.store.put(self.manifest_name(entry.key), [entry.to_json()])
        return entry

    def delete(self, key: str) -> None:
        """Remove an entry (its blobs go at the next sweep, unless another entry shares them)."""
        self.store.delete(self.manifest_name(key))

    def sweep(self) -> int:
        """Remove blobs that no manifest names; returns how many."""
        used = set()
        for entry in self.entries():
            used.add(entry.values.name)
            used.add(entry.outputs.name)
        removed = 0
        cutoff = time.time() - 3600
        for name in list(self.store.list("blobs")):
            if name not in used:
                try:
                    # A blob written in the last hour may belong to a manifest being written now.
                    if _mtime(self.store, name) < cutoff:
                        self.store.delete(name)
                        removed += 1
                except (OSError, StoreError):
                    continue
        return removed


def _mtime(store: BlobStore, name: str) -> float:
    import os

    root = getattr(store, "root", None)
    if root is None:
        return 0.0
    return os.path.getmtime(os.path.join(root, *name.split("/")))
