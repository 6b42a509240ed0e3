"""Fingerprints: equal values agree, different values never share one through a shortcut."""

from __future__ import annotations

import functools
import json
import math
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbcache.key.fingerprint.code as code_encoding
from nbcache.errors import FingerprintError
from nbcache.key.fingerprint import Fingerprinter, Substitutes
from nbcache.key.fingerprint import fingerprint as fp


@pytest.mark.parametrize(
    "a, b",
    [
        ([1, 2], [12]),
        (1, 1.0),
        (1, True),
        ("1", 1),
        (b"x", "x"),
        (0.0, -0.0),
        ((1,), [1]),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # insertion order is observable
        (np.arange(4, dtype="i4"), np.arange(4, dtype="u4")),
        (np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(3, 2)),
        (np.zeros((2, 2), order="C"), np.zeros((2, 2), order="F")),
        (pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"b": [1, 2]})),
        (pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [1, 2]}, index=[1, 2])),
        (pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [1.0, 2.0]})),
        (pd.Series(["x", "y"]), pd.Series(["xy", ""])),
        (pd.Series(["a", None]), pd.Series(["a", "None"])),
        (pd.Series(pd.Categorical(["a", "b"])), pd.Series(pd.Categorical(["a", "b"], categories=["b", "a"]))),
        (np.array(["ab", "c"], dtype=object), np.array(["a", "bc"], dtype=object)),
    ],
)
def test_different_values_differ(a, b) -> None:
    assert fp(a) != fp(b)


def test_large_array_every_element_counts() -> None:
    a = np.zeros(10_000_000)
    b = a.copy()
    b[7_654_321] = 1e-300
    assert fp(a) != fp(b)


def test_aliasing_is_part_of_the_value() -> None:
    inner = [1]
    assert fp([inner, inner]) != fp([inner, [1]])


def test_equal_values_agree() -> None:
    df = pd.DataFrame({"a": [1, 2], "s": ["x", "y"], "t": pd.date_range("2024", periods=2, tz="UTC")})
    assert fp(df) == fp(df.copy())
    assert fp({3, 1, 2}) == fp({2, 3, 1})
    cyc: list = []
    cyc.append(cyc)
    assert fp(cyc) == fp(cyc)
    assert fp(np.arange(10.0)[::2]) == fp(np.arange(10.0)[::2].copy())


def test_functions_cover_the_globals_they_use() -> None:
    ns: dict = {}
    exec("K = 1\ndef helper(x):\n    return x + K\ndef f(x):\n    return helper(x)\n", ns)
    before = fp(ns["f"])
    ns["K"] = 2
    assert fp(ns["f"]) != before
    exec("def helper(x):\n    return x - K\n", ns)
    ns["K"] = 1
    assert fp(ns["f"]) != before


def test_functions_ignore_line_numbers_and_file_names() -> None:
    a: dict = {}
    b: dict = {}
    exec(compile("def f(x):\n    return x * 2\n", "<cell-1>", "exec"), a)
    exec(compile("\n\n\ndef f(x):\n    return x * 2\n", "<cell-9>", "exec"), b)
    assert fp(a["f"]) == fp(b["f"])


def test_partials_and_instances() -> None:
    ns: dict = {}
    exec("class P:\n    def __init__(self, v):\n        self.v = v\n", ns)
    P = ns["P"]
    assert fp(P(1)) == fp(P(1)) != fp(P(2))
    assert fp(functools.partial(max, 1)) != fp(functools.partial(max, 2))


@pytest.mark.parametrize("value", [(i for i in range(3)), threading.Lock()])
def test_unhashable_values_raise(value) -> None:
    with pytest.raises(FingerprintError):
        fp(value)


def test_a_class_fingerprints_the_same_whatever_the_order_of_its_members() -> None:
    # cloudpickle rebuilds a notebook's class with __dict__ and __doc__ before the methods
    def init(self, v):
        self.v = v

    one = type("Box", (), {"__init__": init, "__doc__": None})
    other = type("Box", (), {"__doc__": None, "__init__": init})
    assert list(vars(one)) != list(vars(other))
    assert fp(one) == fp(other)
    assert fp(one) != fp(type("Box", (), {"__init__": init, "__doc__": "changed"}))


def test_golden_digests() -> None:
    # Pinned: an accidental change of the encoding must fail here (then bump FINGERPRINT_VERSION).
    assert fp([1, "a", 2.5, None, (True,), {"k": b"v"}]).hex() == GOLDEN_CONTAINER
    assert fp(np.arange(5, dtype="<i8")).hex() == GOLDEN_ARRAY
    # The string column's storage is explicit: pandas 3's default `str` is backed by pyarrow when it
    # is installed (and by Python objects when not), and the storage is part of the value.
    strings = pd.array(["x", "y"], dtype=pd.StringDtype("python", na_value=np.nan))
    assert fp(pd.DataFrame({"a": [1, 2], "b": strings})).hex() == GOLDEN_FRAME


GOLDEN_CONTAINER = "dc18a2eda1dfa5f0e86b5eb2cbfe6ee5"
GOLDEN_ARRAY = "430d433ab6837550d3aaccd1c7feb62d"
GOLDEN_FRAME = "55c1fd8a28574c3241d55be5a2af27fb"


# One pinned value per encoder family, so an accidental change of one encoding fails here.
def _cycle() -> list:
    cyc: list = []
    cyc.append(cyc)
    return cyc


def _with_attrs(df: pd.DataFrame) -> pd.DataFrame:
    df.attrs["source"] = "file.csv"
    return df


_SHARED = [1]
GOLDEN_VALUES = [
    ("scalars", lambda: [None, True, 0, -1, 2**70, -0.0, math.nan, 1 + 2j, "\u00e9\ud800", b"b", bytearray(b"ba"), ...], "ad108803a450f3d44cce445345c887da"),
    ("containers", lambda: ({3, 1, 2}, frozenset({"a"}), [_SHARED, _SHARED], _cycle(), {"k": ()}), "9dd92dc9e59266d7ceeb6dec205e7f68"),
    ("ndarray fortran", lambda: np.asfortranarray(np.arange(6, dtype="<f8").reshape(2, 3)), "8bb90bc3bce23b72205a1eb7bbd9528d"),
    ("ndarray structured", lambda: np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]), "b4213ae0df9c6d7b3f43ebedaad6bd0a"),
    ("ndarray strided", lambda: np.arange(10, dtype="<i2")[::3], "35696be1713002869da8a6cb7f5ba3c1"),
    ("ndarray of strings", lambda: np.array(["ab", "c"], dtype=object), "f638db21a3acacf06b425811b858f3ad"),
    ("ndarray of objects", lambda: np.array([1, "a", None], dtype=object), "d0c6cbe60c69f1355770bdf0c0c46e20"),
    ("numpy scalars", lambda: [np.float32(1.5), np.bool_(True), np.datetime64("2020-01-01")], "fec709b0c82bb6fbae67014d887a032d"),
    ("dtype", lambda: np.dtype("<M8[ns]"), "eb5f7504ad3c5865cfd33b08cdf8c044"),
    ("series categorical", lambda: pd.Series(pd.Categorical(["a", "b"]), name="c"), "728d39ce409d6d6cdfc57f92d5f97f53"),
    ("series nullable", lambda: pd.Series([1, None], dtype="Int64"), "b451854c7ee0df008be43c9edbb04f1a"),
    ("series python strings", lambda: pd.Series(["a", None], dtype="string[python]"), "5d930d572009f261402333a58ed0eefe"),
    ("range index", lambda: pd.RangeIndex(2, 20, 3, name="r"), "437537f9d640a033bd0e043512c9fe68"),
    ("multi index", lambda: pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["x", None]), "efeec5418e287d0fd78f429c2bb1d7d7"),
    ("datetime tz", lambda: pd.date_range("2024", periods=3, freq="D", tz="Europe/Paris"), "3f8537a0b4b2eb50c8a431047b8af794"),
    ("frame with attrs", lambda: _with_attrs(pd.DataFrame({"a": [1.5], "p": pd.period_range("2020", periods=1, freq="M")})), "20ec53892ab3f6bf034fc8ca76d1fbe2"),
]


@pytest.mark.parametrize("make, digest", [v[1:] for v in GOLDEN_VALUES], ids=[v[0] for v in GOLDEN_VALUES])
def test_golden_digests_per_family(make, digest) -> None:
    assert fp(make()).hex() == digest


CODE = """
import functools
SCALE = 3
def helper(x, k=2, *, m=None):
    return x * SCALE + k
def make(n):
    def inner(x):
        return helper(x) + n
    return inner
class Shape:
    sides = 4
    def __init__(self, name):
        self.name = name
    @property
    def area(self):
        return self.sides * SCALE
    @staticmethod
    def unit():
        return 1
    def grow(self, by):
        return Shape(self.name * by)
class Record:
    def __init__(self, names):
        self.names = names
        self.tags = set(names)
    def __getstate__(self):
        return self.__dict__
@functools.lru_cache
def cached(x):
    return x
"""
GOLDEN_CODE = [  # names are looked up in the namespace CODE runs in
    ("function", lambda ns: ns["helper"], "964e3cbf9f74419a90ee63242a771979"),
    ("closure", lambda ns: ns["make"](2), "51f1ba4dcc111658b2a400de30920763"),
    ("class", lambda ns: ns["Shape"], "870ac6d264fe2afb71367489b5339793"),
    ("instance", lambda ns: ns["Shape"]("sq"), "1f2d5df10fe410dc79670070a40b926e"),
    ("method, partial, wrapper", lambda ns: [ns["Shape"]("sq").grow, functools.partial(ns["helper"], 1), ns["cached"]], "a05ea482e861189f5d0bbaab46c52cb8"),
    # The stand-ins' marker keeps its old pickled name (a05677b, before the package moved under
    # nbcache.key). Classes, and so the three digests above and this one, are encoded members by
    # name since issue 16 (a class a hit restored has them in another order): a key made before
    # that with a class in it is a clean miss, never another class's hit.
    ("through pickle", lambda ns: ns["Record"](["a", "b", "a"]), "404d3782df251a4ed268afd9fab57788"),
    ("library code", lambda ns: [json.dumps, json, json.JSONDecoder], "0d85c085ab531cec2f0ddc4bd8779bc2"),
]


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="bytecode differs between Python versions: pinned on 3.11")
@pytest.mark.parametrize("make, digest", [v[1:] for v in GOLDEN_CODE], ids=[v[0] for v in GOLDEN_CODE])
def test_golden_digests_of_code(make, digest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Installed code hashes with the library's version: fixed here, so only the encoding counts.
    monkeypatch.setattr(code_encoding, "module_version", lambda name: "1.0")
    monkeypatch.setattr(code_encoding, "module_digest", lambda name: "lib:1.0")
    ns: dict = {"__name__": "__main__"}  # a notebook's code, without this module's __future__ flags
    exec(compile(CODE, "<cell>", "exec", dont_inherit=True), ns)
    assert fp(make(ns)).hex() == digest


def test_wrapped_functions_cover_the_wrapped_code_and_its_globals() -> None:
    ns: dict = {}
    exec("import functools\ngap = 1\n@functools.lru_cache\ndef dist(a):\n    return a + gap\n", ns)
    before = fp(ns["dist"])
    ns["gap"] = 2
    assert fp(ns["dist"]) != before
    assert fp([ns["dist"]]) != fp([ns["dist"].__wrapped__])  # the wrapper is not the function


def test_attribute_names_are_not_globals() -> None:
    ns: dict = {}
    exec("def f(x):\n    return x.mean()\n", ns)
    before = fp(ns["f"])
    ns["mean"] = 3
    assert fp(ns["f"]) == before


# Objects through pickle: what pickle encodes beyond the value stays out of the fingerprint.
class Record:
    def __init__(self, names: list[str]):
        self.names = names
        self.tags = set(names)

    def __getstate__(self) -> dict:  # a state hook: fingerprinted through pickle
        return self.__dict__


def test_string_identity_is_not_part_of_the_value() -> None:
    # Unpickling interns attribute names, so shared (identical) strings appear where there were
    # equal ones: seen with statsmodels results restored from the cache.
    shared = "".join(["co", "lumn"])
    a = Record([shared, shared])
    b = Record(["".join(["co", "lumn"]), "".join(["co", "lumn"])])
    assert a.names[0] is a.names[1] and b.names[0] is not b.names[1]
    assert fp(a) == fp(b)
    assert fp(a) == fp(pickle.loads(pickle.dumps(a)))
    assert fp(a) != fp(Record(["column", "row"]))


def test_set_order_inside_objects_does_not_depend_on_the_hash_seed(tmp_path) -> None:
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from test_fingerprint import Record\nfrom nbcache.key.fingerprint import fingerprint\n"
        "print(fingerprint(Record([f'name{i}' for i in range(50)])).hex())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script, str(Path(__file__).parent)],
            env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1, digests


class Lossy(dict):
    """Like scikit-learn's Bunch: its pickle round trip drops an attribute."""

    def __init__(self, **kwargs: object):
        super().__init__(kwargs)
        self.__dict__["_notes"] = {}

    def __setstate__(self, state: object) -> None:
        pass


def test_substitutes_stand_for_restored_objects_until_they_change() -> None:
    original = Lossy(a=[1, 2])
    before = fp(original)
    recorded = Fingerprinter().pickle_digest(original)
    assert recorded is not None and Fingerprinter().pickle_digest([original]) is None
    restored = pickle.loads(pickle.dumps(original))
    assert fp(restored) != before  # the round trip is inexact
    subs = Substitutes()
    subs.add(restored, recorded)
    assert Fingerprinter(subs).digest(restored) == before
    assert Fingerprinter(subs).digest([restored]) == fp([original])  # inside containers too
    restored["a"].append(3)  # changed: its own fingerprint again
    assert Fingerprinter(subs).digest(restored) != before
    other = Lossy(a=[1, 2])
    assert Fingerprinter(subs).digest(other) == before  # an equal original fingerprints alike anyway
    subs.prune({"x": other})
    assert len(subs) == 0


class PickledLater:
    def __init__(self) -> None:
        self.v = 1


def test_pickling_an_instance_does_not_change_its_class() -> None:
    # copyreg caches __slotnames__ on a class the first time one of its instances is pickled
    before = fp(PickledLater)
    pickle.dumps(PickledLater())
    assert "__slotnames__" in vars(PickledLater)
    assert fp(PickledLater) == before


def test_temporaries_do_not_become_back_references() -> None:
    # A class's properties encode as temporary (fget, fset, fdel) tuples; a walk keeps what it
    # remembered alive, so the second tuple cannot take the first one's id and encode as a
    # back-reference to it (which would leave the second getter out of the fingerprint).
    source = "class C:\n    @property\n    def a(self):\n        return 1\n    @property\n    def b(self):\n        return {}\n"
    one: dict = {"__name__": "__main__"}  # a notebook's class
    two: dict = {"__name__": "__main__"}
    exec(source.format(2), one)
    exec(source.format(3), two)
    assert fp(one["C"]) != fp(two["C"])


def test_names_inside_encodings_keep_their_pre_move_module() -> None:
    # Names written into encodings are part of them: where nbcache is installed as a library, the
    # empty-closure-cell marker is encoded by its qualified name, and stand-ins pickle as a call of
    # the restore marker by module path. Both keep the names they had before the layout moved.
    import pickle

    from nbcache.key.fingerprint.code import _EmptyCell
    from nbcache.key.fingerprint.core import _qualname
    from nbcache.key.fingerprint.pickled import _restore_marker

    assert _qualname(_EmptyCell) == "nbcache.fingerprint._EmptyCell"
    assert b"nbcache.fingerprint" in pickle.dumps(_restore_marker, protocol=5)
