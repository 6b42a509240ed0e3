"""``nbcache doctor``: one pass over what makes a store work, each finding with what to fix.

The checks, in order (a store that cannot be reached stops the rest): reachability, write
permission (a probe object written, read back and removed), the key (where it comes from, the
key file's mode, whether the store's entries are signed with it), the store format, free space
(local stores), the index (database health, agreement with the store's listing, blobs that
indexed entries name but the store lacks), and the size against the limit. Nothing is unpickled
and nothing but the probe is written.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from . import later, signing
from ..errors import NbCacheError
from ..units import format_size
from .manifest import LAYOUT_FORMATS, STORE_FORMAT

if TYPE_CHECKING:
    from .cache import Cache

__all__ = ["Finding", "diagnose"]

Level = Literal["ok", "warn", "fail"]
_FORMAT_FILE = "nbcache-store.json"
# Below this much free disk, writes of large entries start to fail.
_LOW_SPACE = 1 << 30


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    detail: str
    fix: str = ""


def diagnose(cache: Cache, key: str | bytes | None = None) -> list[Finding]:
    """Run every check on ``cache`` (whose key was given as ``key``, None: the default)."""
    found: list[Finding] = []
    store = cache.store
    try:
        cache.ensure_layout()
        found.append(Finding("reachable", "ok", f"{store.url} answers"))
    except NbCacheError as exc:
        found.append(Finding("reachable", "fail", str(exc), _reach_fix(store.url)))
        return found
    except OSError as exc:
        found.append(Finding("reachable", "fail", f"{store.url}: {exc}", _reach_fix(store.url)))
        return found
    found.append(_permissions(cache))
    found.extend(_key(cache, key))
    found.append(_format(cache))
    found.append(_space(cache))
    found.extend(_index(cache))
    found.append(_size(cache))
    return found


def _reach_fix(url: str) -> str:
    if "://" in url:
        return "check the URL, the network, AWS_ENDPOINT_URL and your credentials"
    return "check that the folder exists and that you may read it"


def _permissions(cache: Cache) -> Finding:
    probe = f"tmp/doctor-{uuid.uuid4().hex}"
    try:
        cache.store.put(probe, [b"nbcache doctor"])
        ok = cache.store.get(probe) == b"nbcache doctor"
        cache.store.delete(probe)
    except OSError as exc:
        return Finding(
            "writable", "fail", f"cannot write to the store ({exc}): hits still work, nothing new is stored",
            "ask for write access to the store, or point NBCACHE_DIR at a folder you may write",
        )
    if not ok:
        return Finding("writable", "fail", "a probe written to the store read back different", "check the storage server")
    return Finding("writable", "ok", "a probe object was written, read back and removed")


def _key(cache: Cache, key: str | bytes | None) -> list[Finding]:
    source = signing.key_source(key)
    try:
        cache.secret
    except (NbCacheError, OSError) as exc:
        return [Finding("key", "fail", f"no usable key ({exc})", "give --key FILE or set NBCACHE_KEY")]
    findings = [Finding("key", "ok", f"from {source}")]
    path = signing.default_key_path()
    if not key and not os.environ.get(signing.ENV_KEY) and os.path.exists(path):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            findings.append(
                Finding("key file", "warn", f"{path} has mode {mode:o}: others may read your key", f"chmod 600 {path}")
            )
    cache.sync(full=True)
    signed = cache.index.count()
    foreign = [row for row in cache.index.foreign() if row.reason == "signed with another key"]
    if foreign:
        level: Level = "fail" if not signed else "warn"
        findings.append(
            Finding(
                "signatures", level,
                f"{len(foreign)} entr{'y is' if len(foreign) == 1 else 'ies are'} signed with another key "
                f"({signed} with yours): they are never loaded",
                "get the team's key (NBCACHE_KEY or --key FILE); or remove them: nbcache clear --foreign",
            )
        )
    else:
        findings.append(Finding("signatures", "ok", f"all {signed} entries verify with this key"))
    return findings


def _format(cache: Cache) -> Finding:
    import json

    try:
        declared = json.loads(cache.store.get(_FORMAT_FILE)).get("format")
    except (OSError, ValueError, AttributeError):
        declared = None
    old = [row for row in cache.index.foreign() if row.reason.startswith("store format")]
    detail = f"the store says format {declared}; this nbcache writes {STORE_FORMAT} and opens {', '.join(map(str, LAYOUT_FORMATS))}"
    if old:
        return Finding(
            "format", "warn", f"{detail}; {len(old)} entries of an older format are misses",
            "nbcache clear --foreign removes them (their cells are stored again when they run)",
        )
    return Finding("format", "ok", detail)


def _space(cache: Cache) -> Finding:
    root = getattr(cache.store, "root", None)
    if not isinstance(root, str):
        return Finding("free space", "ok", "a remote store: its server manages space")
    free = shutil.disk_usage(root).free
    limit = cache.size_limit
    used = cache.index.stored_bytes()
    needed = max(0, limit - used) if limit else 0
    if free < _LOW_SPACE or (needed and free < needed):
        return Finding(
            "free space", "warn", f"{format_size(free)} free on the disk of {root}, the cache may grow by {format_size(needed)}",
            "free disk space, or lower the limit (NBCACHE_SIZE_LIMIT, --size-limit) and run nbcache gc",
        )
    return Finding("free space", "ok", f"{format_size(free)} free")


def _index(cache: Cache) -> list[Finding]:
    index = cache.index
    findings = []
    if index.error is not None:
        findings.append(
            Finding("index", "warn", f"the index lives in memory ({index.error}): usage counters are not kept",
                    f"make {os.path.dirname(index.path or '.') or '.'} writable")
        )
    else:
        health = index.health()
        if health != "ok":
            findings.append(Finding("index", "fail", f"the index is damaged ({health})", f"delete {index.path}: it is rebuilt"))
        else:
            findings.append(Finding("index", "ok", f"{index.path}: healthy"))
    report = cache.sync(full=True)
    listed = report.listed
    indexed = index.count() + len(index.foreign())
    if indexed != listed:
        findings.append(Finding("index sync", "fail", f"{indexed} manifests indexed, {listed} in the store", f"delete {index.path}"))
    else:
        findings.append(Finding("index sync", "ok", f"{listed} manifests listed, all indexed ({report.read} read now)"))
    blobs = set(cache.store.list("blobs"))
    count = len(blobs)
    blobs.update([later.other_name(name) for name in blobs if later.compressed(name)])  # compressed later
    missing = sorted(key for key, values, outputs in index.blobs_of_entries() if not {values, outputs} <= blobs)
    if missing:
        findings.append(
            Finding("blobs", "warn", f"{len(missing)} entries name blobs the store lacks (they are misses)",
                    "nbcache verify lists them; nbcache clear KEY... removes them")
        )
    else:
        findings.append(Finding("blobs", "ok", f"every entry's blobs are in the store ({count} blobs)"))
    return findings


def _size(cache: Cache) -> Finding:
    used = cache.index.stored_bytes()
    limit = cache.size_limit
    if limit and used > limit:
        return Finding("size", "warn", f"{format_size(used)} stored, over the limit of {format_size(limit)}", "nbcache gc")
    return Finding("size", "ok", f"{format_size(used)} stored" + (f" of {format_size(limit)}" if limit else ", no limit"))
