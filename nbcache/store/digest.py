"""Content digests: BLAKE3-256 names every blob and is checked before anything is unpickled.

Why BLAKE3 (store format 3; format 2 used xxh3-128): a blob's id sits in its entry's signed
manifest, so the signature covers the blob only as far as nobody can make a second blob with the
same id. xxh3 gives no such promise; BLAKE3 is a cryptographic hash (256 bits, collision and
second-preimage resistant) and, on all cores, runs at several GB/s: ``benchmarks/bench_store.py``
measures it next to xxh3 (faster, not cryptographic), keyed BLAKE3 (as fast) and HMAC-SHA256
(several times slower). Unkeyed BLAKE3 under a signed manifest does the job of a keyed digest per
blob, and keeps blobs content-addressed across keys (identical values share one blob).

Checkpoints have no manifest: they carry a keyed BLAKE3 (:func:`mac`) of their name and bytes,
with a key derived from the cache's secret.
"""

from __future__ import annotations

import hmac
from typing import Any, Iterable

import blake3

__all__ = ["DIGEST", "hasher", "hexdigest", "mac", "mac_matches"]

DIGEST = "blake3-256"


def hasher() -> Any:
    """A BLAKE3 hasher that uses every core on large updates (small ones cost well under 1 us)."""
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def hexdigest(chunks: Iterable[Any]) -> str:
    """The BLAKE3-256 of the concatenation of ``chunks`` (bytes-like), as 64 hex digits."""
    h = hasher()
    for chunk in chunks:
        h.update(chunk)
    return str(h.hexdigest())


def mac(secret: bytes, context: str, chunks: Iterable[Any]) -> str:
    """A keyed BLAKE3 of ``chunks`` with a key derived from ``secret`` for ``context`` (so a MAC
    made for one purpose never verifies for another)."""
    key = blake3.blake3(secret, derive_key_context=f"nbcache {context}").digest()
    h = blake3.blake3(key=key, max_threads=blake3.blake3.AUTO)
    for chunk in chunks:
        h.update(chunk)
    return str(h.hexdigest())


def mac_matches(secret: bytes, context: str, chunks: Iterable[Any], expected: str) -> bool:
    return hmac.compare_digest(mac(secret, context, chunks), expected)
