"""Signing entries: an HMAC-SHA256 over each manifest, with a secret only its writers know.

A manifest names the checksum of every blob it uses, so a valid signature on the manifest
covers the blobs too (each blob is verified against its checksum before it is unpickled).
Unpickling runs code, so an entry that a stranger could have written must never be loaded:
an entry whose signature does not verify is a miss, never an unpickle.

Where the secret comes from, first match wins:

1. ``NbCache.key`` (``%config``) or the ``key`` argument: a team shares one;
2. the ``NBCACHE_KEY`` environment variable;
3. ``<jupyter data dir>/nbcache/key``, created on first use with mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid

from ..errors import NbCacheError

__all__ = ["ENV_KEY", "KEY_FILE", "default_key_path", "fingerprint", "key_source", "load_key", "sign", "verify"]

ENV_KEY = "NBCACHE_KEY"
KEY_FILE = "key"


def default_key_path() -> str:
    from jupyter_core.paths import jupyter_data_dir

    return os.path.join(jupyter_data_dir(), "nbcache", KEY_FILE)


def load_key(explicit: str | bytes | None = None) -> bytes:
    """The signing secret: the explicit one, else ``$NBCACHE_KEY``, else the per-user key file."""
    if explicit:
        return explicit.encode() if isinstance(explicit, str) else bytes(explicit)
    env = os.environ.get(ENV_KEY)
    if env:
        return env.encode()
    return _key_file(default_key_path())


def key_source(explicit: str | bytes | None = None) -> str:
    """Where :func:`load_key` takes the secret from, in words (for ``nbcache doctor``)."""
    if explicit:
        return "the key given (--key FILE, NbCache.key)"
    if os.environ.get(ENV_KEY):
        return f"${ENV_KEY}"
    return f"the key file {default_key_path()}"


def _key_file(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            key = fh.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    # Write the whole key under a temporary name, then link it into place: two kernels starting
    # at once agree on one key (link fails for the second), and nobody reads a half-written file.
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_hex(32).encode() + b"\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    with open(path, "rb") as fh:
        key = fh.read().strip()
    if not key:  # an empty file in place: signing with an empty key would protect nothing
        raise NbCacheError(f"nbcache: the key file {path} is empty; delete it to make a new key")
    return key


def fingerprint(key: bytes) -> str:
    """A short name for ``key`` that tells keys apart and reveals nothing of them."""
    from .digest import mac

    return mac(key, "key fingerprint", [])[:12]


def sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def verify(key: bytes, payload: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, payload), signature)
