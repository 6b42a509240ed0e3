"""Entries on top of a store: signed manifests that name content-addressed blobs, plus an index.

Layout inside a store (``STORE_FORMAT`` = 2)::

    nbcache-store.json          {"format": 2}: refuse to mix layouts
    .gitignore                  "*": a cache folder inside a repository stays out of git
    manifests/<key>.json        one per entry, signed, written last: the entry exists once it exists
    blobs/<id[:2]>/<id>         content-addressed, stored as is
    blobs/<id[:2]>/<id>.zst     content-addressed, stored zstd-compressed
    index.sqlite                (local stores only) the index, see :mod:`nbcache.store.index`

**Checksums.** A blob's ``<id>`` is the xxh3-128 of its *content* (the bytes before compression),
not of the stored bytes. So identical values written by two cells, two machines or with two
compression settings share an id; the name's suffix says how the bytes are stored. A reader
decompresses (bounded by the size the manifest gives), hashes what comes out, and compares with
the id before anything is unpickled: a flipped bit in a compressed blob is caught either by zstd
or by the checksum.

**Signatures.** The manifest carries an HMAC-SHA256 (see :mod:`nbcache.store.signing`) of its entry
in canonical JSON. The entry names the ids of its blobs, so the signature covers them too. An
entry with a bad or missing signature raises :class:`SignatureError` and is never unpickled.

**Atomicity.** Every ``put`` of a store is atomic, blobs are written before the manifest, and a
manifest is the only thing that makes an entry visible: a writer killed at any moment leaves no
visible partial entry, only orphan blobs (and, locally, temporary files) that :meth:`Cache.sweep`
collects. Two writers of the same key each write complete blobs and a complete manifest; the last
manifest wins and both are valid.

**Eviction and sharing.** Evicting an entry deletes its manifest, then the blobs that no other
indexed entry names. On a store shared by several machines a blob that another machine reuses
at that very moment (same content, written moments before) can go with it; that entry then
fails its checksum on read, which is a miss with a warning, and the next write repairs it.

**Failures.** A store that cannot be read or written (a full disk, a read-only folder, an
unreachable bucket) raises :class:`StoreError` once; while the problem lasts, later errors of the
same kind carry ``reported = True`` so the user is told once, and the store is not retried for
``RETRY_SECONDS`` (an unreachable server should not slow every cell down).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import xxhash

from . import signing
from .compression import Codec, Compression, Sampler, compress_stream, decompress, open_reader
from ..errors import CorruptEntryError, SignatureError, StoreError, StoreFormatError
from .index import INDEX_FILE, EntryStats, Index, IndexRow, remote_index_path
from .frames import Frames, frames_from_buffer, read_frames
from .backends import BlobStore

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "STORE_FORMAT",
    "BlobRef",
    "Cache",
    "Entry",
    "EntryStats",
    "Problem",
    "Totals",
]

# 2: signed manifests, compressed blobs (``codec``), package versions.
STORE_FORMAT = 2
_FORMAT_FILE = "nbcache-store.json"
DEFAULT_SIZE_LIMIT = 10 * 1000**3
RETRY_SECONDS = 30.0
# Blobs younger than this that no manifest names may belong to an entry being written now.
_ORPHAN_GRACE_SECONDS = 3600.0
# Below this, reading a blob is as cheap as mapping it.
_MAP_MIN_BYTES = 1 << 20
# Packages whose version changes what a pickle means; recorded in each entry for `nbcache show`.
_PACKAGES = ("numpy", "pandas", "cloudpickle", "scipy", "sklearn", "torch", "polars", "pyarrow")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BlobRef:
    id: str
    """xxh3-128 of the content (before compression)."""
    size: int
    """Bytes of content."""
    codec: Codec = "none"
    stored: int = -1
    """Bytes in the store (-1: same as ``size``)."""

    @property
    def name(self) -> str:
        suffix = "" if self.codec == "none" else ".zst"
        return f"blobs/{self.id[:2]}/{self.id}{suffix}"

    @property
    def stored_size(self) -> int:
        return self.size if self.stored < 0 else self.stored


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
    packages: Mapping[str, str] = field(default_factory=dict)
    """Versions of the Python interpreter and of the packages that shape pickles."""

    @property
    def size(self) -> int:
        return self.values.size + self.outputs.size

    @property
    def stored(self) -> int:
        return self.values.stored_size + self.outputs.stored_size

    def payload(self) -> bytes:
        """The canonical JSON that the signature covers."""
        return _canonical(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        try:
            if data.get("format") != STORE_FORMAT:
                raise CorruptEntryError(f"manifest has format {data.get('format')!r}, expected {STORE_FORMAT}")
            data = dict(data)
            data["values"] = BlobRef(**data["values"])
            data["outputs"] = BlobRef(**data["outputs"])
            for name in ("names", "deleted", "refs"):
                data[name] = tuple(data[name])
            return cls(**data)
        except CorruptEntryError:
            raise
        except Exception as exc:
            raise CorruptEntryError(f"manifest is not readable: {exc}") from exc


@dataclass(frozen=True)
class Totals:
    entries: int
    size: int
    """Bytes in the store (blobs shared by entries counted once)."""
    size_limit: int | None
    hits: int
    misses: int
    time_saved: float
    """Seconds of cell runtime that hits avoided (on this machine)."""


@dataclass(frozen=True)
class Problem:
    """An entry (or a manifest that is not one) that fails verification."""

    key: str
    problem: str


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class _Counted:
    """The chunks of an iterable, counting their bytes as a store writes them."""

    def __init__(self, chunks: Iterable[Any]):
        self._chunks = chunks
        self.nbytes = 0

    def __iter__(self) -> Iterator[Any]:
        for chunk in self._chunks:
            self.nbytes += memoryview(chunk).nbytes
            yield chunk


def _packages() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None)
        if isinstance(version, str):
            found[name] = version
    return found


class Cache:
    """Reads and writes entries in a :class:`~nbcache.store.backends.BlobStore`.

    ``key`` signs and verifies manifests (default: :func:`nbcache.store.signing.load_key`);
    ``size_limit`` is enforced after every write by evicting the least recently used entries
    (``None``: no limit); ``compression`` is ``auto``, ``zstd`` or ``none``; ``index_path``
    places the SQLite index (default: in a local store's folder, else under ``~/.cache``).
    """

    def __init__(
        self,
        store: BlobStore,
        *,
        key: str | bytes | None = None,
        size_limit: int | None = DEFAULT_SIZE_LIMIT,
        compression: Compression = "auto",
        index_path: str | None = None,
    ):
        self.store = store
        self.size_limit = size_limit
        self.compression: Compression = compression
        self._key = key
        self._secret: bytes | None = None
        self._index_path = index_path
        self._index: Index | None = None
        self._synced = False
        self._checked = False
        # Store problems being reported, per direction: (message, when to retry).
        self._trouble: dict[str, tuple[str, float]] = {}

    # -- configuration ---------------------------------------------------------------------------
    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = signing.load_key(self._key)
        return self._secret

    @property
    def index(self) -> Index:
        if self._index is None:
            path = self._index_path
            if path is None:
                root = getattr(self.store, "root", None)
                path = os.path.join(root, INDEX_FILE) if isinstance(root, str) else remote_index_path(self.store.url)
            self._index = Index(path)
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    # -- store problems: told once ---------------------------------------------------------------
    def _guard(self, direction: str) -> None:
        """Raise the (already reported) problem while a store problem is being waited out. A store
        that cannot be read (unreachable) is not written to either; one that cannot be written
        (read-only, full) is still read."""
        for side in ("read", "write") if direction == "write" else ("read",):
            trouble = self._trouble.get(side)
            if trouble is not None and time.monotonic() < trouble[1]:
                error = StoreError(trouble[0])
                error.reported = True
                raise error

    def _fail(self, direction: str, exc: BaseException) -> StoreError:
        what = "read" if direction == "read" else "written"
        message = f"the cache at {self.store.url} cannot be {what}: {exc}"
        error = StoreError(message)
        error.reported = bool(self._trouble)  # one outage, one message
        self._trouble[direction] = (message, time.monotonic() + RETRY_SECONDS)
        return error

    def _ok(self, direction: str) -> None:
        self._trouble.pop(direction, None)

    # -- layout --------------------------------------------------------------------------------
    def ensure_layout(self) -> None:
        """Create the layout files, or check that an existing store has our format."""
        if self._checked:
            return
        self._guard("read")
        try:
            try:
                raw = self.store.get(_FORMAT_FILE)
            except FileNotFoundError:
                raw = None
        except OSError as exc:
            raise self._fail("read", exc) from exc
        if raw is None:
            try:
                self.store.put(_FORMAT_FILE, [json.dumps({"format": STORE_FORMAT}).encode()])
                if not self.store.contains(".gitignore"):
                    self.store.put(".gitignore", [b"# written by nbcache: a cache is not source\n*\n"])
            except OSError as exc:
                # A read-only store without a format file is empty anyway: nothing to read.
                raise self._fail("write", exc) from exc
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
        self._ok("read")
        self._checked = True
        if self.index.fresh:
            self.sync()

    # -- manifests -------------------------------------------------------------------------------
    @staticmethod
    def manifest_name(key: str) -> str:
        return f"manifests/{key}.json"

    def _manifest(self, entry: Entry) -> bytes:
        body = asdict(entry)
        signature = signing.sign(self.secret, _canonical(body))
        return json.dumps({"format": STORE_FORMAT, "entry": body, "hmac_sha256": signature}, indent=1, sort_keys=True).encode()

    def _parse(self, raw: bytes, key: str) -> Entry:
        """The entry in manifest ``raw``, after checking its signature and its key."""
        try:
            data = json.loads(raw)
            body = data["entry"]
            signature = data.get("hmac_sha256")
            if data.get("format") != STORE_FORMAT:
                raise CorruptEntryError(f"manifest {key} has format {data.get('format')!r}, expected {STORE_FORMAT}")
        except CorruptEntryError:
            raise
        except Exception as exc:
            raise CorruptEntryError(f"manifest {key} is not readable: {exc}") from exc
        if not isinstance(signature, str) or not signing.verify(self.secret, _canonical(body), signature):
            raise SignatureError(
                f"entry {key[:12]} is not signed with this cache's key (written with another NBCACHE_KEY, "
                "or tampered with), so it is not loaded"
            )
        entry = Entry.from_dict(body)
        if entry.key != key:
            raise CorruptEntryError(f"manifest {key} names another key ({entry.key})")
        return entry

    def _row(self, entry: Entry) -> IndexRow:
        return IndexRow(
            key=entry.key,
            label=entry.label,
            cell=entry.cell,
            source=entry.source,
            size=entry.size,
            stored=entry.stored,
            values_blob=entry.values.name,
            values_stored=entry.values.stored_size,
            outputs_blob=entry.outputs.name,
            outputs_stored=entry.outputs.stored_size,
            created=entry.created,
            runtime=entry.runtime,
            format=entry.format,
            python=entry.python,
            packages=dict(entry.packages),
        )

    def _safely(self, action: Callable[[], Any]) -> Any:
        """Index bookkeeping: never a reason for a cell to fail (the index can be rebuilt)."""
        try:
            return action()
        except Exception:  # noqa: BLE001 - sqlite errors, a full disk...
            return None

    def _forget(self, key: str) -> None:
        self.index.remove([key])
        self.index.record_miss(key)

    def _index_written(self, entry: Entry) -> None:
        # last_used is max(created, last restore): the write itself counts as a use.
        self.index.upsert([self._row(entry)])

    # -- reading -------------------------------------------------------------------------------
    def lookup(self, key: str, *, count_miss: bool = True) -> Entry | None:
        """The entry for ``key``, None when there is none (counted as a miss unless
        ``count_miss`` is false: a probe for an optional variant). Raises CorruptEntryError (a bad
        signature is a :class:`SignatureError`) and StoreError."""
        self.ensure_layout()
        self._guard("read")
        try:
            raw = self.store.get(self.manifest_name(key))
        except FileNotFoundError:
            self._ok("read")
            if count_miss:
                self.record_miss(key)
            return None
        except OSError as exc:
            raise self._fail("read", exc) from exc
        self._ok("read")
        try:
            entry = self._parse(raw, key)
        except CorruptEntryError:
            self._safely(lambda: self.index.record_miss(key))
            raise
        self._safely(lambda: self._index_seen(entry))
        return entry

    def record_miss(self, key: str) -> None:
        """A lookup of ``key`` found no entry (for callers that probed with ``count_miss=False``)."""
        self._safely(lambda: self._forget(key))

    def _index_seen(self, entry: Entry) -> None:
        # A lookup is on the path of every cell: write to the index only when it lacks the entry.
        if self.index.row(entry.key) is None:
            self.index.upsert([self._row(entry)])

    def record_hit(self, entry: Entry, restore_time: float) -> None:
        """Count a restore of ``entry`` that took ``restore_time`` seconds."""
        saved = max(0.0, entry.runtime - restore_time)
        self._safely(lambda: self.index.record_hit(entry.key, time.time(), restore_time, saved))

    def read_output_bytes(self, entry: Entry) -> bytes:
        """The entry's encoded outputs, checked against their id (see :mod:`nbcache.run.capture`)."""
        return self._read_verified(entry.outputs, entry.key)

    def read_frames(self, entry: Entry, repair: bool = True) -> Frames:
        """The entry's values blob, checked against its id before anything may unpickle it."""
        ref = entry.values
        owner = entry.key if repair else None
        hasher = xxhash.xxh3_128()
        try:
            mapped = self._map(ref)
            if mapped is not None:
                frames = frames_from_buffer(mapped, hasher=hasher)
            else:
                with self.store.open(ref.name) as fh:
                    reader = open_reader(fh, ref.codec)
                    frames = read_frames(reader, hasher=hasher)
                    if reader.read(1):
                        raise CorruptEntryError("values blob has trailing bytes")
        except FileNotFoundError:
            if repair:
                self._safely(lambda: self.index.record_miss(entry.key))
            raise CorruptEntryError(f"values blob {ref.id} is missing") from None
        except CorruptEntryError as exc:
            self._damaged(ref, owner)
            raise CorruptEntryError(f"values blob {ref.id}: {exc}") from exc
        except (StoreError, OSError) as exc:  # a read that failed (EIO, ENOMEM...) is no damage
            raise self._fail("read", exc) from exc
        except Exception as exc:  # noqa: BLE001 - zstd errors on a damaged frame, short reads...
            self._damaged(ref, owner)
            raise CorruptEntryError(f"values blob {ref.id} is damaged ({exc})") from exc
        if hasher.hexdigest() != ref.id:
            self._damaged(ref, owner)
            raise CorruptEntryError(f"values blob {ref.id} fails its checksum")
        return frames

    def _map(self, ref: BlobRef) -> memoryview | None:
        """An uncompressed blob of a local store, mapped copy-on-write: a restore costs a checksum
        pass over the page cache, and arrays use the mapping as their memory (a write copies only
        the page it touches; blobs are never modified in place, only replaced or removed)."""
        local = getattr(self.store, "local_path", None)
        if ref.codec != "none" or local is None or ref.size < _MAP_MIN_BYTES:
            return None
        import mmap

        # MAP_POPULATE maps every page in one call: touching them one by one would fault each.
        flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0)
        with open(local(ref.name), "rb") as fh:
            return memoryview(mmap.mmap(fh.fileno(), 0, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE))

    def _damaged(self, ref: BlobRef, key: str | None) -> None:
        """A blob failed its checksum: count the miss and remove the blob, so that the next write
        of the same content stores it again instead of reusing the damaged copy. (``verify``
        only reports: it passes ``key=None``.)"""
        if key is None:
            return
        self._safely(lambda: self.index.record_miss(key))
        self._safely(lambda: self.store.delete(ref.name))

    def _read_verified(self, ref: BlobRef, key: str | None = None) -> bytes:
        try:
            raw = self.store.get(ref.name)
            if ref.codec != "none":
                raw = decompress(raw, ref.size)
        except FileNotFoundError:
            raise CorruptEntryError(f"blob {ref.id} is missing") from None
        except (StoreError, OSError) as exc:  # a read that failed (EIO, ENOMEM...) is no damage
            raise self._fail("read", exc) from exc
        except Exception as exc:  # noqa: BLE001 - zstd errors on a damaged frame
            self._damaged(ref, key)
            raise CorruptEntryError(f"blob {ref.id} is damaged ({exc})") from exc
        if xxhash.xxh3_128_hexdigest(raw) != ref.id:
            self._damaged(ref, key)
            raise CorruptEntryError(f"blob {ref.id} fails its checksum")
        return raw

    def _manifest_keys(self) -> list[str]:
        return [
            name[len("manifests/") : -len(".json")]
            for name in self.store.list("manifests")
            if name.endswith(".json") and "/" not in name[len("manifests/") :]
        ]

    def entries(self) -> Iterator[Entry]:
        """Every readable, correctly signed entry in the store (others are skipped)."""
        self.ensure_layout()
        for key in self._manifest_keys():
            try:
                yield self._parse(self.store.get(self.manifest_name(key)), key)
            except (CorruptEntryError, FileNotFoundError):
                continue

    def sync(self, progress: Progress | None = None) -> None:
        """Bring the index up to date with the manifests in the store."""
        in_store = set(self._manifest_keys())
        indexed = self.index.keys()
        gone = indexed - in_store
        if gone:
            self.index.remove(gone)
        new = sorted(in_store - indexed)
        rows = []
        for i, key in enumerate(new):
            try:
                rows.append(self._row(self._parse(self.store.get(self.manifest_name(key)), key)))
            except (CorruptEntryError, FileNotFoundError):
                pass
            if progress is not None:
                progress(i + 1, len(new))
        self._safely(lambda: self.index.upsert(rows))
        self._synced = True

    def _ensure_synced(self) -> None:
        self.ensure_layout()
        if not self._synced:
            self.sync()

    def stats(self) -> list[EntryStats]:
        """Every entry with its usage on this machine, oldest first."""
        self._ensure_synced()
        return self.index.stats()

    def totals(self) -> Totals:
        self._ensure_synced()
        hits, misses, saved = self.index.usage_totals()
        return Totals(
            entries=len(self.index.keys()),
            size=self.index.stored_bytes(),
            size_limit=self.size_limit,
            hits=hits,
            misses=misses,
            time_saved=saved,
        )

    def resolve(self, prefix: str) -> list[str]:
        """Keys that start with ``prefix`` (a whole key, or enough of one)."""
        self._ensure_synced()
        return self.index.match(prefix)

    def verify(self, progress: Progress | None = None) -> list[Problem]:
        """Check every manifest's signature and every blob's checksum (nothing is unpickled)."""
        self.ensure_layout()
        problems: list[Problem] = []
        keys = self._manifest_keys()
        for i, key in enumerate(keys):
            try:
                entry = self._parse(self.store.get(self.manifest_name(key)), key)
                self.read_frames(entry, repair=False)
                self._read_verified(entry.outputs)
            except FileNotFoundError:
                pass  # deleted while we looked
            except CorruptEntryError as exc:
                problems.append(Problem(key, str(exc)))
            if progress is not None:
                progress(i + 1, len(keys))
        return problems

    # -- writing -------------------------------------------------------------------------------
    def put_blob(self, chunks: Sequence[Any] | Callable[[], Iterable[Any]], size: int | None = None) -> BlobRef:
        """Store the concatenation of ``chunks`` as a content-addressed blob. ``chunks`` is a list
        of bytes-like objects, or a function that returns a new pass over them (with ``size``, their
        total): a spooled pickle is then read in chunks, never held whole, once for the checksum
        and the compression samples and once more to write it."""
        passes: Callable[[], Iterable[Any]] = chunks if callable(chunks) else lambda: chunks
        if size is None:
            size = sum(memoryview(c).nbytes for c in passes())
        hasher, sampler = xxhash.xxh3_128(), Sampler(size)
        for chunk in passes():
            hasher.update(chunk)
            sampler.feed(chunk)
        blob_id, codec = hasher.hexdigest(), sampler.codec(self.compression)
        ref = BlobRef(blob_id, size, codec, size if codec == "none" else -1)
        if self.store.contains(ref.name):
            stored = size if codec == "none" else self.store.size(ref.name)
        else:
            counted = _Counted(passes() if codec == "none" else compress_stream(passes(), size))
            self.store.put(ref.name, counted)
            stored = counted.nbytes
        return BlobRef(blob_id, size, codec, stored)

    def write(self, fields: Mapping[str, Any], frames: Frames, outputs: bytes) -> Entry:
        """Write blobs, then the manifest. ``fields`` are the Entry fields other than blobs."""
        self.ensure_layout()
        self._guard("write")
        fields = dict(fields)
        fields.setdefault("packages", _packages())
        try:
            values_ref = self.put_blob(frames.chunks, frames.size)
            outputs_ref = self.put_blob([outputs])
            entry = Entry(values=values_ref, outputs=outputs_ref, **fields)
            self.store.put(self.manifest_name(entry.key), [self._manifest(entry)])
        except OSError as exc:
            raise self._fail("write", exc) from exc
        self._ok("write")
        self._safely(lambda: self._index_written(entry))
        self.enforce_limit(keep=entry.key)
        return entry

    def delete(self, key: str) -> None:
        """Remove an entry, and the blobs no other entry uses."""
        row = self.index.row(key)
        blobs: list[str] = []
        if row is not None:
            blobs = [row.values_blob, row.outputs_blob]
        else:
            try:
                entry = Entry.from_dict(json.loads(self.store.get(self.manifest_name(key)))["entry"])
                blobs = [entry.values.name, entry.outputs.name]
            except (FileNotFoundError, CorruptEntryError, ValueError, KeyError, TypeError):
                pass
        self.store.delete(self.manifest_name(key))
        self.index.remove([key])
        for blob in set(blobs):
            if self.index.blob_users(blob) == 0:
                self.store.delete(blob)

    def clear(
        self,
        keys: Iterable[str] = (),
        *,
        label: str | None = None,
        older_than: float | None = None,
        everything: bool = False,
        progress: Progress | None = None,
    ) -> list[str]:
        """Delete entries: those named, with ``label``, not used for ``older_than`` seconds, or
        all. Returns the keys deleted."""
        self._ensure_synced()
        stats = self.index.stats()
        chosen: set[str] = set(keys)
        if everything:
            chosen |= {s.key for s in stats}
        if label is not None:
            chosen |= {s.key for s in stats if s.label == label}
        if older_than is not None:
            cutoff = time.time() - older_than
            chosen |= {s.key for s in stats if s.last_used < cutoff}
        done = sorted(chosen)
        for i, key in enumerate(done):
            self.delete(key)
            if progress is not None:
                progress(i + 1, len(done))
        return done

    def enforce_limit(self, keep: str | None = None) -> list[str]:
        """Evict least recently used entries until the store fits ``size_limit``; never ``keep``."""
        if self.size_limit is None or self.size_limit <= 0:
            return []
        evicted: list[str] = []
        try:
            self._ensure_synced()
            if self.index.stored_upper_bound() <= self.size_limit:
                return []  # cheap check first: the exact total counts shared blobs once
            total = self.index.stored_bytes()
            if total <= self.size_limit:
                return []
            for stats in self.index.lru():
                if total <= self.size_limit:
                    break
                if stats.key == keep:
                    continue
                self.delete(stats.key)
                evicted.append(stats.key)
                total = self.index.stored_bytes()
        except Exception:  # noqa: BLE001 - eviction is housekeeping: the write itself succeeded
            pass
        return evicted

    def sweep(self, older_than: float = _ORPHAN_GRACE_SECONDS) -> int:
        """Remove blobs that no manifest names and stray temporary files; returns how many."""
        self.ensure_layout()
        used = set()
        for key in self._manifest_keys():
            try:
                entry = Entry.from_dict(json.loads(self.store.get(self.manifest_name(key)))["entry"])
            except FileNotFoundError:
                continue
            except (CorruptEntryError, ValueError, KeyError, TypeError):
                continue
            used.add(entry.values.name)
            used.add(entry.outputs.name)
        removed = 0
        cutoff = time.time() - older_than
        for name in list(self.store.list("blobs")):
            if name in used:
                continue
            try:
                # A blob written recently may belong to a manifest being written now.
                if self.store.modified(name) < cutoff:
                    self.store.delete(name)
                    removed += 1
            except OSError:
                continue
        removed += self.store.sweep(older_than)
        return removed
