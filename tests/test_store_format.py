"""Pinned on-disk format: an accidental change to the manifest or its signature fails loudly,
and an entry of the previous format (``fixtures/store-format-2``, written by nbcache before the
bump) is a clean miss with one note, never an error."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import nbcache_magics, run_cli
from nbcache.errors import CorruptEntryError, OutdatedEntryError, SignatureError
from nbcache.store import digest, signing
from nbcache.store.cache import STORE_FORMAT, BlobRef, Cache, Entry
from nbcache.store.backends import LocalFolderStore
from nbcache.store.manifest import _canonical, parse_manifest, sign_manifest
from nbcache.units import parse_age, parse_size

FORMAT_2 = Path(__file__).with_name("fixtures") / "store-format-2"
FORMAT_2_KEY = "f2" + "0" * 30


def golden_entry() -> Entry:
    return Entry(
        key="0" * 32, cell="c", label="l", source="x = 1", created=1.5, runtime=2.0, names=("x",),
        deleted=(), refs=(), inputs={"a": "ff"}, components={"python": "3.11"},
        values=BlobRef("1" * 64, 10, "none", 10), outputs=BlobRef("2" * 64, 20, "zstd", 9),
        python="3.11", nbcache="0.1.0", extra={}, packages={"python": "3.11.7"},
    )


def test_manifest_layout_and_signature_are_pinned(tmp_path: object) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path)), key="golden")
    manifest = json.loads(sign_manifest(golden_entry(), cache.secret))
    assert STORE_FORMAT == 3
    assert sorted(manifest) == ["entry", "format", "hmac_sha256"]
    assert manifest["format"] == 3
    assert manifest["entry"]["outputs"] == {"id": "2" * 64, "size": 20, "codec": "zstd", "stored": 9}
    assert manifest["hmac_sha256"] == "db3734024f474fb6611ae12d2fd82ca18d4067ad3dfc7328d176f790bce90833"
    assert golden_entry().outputs.name == f"blobs/22/{'2' * 64}.zst"
    assert golden_entry().values.name == f"blobs/11/{'1' * 64}"
    assert parse_manifest(json.dumps(manifest).encode(), "0" * 32, cache.secret) == golden_entry()


def test_the_signed_entry_is_a_slice_of_the_manifest_and_other_layouts_still_verify(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path)), key="golden")
    raw = sign_manifest(golden_entry(), cache.secret)
    payload = _canonical(golden_entry().body())
    assert raw == b'{"entry":' + payload + b',"format":3,"hmac_sha256":"db3734024f474fb6611ae12d2fd82ca18d4067ad3dfc7328d176f790bce90833"}'
    with monkeypatch.context() as patch:  # a hit checks the bytes as they are: no re-encoding
        patch.setattr("nbcache.store.manifest._canonical", lambda data: pytest.fail("re-encoded"))
        assert parse_manifest(raw, "0" * 32, cache.secret) == golden_entry()
    # Written by an earlier nbcache (indented) or rewritten by a tool in another key order: the
    # same JSON, read the long way.
    for layout in (json.dumps(json.loads(raw), indent=1, sort_keys=True), json.dumps(json.loads(raw))):
        assert parse_manifest(layout.encode(), "0" * 32, cache.secret) == golden_entry()


def test_small_blobs_sit_before_the_signed_entry_outside_the_signature(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path)), key="golden")
    held = {"1" * 64: "aGVsbG8=", "2" * 64: "d29ybGQ="}
    raw = sign_manifest(dataclasses.replace(golden_entry(), inline=held), cache.secret)
    plain = sign_manifest(golden_entry(), cache.secret)
    # the same signed entry, the same signature: the small blobs are checked by their ids instead
    assert raw == b'{"data":' + _canonical(held) + b"," + plain[1:]
    assert json.loads(raw)["entry"] == json.loads(plain)["entry"]
    with monkeypatch.context() as patch:
        patch.setattr("nbcache.store.manifest._canonical", lambda data: pytest.fail("re-encoded"))
        entry = parse_manifest(raw, "0" * 32, cache.secret)
    assert entry == golden_entry() and entry.inline == held
    for layout in (json.dumps(json.loads(raw), indent=1, sort_keys=True), json.dumps(json.loads(raw))):  # other layouts
        assert parse_manifest(layout.encode(), "0" * 32, cache.secret).inline == held
    # changed, the part outside the signature is at worst ignored (readers check each against its id)
    for data in (b'"data":[1]', b'"data":{"x":2}', b'"data":"text"'):
        changed = raw.replace(b'"data":' + _canonical(held), data)
        assert changed != raw
        found = parse_manifest(changed, "0" * 32, cache.secret)
        assert found == golden_entry() and found.inline == {}
    # made to break the reader (nested past the parser's depth, far too long, split where the
    # entry is not: still valid JSON), it is ignored or, at worst, the manifest is unreadable
    deep = b'"data":{"' + b"1" * 64 + b'":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for data in (b'"data":{"x":' + b"[" * 100 + b"]" * 100 + b"}", b'"data":{"x":"' + b"A" * 20_000 + b'"}', b'"data":{"x":{},"entry":"s"}', deep):
        changed = raw.replace(b'"data":' + _canonical(held), data)
        try:
            found = parse_manifest(changed, "0" * 32, cache.secret)
        except CorruptEntryError:
            assert data is deep, data[:40]
            continue
        assert found == golden_entry() and not set(found.inline) & set(held), data[:40]
    # and the signed part is checked as ever
    with pytest.raises(SignatureError):
        parse_manifest(raw.replace(b'"cell":"c"', b'"cell":"d"'), "0" * 32, cache.secret)


@pytest.mark.parametrize(
    "change, error",
    [
        ((b'"cell":"c"', b'"cell":"d"'), SignatureError),  # the entry's bytes
        ((b'"hmac_sha256":"db37', b'"hmac_sha256":"db38'), SignatureError),
        ((b',"format":3,', b',"format":2,'), OutdatedEntryError),
        ((b',"format":3,', b',"format":9,'), CorruptEntryError),
        ((b'"label":"l"', b'"label":"l","x":1'), SignatureError),  # a field added
    ],
)
def test_a_changed_manifest_is_refused_in_either_layout(tmp_path: object, change: tuple[bytes, bytes], error: type) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path)), key="golden")
    raw = sign_manifest(golden_entry(), cache.secret)
    changed = raw.replace(*change)
    assert changed != raw
    for layout in (changed, json.dumps(json.loads(changed), indent=1, sort_keys=True).encode()):  # either way of reading
        with pytest.raises(error):
            parse_manifest(layout, "0" * 32, cache.secret)
    with pytest.raises(SignatureError):
        parse_manifest(raw, "0" * 32, b"another key")


def test_blob_ids_are_blake3_and_checkpoint_macs_are_pinned() -> None:
    # BLAKE3's own test vector for the empty input, then our digest and MAC of known bytes.
    assert digest.hexdigest([]) == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert digest.hexdigest([b"nb", b"cache"]) == "67e8a28e306865ea4e177624ba688fc28032058d6c0e645590d8890da1c012ab"
    assert digest.mac(b"golden", "checkpoint", [b"c\0", b"x"]) == "ac1f103536569501ca85f5a0e1564e2e1859c7b81d7f5f5d040a9112cafbc874"
    assert digest.mac(b"golden", "other purpose", [b"c\0", b"x"]) != digest.mac(b"golden", "checkpoint", [b"c\0", b"x"])


def format_2_store(tmp_path: Path) -> Path:
    root = tmp_path / "old"
    shutil.copytree(FORMAT_2, root)
    return root


def test_a_format_2_entry_is_a_clean_miss(tmp_path: Path) -> None:
    root = format_2_store(tmp_path)
    cache = Cache(LocalFolderStore(str(root)), key="golden")
    with pytest.raises(OutdatedEntryError, match="older nbcache \\(store format 2, this one uses 3\\)"):
        cache.lookup(FORMAT_2_KEY)
    # The folder stays usable: new entries are written beside the old one, in format 3.
    from conftest import write_entry

    new = write_entry(cache, "a" * 32, value=1)
    assert cache.lookup(new.key) == new and new.format == 3
    assert json.loads((root / "nbcache-store.json").read_text()) == {"format": 2}  # older readers still open it
    assert [s.key for s in cache.stats()] == [new.key]
    [old] = cache.index.foreign()
    assert (old.key, old.reason, old.label) == (FORMAT_2_KEY, "store format 2", "golden")
    cache.close()


def test_ls_all_and_clear_foreign_see_the_format_2_entry(tmp_path: Path) -> None:
    root = format_2_store(tmp_path)
    env = {"NBCACHE_KEY": "golden"}
    assert "no entries" in run_cli("--dir", str(root), "ls", env=env).stdout
    listing = run_cli("--dir", str(root), "ls", "--all", env=env).stdout
    assert FORMAT_2_KEY[:12] in listing and "foreign: store format 2" in listing
    assert "removed 1 foreign" in run_cli("--dir", str(root), "clear", "--foreign", env=env).stdout
    assert not (root / "manifests" / f"{FORMAT_2_KEY}.json").exists()
    assert not [p for p in (root / "blobs").rglob("*") if p.is_file()]  # its blobs went with it: nothing else used them


def _as_format_2(manifest: dict[str, Any], secret: bytes) -> bytes:
    """The manifest as nbcache wrote it before the bump: format 2, xxh3 ids, the same HMAC."""
    old = json.loads((FORMAT_2 / "manifests" / f"{FORMAT_2_KEY}.json").read_text())
    body = dict(old["entry"], key=manifest["entry"]["key"], cell=manifest["entry"]["cell"])
    return json.dumps({"format": 2, "entry": body, "hmac_sha256": signing.sign(secret, _canonical(body))}).encode()


def test_a_cell_whose_entry_is_format_2_runs_once_with_one_note(ip: Any, capfd: Any) -> None:
    cell = "%%cache\nx = [1, 2, 3]\nprint('ran')\n"
    assert ip.run_cell(cell).success
    cache = nbcache_magics(ip).open_cache()
    key = nbcache_magics(ip).engine.last.key
    path = Path(cache.store.local_path(cache.manifest_name(key)))  # type: ignore[attr-defined]
    path.write_bytes(_as_format_2(json.loads(path.read_text()), cache.secret))
    del ip.user_ns["x"]
    capfd.readouterr()
    assert ip.run_cell(cell).success
    out, err = capfd.readouterr()
    assert out == "ran\n" and ip.user_ns["x"] == [1, 2, 3]
    notes = [line for line in err.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("nbcache:") and "older nbcache" in notes[0], err
    assert nbcache_magics(ip).engine.last.status == "stored"
    del ip.user_ns["x"]
    assert ip.run_cell(cell).success
    assert nbcache_magics(ip).engine.last.status == "hit" and ip.user_ns["x"] == [1, 2, 3]


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
