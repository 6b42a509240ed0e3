"""Pinned on-disk format: an accidental change to the manifest or its signature fails loudly."""

from __future__ import annotations

import json

import pytest

from nbcache.store.cache import STORE_FORMAT, BlobRef, Cache, Entry
from nbcache.store.backends import LocalFolderStore
from nbcache.store.manifest import parse_manifest, sign_manifest
from nbcache.units import parse_age, parse_size


def golden_entry() -> Entry:
    return Entry(
        key="0" * 32, cell="c", label="l", source="x = 1", created=1.5, runtime=2.0, names=("x",),
        deleted=(), refs=(), inputs={"a": "ff"}, components={"python": "3.11"},
        values=BlobRef("1" * 32, 10, "none", 10), outputs=BlobRef("2" * 32, 20, "zstd", 9),
        python="3.11", nbcache="0.1.0", extra={}, packages={"python": "3.11.7"},
    )


def test_manifest_layout_and_signature_are_pinned(tmp_path: object) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path)), key="golden")
    manifest = json.loads(sign_manifest(golden_entry(), cache.secret))
    assert STORE_FORMAT == 2
    assert sorted(manifest) == ["entry", "format", "hmac_sha256"]
    assert manifest["format"] == 2
    assert manifest["entry"]["outputs"] == {"id": "2" * 32, "size": 20, "codec": "zstd", "stored": 9}
    assert manifest["hmac_sha256"] == "2f39cc7ccb553d7ba444bbc75c9689a2f67e379bc9309eb6d2366a4854c749e4"
    assert golden_entry().outputs.name == f"blobs/22/{'2' * 32}.zst"
    assert golden_entry().values.name == f"blobs/11/{'1' * 32}"
    assert parse_manifest(json.dumps(manifest).encode(), "0" * 32, cache.secret) == golden_entry()


@pytest.mark.parametrize(
    "text, size",
    [("20GB", 20 * 10**9), ("500MB", 500 * 10**6), ("1GiB", 2**30), ("1.5kB", 1500), ("42", 42), ("10 gb", 10**10)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text, seconds", [("30d", 30 * 86400), ("12h", 43200), ("90min", 5400), ("2w", 14 * 86400), ("5", 5)])
def test_ages(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("bad", ["", "lots", "10XB", "-1GB"])
def test_bad_sizes_say_how_to_write_them(bad: str) -> None:
    with pytest.raises(ValueError, match="like 500MB"):
        parse_size(bad)
