"""Runs of strings (nbcache.key.fingerprint.strings): the C extension and the pure-Python encoder
write the same bytes, so keys are the same with or without a compiler; anything but exactly a
``str`` leaves the run; the build hook compiles the extension, or warns and lets the build go on."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xxhash

from nbcache.key.fingerprint import fingerprint as fp
from nbcache.key.fingerprint import strings

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_extension_is_built_here() -> None:
    # Not skipped when missing: `make` compiles it, and without it the fast path is untested.
    from nbcache.key.fingerprint import _strings

    assert strings.NATIVE
    assert strings.encode_strings is _strings.encode_strings


def test_the_encoding_is_length_then_utf8() -> None:
    # The format itself, pinned: 8-byte little-endian lengths, surrogates as surrogatepass writes them.
    assert strings.encode_strings(["ab", "", "\u00e9", "\ud800", "\U0001f600"]) == (
        b"\x02" + bytes(7) + b"ab"
        + bytes(8)
        + b"\x02" + bytes(7) + b"\xc3\xa9"
        + b"\x03" + bytes(7) + b"\xed\xa0\x80"
        + b"\x04" + bytes(7) + b"\xf0\x9f\x98\x80"
    )


ACCENTS = ["", "\u00e9", "\u00e9\u20ac"]
RUNS: dict[str, list[str]] = {
    "empty list": [],
    "one empty string": [""],
    "empty strings": [""] * 20,
    "ascii": ["a", "bc", "hello world", "x" * 300],
    "latin-1": ["\u00e9t\u00e9", "\u00ff", "\x80", "na\u00efve", "\x7f\x80"],
    "bmp": ["\u20ac", "\u0800", "\u07ff", "\uffff", "\u4e2d\u6587", "mixed \u00e9 \u20ac a"],
    "astral": ["\U0001f600", "\U00010000", "\U0010ffff", "a\U0001f600\u00e9\u20ac"],
    "lone surrogates": ["\ud800", "\udfff", "a\udc80b", "\ud83d\ude00", "\U0001f600\ud800", "\u00e9\udfff"],
    "very long": ["a" * 1_000_003, "\u00e9" * 700_001, "\u20ac" * 500_000, "\U0001f600" * 300_001],
    "one element": ["just one"],
    "1e5 elements": [f"w{i % 977}-{ACCENTS[i % 3]}{i}" for i in range(100_000)],
}


@pytest.mark.parametrize("items", list(RUNS.values()), ids=list(RUNS))
def test_the_extension_and_python_write_the_same_bytes(items: list[str]) -> None:
    expected = b"".join(
        struct.pack("<Q", len(b)) + b for b in (s.encode("utf-8", "surrogatepass") for s in items)
    )
    assert strings.encode_strings(items) == expected
    assert strings.encode_strings_python(items) == expected
    assert strings.encode_strings(tuple(items)) == expected
    assert strings.encode_strings_python(tuple(items)) == expected
    array = np.array(items + [None], dtype=object)[:-1]  # dtype=object, never numpy's <U strings
    assert array.flags.c_contiguous
    assert strings.encode_strings(array) == expected
    assert strings.encode_strings_python(array) == expected


@pytest.mark.parametrize("items", list(RUNS.values()), ids=list(RUNS))
@pytest.mark.parametrize("chunk", [1, 7, 64, strings.CHUNK])
def test_the_digest_of_a_run_does_not_depend_on_its_pieces(items: list[str], chunk: int, monkeypatch) -> None:
    expected = xxhash.xxh3_128(strings.encode_strings(items)).digest()
    assert strings.digest_strings(items, chunk) == expected
    monkeypatch.setattr(strings, "NATIVE", False)
    assert strings.digest_strings(items, chunk) == expected


class Tagged(str):
    pass


NOT_STR = [Tagged("a"), b"a", None, np.str_("a"), 1, 1.5, ["a"]]


@pytest.mark.parametrize("intruder", NOT_STR, ids=[type(x).__name__ for x in NOT_STR])
@pytest.mark.parametrize("where", [0, 17, 99])
def test_anything_but_exactly_a_str_leaves_the_run(intruder: Any, where: int) -> None:
    items: list[Any] = [f"s{i}" for i in range(100)]
    items[where] = intruder
    array = np.empty(100, dtype=object)
    for i, x in enumerate(items):
        array[i] = x
    for encode in (strings.encode_strings, strings.encode_strings_python):
        assert encode(items) is None
        assert encode(tuple(items)) is None
        assert encode(array) is None
    assert strings.digest_strings(items, chunk=1) is None  # after 'where' pieces already hashed
    from nbcache.key.fingerprint._strings import encode_chunk

    assert encode_chunk(items, 0, 1 << 20) is None


@pytest.mark.parametrize(
    "value",
    [np.array(["a", "b", "c", "d"], dtype=object)[::2], np.array([["a", "b"], ["c", "d"]], dtype=object), np.arange(3), 5, "ab", {"a": 1}],
    ids=["strided", "2-d", "int64 array", "int", "str", "dict"],
)
def test_what_is_not_a_sequence_or_a_contiguous_object_buffer_raises(value: Any) -> None:
    for encode in (strings.encode_strings, strings.encode_strings_python):
        with pytest.raises((TypeError, ValueError)):
            encode(value)


def test_a_strided_object_array_has_the_key_of_its_copy() -> None:
    base = np.array([f"w{i}\u00e9" for i in range(40)], dtype=object)
    strided = base[::2]
    assert not strided.flags.c_contiguous
    assert fp(strided) == fp(strided.copy()) == fp(np.array(base.tolist()[::2], dtype=object))
    assert fp(strided) != fp(base[1::2])


def test_encoding_leaves_no_utf8_copy_in_the_strings() -> None:
    items = ["\u00e9t\u00e9 " + str(i) for i in range(20)] + ["\u20ac" + str(i) for i in range(20)]
    sizes = [sys.getsizeof(s) for s in items]
    strings.encode_strings(items)
    strings.digest_strings(items)
    assert [sys.getsizeof(s) for s in items] == sizes
    # What the test would see if one were kept (PyUnicode_AsUTF8AndSize caches one):
    ctypes.pythonapi.PyUnicode_AsUTF8AndSize.argtypes = [ctypes.py_object, ctypes.c_void_p]
    ctypes.pythonapi.PyUnicode_AsUTF8AndSize.restype = ctypes.c_void_p
    ctypes.pythonapi.PyUnicode_AsUTF8AndSize(items[0], None)
    assert sys.getsizeof(items[0]) > sizes[0]


# Values whose keys go through runs of strings: lists, tuples, object arrays, pandas object columns
# and indexes, and strings that make a key differ (lone surrogates, non-ASCII).
def _values() -> dict[str, Any]:
    words = [f"w{i % 97}-{i}" for i in range(500)]
    return {
        "list": words,
        "tuple": tuple(words),
        "non-ascii list": [w + "\u00e9\u20ac\U0001f600\ud800" for w in words],
        "object array": np.array(words, dtype=object),
        "2-d object array": np.array(words, dtype=object).reshape(20, 25),
        "object column": pd.DataFrame({"w": pd.Series(words, dtype=object), "n": range(500)}),
        "object index": pd.Series(range(500), index=pd.Index(words, dtype=object)),
        "python strings": pd.Series(pd.array(words, dtype=pd.StringDtype("python"))),
        "nested": {"a": [words, words[:20]], "b": (words[::-1],)},
    }


def _digests() -> dict[str, str]:
    return {name: fp(value).hex() for name, value in _values().items()}


SCRIPT = """
import json, sys
if sys.argv[1] == "python":  # as on a machine where the extension was not compiled
    sys.modules["nbcache.key.fingerprint._strings"] = None
sys.path.insert(0, sys.argv[2])
import test_fingerprint_strings as T
from nbcache.key.fingerprint import strings
print(json.dumps({"native": strings.NATIVE, "digests": T._digests()}))
"""


def _elsewhere(encoder: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, encoder, str(Path(__file__).parent)],
        env={**os.environ, "PYTHONHASHSEED": "7"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_keys_are_the_same_in_other_processes_with_or_without_the_extension() -> None:
    here = _digests()
    native, python = _elsewhere("native"), _elsewhere("python")
    assert native["native"] and not python["native"]
    assert native["digests"] == here
    assert python["digests"] == here


def test_keys_are_the_same_through_the_python_encoder(monkeypatch) -> None:
    here = _digests()
    monkeypatch.setattr(strings, "NATIVE", False)
    assert _digests() == here


@pytest.mark.parametrize("name", list(_values()))
def test_a_one_element_change_changes_the_key(name: str) -> None:
    value = _values()[name]
    before = fp(value)
    if isinstance(value, pd.DataFrame):
        value.loc[250, "w"] = "w-changed"
    elif isinstance(value, pd.Series):
        value = value.rename(index={value.index[3]: "x"}) if name == "object index" else value.where(value.index != 499, "x")
    elif isinstance(value, np.ndarray):
        value.flat[7] = value.flat[7] + " "
    elif isinstance(value, dict):
        value["a"][1][19] = "w"
    elif isinstance(value, tuple):
        value = value[:-1] + ("x",)
    else:
        value[10] = value[10][:-1] + "\udc80"
    assert fp(value) != before


# -- the build hook ----------------------------------------------------------------------------
@pytest.fixture
def hook() -> ModuleType:
    return _load(ROOT / "hatch_build.py", "nbcache_hatch_build")


def test_the_extension_compiles_without_warnings(hook: ModuleType, tmp_path: Path) -> None:
    target = tmp_path / ("_strings" + sysconfig.get_config_var("EXT_SUFFIX"))
    hook.compile_extension(target, flags=("-Werror",))
    built = _load(target, "_strings")
    items = RUNS["lone surrogates"] + RUNS["astral"]
    assert built.encode_strings(items) == strings.encode_strings_python(items)


def test_the_hook_ships_the_library_in_a_platform_wheel(hook: ModuleType, monkeypatch, tmp_path: Path) -> None:
    target = tmp_path / "_strings.so"
    monkeypatch.setattr(hook, "library_path", lambda: target)
    monkeypatch.setattr(hook, "ROOT", tmp_path)
    build_data: dict[str, Any] = {"artifacts": [], "pure_python": True, "infer_tag": False}
    hook.StringsExtensionHook.initialize(SimpleNamespace(), "standard", build_data)
    assert target.exists()
    assert build_data == {"artifacts": ["_strings.so"], "pure_python": False, "infer_tag": True}


def test_without_a_compiler_the_hook_warns_and_the_build_goes_on(hook: ModuleType, monkeypatch, capsys, tmp_path: Path) -> None:
    target = tmp_path / "_strings.so"
    monkeypatch.setattr(hook, "library_path", lambda: target)
    real = sysconfig.get_config_var
    monkeypatch.setattr(hook.sysconfig, "get_config_var", lambda name: "/no/such/cc" if name == "CC" else real(name))
    build_data: dict[str, Any] = {"artifacts": [], "pure_python": True, "infer_tag": False}
    hook.StringsExtensionHook.initialize(SimpleNamespace(), "editable", build_data)
    assert "WARNING" in capsys.readouterr().err
    assert not target.exists()
    assert build_data == {"artifacts": [], "pure_python": True, "infer_tag": False}
