"""Manifests: the signed record of one entry, naming the blobs that hold its bytes.

A manifest is ``manifests/<key>.json``::

    {"data":{"<blob id>":"<base64>",...},"entry":{...the Entry's fields...},"format":3,"hmac_sha256":"..."}

written on one line with the entry in the very bytes its signature covers, so a reader checks the
signature over a slice of the file and parses the entry once (re-encoding the entry to check it
cost a hit more than parsing it). A manifest laid out otherwise (older ones were indented) is the
same JSON and is read the long way: parsed, its entry re-encoded, then checked.

``data`` (only when there are any) holds the content of the entry's blobs of up to
:data:`INLINE_MAX` bytes, which are written as files all the same: a hit of a small entry then
reads one file, not three. It is outside the signature, and needs none: each content is checked
against the blob's id, a BLAKE3 the signed entry gives, exactly as the blob's file would be, and
one that fails is ignored (the file is read), as is anything else in its place. nbcache versions
that predate it ignore it (and read such a manifest the long way).

**Signatures.** The manifest carries an HMAC-SHA256 (see :mod:`nbcache.store.signing`) of its entry
in canonical JSON (sorted keys, no spaces, ASCII). The entry names its blobs by their BLAKE3-256
(see :mod:`nbcache.store.digest`) and their sizes, so the signature covers their content
cryptographically, and bounds what reading them may allocate. An entry with a bad or missing
signature raises :class:`SignatureError` and is never unpickled. An entry of an older format
raises :class:`OutdatedEntryError`: a miss, and the cell is stored again. The layout of the JSON
and the signature of a known entry are pinned in ``tests/test_store_format.py``, with a format-2
entry kept as a fixture: existing caches must keep hitting, or miss cleanly after a bump.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from . import signing
from .compression import Codec
from ..errors import CorruptEntryError, OutdatedEntryError, SignatureError

if TYPE_CHECKING:
    from .backends import BlobStore

__all__ = [
    "INLINE_MAX",
    "LAYOUT_FORMATS",
    "FILES_FORMAT",
    "READ_FORMATS",
    "STORE_FORMAT",
    "BlobRef",
    "Entry",
    "blob_names",
    "manifest_keys",
    "manifest_name",
    "package_versions",
    "parse_manifest",
    "peek",
    "sign_manifest",
]

# 2: signed manifests, compressed blobs (``codec``), package versions.
# 3: blob ids are BLAKE3-256 (cryptographic) instead of xxh3-128; format-2 entries are misses.
STORE_FORMAT = 3
# 4: the entry owns more blobs than its values and outputs (``blobs``: the files its run wrote).
# Only such manifests say 4, so an nbcache that reads 3 refuses them cleanly (a miss) and every
# other entry stays readable by it.
FILES_FORMAT = 4
READ_FORMATS = (STORE_FORMAT, FILES_FORMAT)
# Formats whose store layout (format file, folders, names) this nbcache opens: their entries may
# be older (misses), the folder is still ours. Keeping the layout lets two versions share a store.
LAYOUT_FORMATS = (2, 3)
# A blob id of any format (xxh3-128: 32 hex digits, BLAKE3-256: 64).
_HEX_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{64}")
# Packages whose version changes what a pickle means; recorded in each entry for `nbcache show`.
_PACKAGES = ("numpy", "pandas", "cloudpickle", "scipy", "sklearn", "torch", "polars", "pyarrow")


@dataclass(frozen=True)
class BlobRef:
    id: str
    """BLAKE3-256 of the content (before compression), 64 hex digits."""
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
    blobs: tuple[BlobRef, ...] = ()
    """More blobs the entry owns: the content of the files its run wrote (format 4)."""
    inline: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """The content of its small blobs, base64 by blob id, beside the signed entry in the manifest
    (a hit reads them there rather than one file each). Not signed: each is checked against its
    id, which the signature covers, as the blob's file would be; one that fails is ignored."""

    @property
    def size(self) -> int:
        return self.values.size + self.outputs.size + sum(b.size for b in self.blobs)

    @property
    def stored(self) -> int:
        return self.values.stored_size + self.outputs.stored_size + sum(b.stored_size for b in self.blobs)

    def body(self) -> dict[str, Any]:
        """The entry as its manifest holds it (``blobs`` only when there are any: format 4)."""
        data = asdict(self)
        del data["inline"]
        if not self.blobs:
            del data["blobs"]
        return data

    def payload(self) -> bytes:
        """The canonical JSON that the signature covers."""
        return _canonical(self.body())

    @classmethod
    def from_dict(cls, data: dict[str, Any], inline: Mapping[str, str] | None = None) -> Entry:
        try:
            _check_format(data.get("format"), str(data.get("key", ""))[:12])
            data = dict(data)
            data["values"] = BlobRef(**data["values"])
            data["outputs"] = BlobRef(**data["outputs"])
            data["blobs"] = tuple(BlobRef(**ref) for ref in data.get("blobs") or ())
            for name in ("names", "deleted", "refs"):
                data[name] = tuple(data[name])
            data.pop("inline", None)  # (never signed: only the manifest's "data" says it)
            return cls(**data, inline=inline or {})
        except CorruptEntryError:
            raise
        except Exception as exc:
            raise CorruptEntryError(f"manifest is not readable: {exc}") from exc


def manifest_name(key: str) -> str:
    return f"manifests/{key}.json"


def manifest_keys(store: BlobStore) -> list[str]:
    """The keys of the manifests in ``store`` (names that ``manifest_name`` gives, nothing else)."""
    return [
        name[len("manifests/") : -len(".json")]
        for name in store.list("manifests")
        if name.endswith(".json") and "/" not in name[len("manifests/") :]
    ]


def sign_manifest(entry: Entry, secret: bytes) -> bytes:
    """The manifest of ``entry``, signed with ``secret``: the bytes the store keeps."""
    payload = _canonical(entry.body())
    signature = signing.sign(secret, payload)
    envelope = FILES_FORMAT if entry.blobs else STORE_FORMAT
    # The JSON of {"data": ..., "entry": ..., "format": ..., "hmac_sha256": ...} with sorted keys,
    # the entry being the signed bytes themselves (parse_manifest checks them as a slice of the
    # file), "data" only when there are small blobs to hold. Readers that predate "data" ignore it.
    data = b'{"data":' + _canonical(dict(entry.inline)) + b"," if entry.inline else b"{"
    return data + b'"entry":' + payload + b',"format":%d,"hmac_sha256":"%s"}' % (envelope, signature.encode())


def parse_manifest(raw: bytes, key: str, secret: bytes) -> Entry:
    """The entry in manifest ``raw``, after checking its signature and its key."""
    held, rest = None, raw
    if raw.startswith(_DATA):  # small blobs first: base64 by hex id, so no "}" until their end
        end = raw.find(_DATA_END, len(_DATA) - 1, _DATA_MAX)
        if end > 0:
            held, rest = raw[len(_DATA) - 1 : end + 1], b"{" + raw[end + 2 :]
    tail = _TAIL.search(rest, max(0, len(rest) - _TAIL_MAX)) if rest.startswith(_HEAD) else None
    if tail is not None:  # as sign_manifest writes it: the signed bytes are a slice of the file
        _check_format(int(tail.group(1)), key[:12])
        payload = rest[len(_HEAD) : tail.start()]
        if signing.verify(secret, payload, tail.group(2).decode()):
            try:
                body = json.loads(payload)
            except Exception as exc:
                raise CorruptEntryError(f"manifest {key} is not readable: {exc}") from exc
            return _checked(Entry.from_dict(body, _inline(held)), key)
        if held is None:
            raise _bad_signature(key)
        # (a "data" laid out otherwise than sign_manifest does, split in the wrong place: see below)
    try:
        data = json.loads(raw)
        body = data["entry"]
        signature = data.get("hmac_sha256")
        _check_format(data.get("format"), key[:12])
    except CorruptEntryError:
        raise
    except Exception as exc:
        raise CorruptEntryError(f"manifest {key} is not readable: {exc}") from exc
    if not isinstance(signature, str) or not signing.verify(secret, _canonical(body), signature):
        raise _bad_signature(key)
    return _checked(Entry.from_dict(body, _inline(data.get("data"))), key)


# The two ends of a manifest as sign_manifest lays it out (the format is checked as a number),
# and the small blobs' part before it.
_HEAD = b'{"entry":'
_TAIL = re.compile(rb',"format":(0|[1-9][0-9]{0,8}),"hmac_sha256":"([0-9a-f]{64})"\}\Z')
_TAIL_MAX = 128
_DATA = b'{"data":{'
_DATA_END = b'},"entry":'
# Blobs of up to this many bytes are held in their entry's manifest too (see Entry.inline).
INLINE_MAX = 4096
# The most the "data" of a manifest sign_manifest wrote can take (the values and the outputs, in
# base64, with their ids): anything longer is not read.
_HELD_MAX = 4 * (INLINE_MAX + 2) // 3
_DATA_MAX = len(_DATA) + 2 * (_HELD_MAX + 70) + len(_DATA_END)


def _inline(found: Any) -> dict[str, str]:
    """The manifest's small blobs, as far as they are well formed (unsigned: anything else in
    its place is ignored, however it was made)."""
    if isinstance(found, bytes):
        try:
            found = json.loads(found) if len(found) <= _DATA_MAX else None
        except Exception:  # noqa: BLE001 - not JSON, or nested past the parser's depth
            return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str) and len(v) <= _HELD_MAX}


def _bad_signature(key: str) -> SignatureError:
    return SignatureError(
        f"entry {key[:12]} is not signed with this cache's key (written with another NBCACHE_KEY, "
        "or tampered with), so it is not loaded"
    )


def _checked(entry: Entry, key: str) -> Entry:
    if entry.key != key:
        raise CorruptEntryError(f"manifest {key} names another key ({entry.key})")
    return entry


def _check_format(found: Any, key: str) -> None:
    if found in READ_FORMATS:
        return
    if isinstance(found, int) and found < STORE_FORMAT:
        raise OutdatedEntryError(
            f"entry {key} was written by an older nbcache (store format {found}, this one uses {STORE_FORMAT})"
        )
    raise CorruptEntryError(f"manifest {key} has format {found!r}; this nbcache reads {STORE_FORMAT}")


def peek(raw: bytes) -> dict[str, Any] | None:
    """What manifest ``raw`` claims, unverified (None when it is unreadable): its label, cell,
    creation time, size and blob names. For listing and cleaning up entries this cache cannot
    use (another key, another format), never for loading anything."""
    try:
        body = json.loads(raw)["entry"]
        refs = [BlobRef(**body[part]) for part in ("values", "outputs")]
        refs += [BlobRef(**ref) for ref in body.get("blobs") or ()]
        if not all(_HEX_ID.fullmatch(ref.id) for ref in refs):
            return None  # names no blob of ours: never a path to delete
        return {
            "label": body.get("label") if isinstance(body.get("label"), str) else None,
            "cell": str(body.get("cell", "")),
            "created": float(body.get("created", 0.0)),
            "size": sum(int(ref.size) for ref in refs),
            "blobs": [ref.name for ref in refs],
            "format": body.get("format"),
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def blob_names(raw: bytes) -> list[str]:
    """The blobs that manifest ``raw`` names, signed or not, of any format ([] when it is
    unreadable). For cleaning up only: an entry written with another key still owns its blobs."""
    claims = peek(raw)
    return [] if claims is None else list(claims["blobs"])


def package_versions() -> dict[str, str]:
    """The interpreter's version and those of the pickle-shaping packages already imported (a
    package the cell did not import cannot be in its pickles)."""
    found = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None)
        if isinstance(version, str):
            found[name] = version
    return found


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
