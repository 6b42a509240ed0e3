"""Entries over the local folder store: layout, format, content addressing, sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbcache.store.cache import STORE_FORMAT, Cache, Entry
from nbcache.run.capture import decode_outputs, encode_outputs
from nbcache.errors import CorruptEntryError, StoreFormatError
from nbcache.run.serialize import dump_values
from nbcache.store.backends import LocalFolderStore
from nbcache.store import later
from nbcache.store.manifest import sign_manifest
from nbcache.run.serialize import load_values


def fields(key: str) -> dict:
    return dict(key=key, cell="c", label=None, source="x = 1", created=1.0, runtime=2.0, names=("x",), deleted=(), refs=(),
                inputs={}, components={}, python="3.11", nbcache="0")


def test_layout_and_roundtrip(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path)))
    records = [{"type": "stream", "name": "stdout", "text": "hi\n"}, {"type": "display", "data": {"image/png": b"\x89PNG"}}]
    entry = cache.write(fields("k1"), dump_values({"x": 1}, namespace={}, refs={}), encode_outputs(records))
    assert json.loads((tmp_path / "nbcache-store.json").read_text())["format"] == STORE_FORMAT
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (tmp_path / "manifests" / "k1.json").exists()
    found = cache.lookup("k1")
    assert found == entry
    assert load_values(cache.read_frames(found), namespace={}) == {"x": 1}
    assert decode_outputs(cache.read_output_bytes(found)) == records
    assert not list((tmp_path / "tmp").iterdir())


def test_identical_blobs_are_stored_once(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path)))
    a = cache.write(fields("k1"), dump_values({"x": 1}, namespace={}, refs={}), encode_outputs([]))
    b = cache.write(fields("k2"), dump_values({"x": 1}, namespace={}, refs={}), encode_outputs([]))
    assert a.values == b.values
    assert len(list(cache.store.list("blobs"))) == 2  # one values blob, one outputs blob


def test_other_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "nbcache-store.json").write_text('{"format": 999}')
    with pytest.raises(StoreFormatError, match="999"):
        Cache(LocalFolderStore(str(tmp_path))).ensure_layout()


def test_manifest_naming_another_key_is_corrupt(tmp_path: Path) -> None:
    cache = Cache(LocalFolderStore(str(tmp_path)))
    entry = cache.write(fields("k1"), dump_values({"x": 1}, namespace={}, refs={}), encode_outputs([]))
    (tmp_path / "manifests" / "k2.json").write_bytes(sign_manifest(entry, cache.secret))  # a signed manifest of k1
    with pytest.raises(CorruptEntryError):
        cache.lookup("k2")


def test_outputs_codec_keeps_bytes_and_text() -> None:
    records = [{"type": "display", "data": {"image/png": b"\x00\xff", "text/plain": "t"}, "metadata": {"a": [1]}}]
    assert decode_outputs(encode_outputs(records)) == records


def test_entry_json_roundtrip() -> None:
    from nbcache.store.cache import BlobRef

    e = Entry(values=BlobRef("ab" * 16, 3), outputs=BlobRef("cd" * 16, 4), **fields("k"))
    assert Entry.from_dict(json.loads(e.payload())) == e


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_a_spooled_pickle_is_streamed_into_its_blob(tmp_path: Path, compression: str) -> None:
    import numpy as np

    cache = Cache(LocalFolderStore(str(tmp_path / "cache")), compression=compression)  # type: ignore[arg-type]
    values = {"words": [f"word-{i}" for i in range(600_000)], "numbers": np.arange(1_000_000.0)}
    with dump_values(values, namespace={}, refs={}, spool=str(tmp_path)) as frames:
        assert frames.pickle.spilled  # type: ignore[union-attr]
        entry = cache.write(fields("k1"), frames, encode_outputs([]))
        assert entry.values.size == frames.size
    # A blob this large is written as it is, and compressed after the write (nbcache.store.later).
    assert entry.values.codec == "none" and entry.values.stored_size == entry.values.size
    assert later.wait(60)
    path = tmp_path / "cache" / entry.values.name
    if compression == "zstd":
        assert not path.exists()
        path = path.with_name(path.name + ".zst")
        assert cache.index.stored_bytes() == path.stat().st_size + len(encode_outputs([]))
    assert (path.stat().st_size < frames.size) == (compression == "zstd")
    back = load_values(cache.read_frames(cache.lookup("k1")), namespace={})  # type: ignore[arg-type]
    assert back["words"] == values["words"] and np.array_equal(back["numbers"], values["numbers"])
