"""The type-encoder registry: one answer per type, asked by the walk, the pickler and
takes_pickle_path; library adapters imported with the library's first value."""

from __future__ import annotations

import functools
import os
import pickle
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbcache.key.fingerprint import fingerprint as fp
from nbcache.key.fingerprint import takes_pickle_path
from nbcache.key.fingerprint.registry import Kind, Registry, own_fingerprint


def _encoder(name: str) -> Any:
    def encode(w: Any, v: Any) -> None:  # pragma: no cover - never called here
        raise AssertionError(name)

    encode.__name__ = name
    return encode


EXACT, PLAIN, OTHER = (Kind(_encoder(n), stand_in=None) for n in ("exact", "plain", "other"))
BASE = Kind(_encoder("base"))  # as an adapter registers: standing as its own fingerprint


def _library_class(name: str, module: str, *bases: type, plain: bool = False) -> type:
    return type(name, bases or (object,), {"__module__": module, "plain": plain})


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.plain = lambda t: PLAIN if getattr(t, "plain", False) else None
    reg.python = lambda v: OTHER
    return reg


def test_an_exact_registration_is_exact(registry: Registry) -> None:
    cls = _library_class("A", "__main__")
    registry.register(cls, EXACT)
    assert registry.kind(cls()) is EXACT
    assert registry.kind(_library_class("B", "__main__", cls)()) is OTHER


@pytest.fixture
def fakelib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry) -> types.SimpleNamespace:
    """A library 'fakelib' whose adapter module registers its base class when imported."""
    lib = types.SimpleNamespace(registry=registry, Base=_library_class("Base", "fakelib"), kind=BASE)
    monkeypatch.setitem(sys.modules, "fakelib_under_test", lib)
    (tmp_path / "fakelib_adapter.py").write_text(
        "import fakelib_under_test as lib\nlib.registry.register_base(lib.Base, lib.kind)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fakelib_adapter", raising=False)
    registry.register_lazy("fakelib", "fakelib_adapter")
    return lib


def test_an_adapter_is_imported_with_the_first_value_of_its_library(fakelib: types.SimpleNamespace) -> None:
    reg = fakelib.registry
    reg.kind(_library_class("Elsewhere", "otherlib")())
    assert "fakelib_adapter" not in sys.modules
    kind = reg.kind(_library_class("Sub", "fakelib.sub", fakelib.Base)())
    assert "fakelib_adapter" in sys.modules
    assert kind is BASE


def test_a_library_base_matches_only_that_library_s_own_subclasses(fakelib: types.SimpleNamespace) -> None:
    # A subclass defined elsewhere may hold state the library's encoder does not know.
    reg = fakelib.registry
    assert reg.kind(_library_class("Sub", "fakelib.x", fakelib.Base)()) is BASE
    assert reg.kind(_library_class("Mine", "__main__", fakelib.Base)()) is OTHER


def test_every_object_of_an_adapted_library_stands_as_its_own_fingerprint(fakelib: types.SimpleNamespace) -> None:
    reg = fakelib.registry
    unregistered = reg.kind(_library_class("Loose", "fakelib.y")())
    assert unregistered.encode is OTHER.encode
    assert unregistered.stand_in is own_fingerprint and not unregistered.pickled
    plain = reg.kind(_library_class("Plain", "fakelib", fakelib.Base, plain=True)())
    assert plain.encode is PLAIN.encode  # plain instances come before the library's bases
    assert plain.stand_in is own_fingerprint


def test_importing_the_fingerprint_imports_no_library() -> None:
    script = (
        "import sys\nimport nbcache.key.fingerprint as f\n"
        "f.fingerprint([1, 'a', {2.5}, f.fingerprint])\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas')"
        " or m.startswith('nbcache.key.fingerprint.n') or m.startswith('nbcache.key.fingerprint.pa'))\n"
        "print(loaded())\nimport numpy\nf.fingerprint(numpy.arange(3))\n"
        "print([m for m in loaded() if m.startswith('nbcache') or m == 'pandas'])\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "['nbcache.key.fingerprint.numpy']"], out


class Holder:
    def __init__(self, value: object):
        self.value = value

    def __getstate__(self) -> dict:  # a state hook: fingerprinted through pickle
        return self.__dict__


class NotedFrame(pd.DataFrame):
    _metadata = ["note"]


def test_a_frame_inside_an_object_counts_by_its_values_not_its_block_layout() -> None:
    one = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    two = pd.DataFrame({"a": [1, 2]})
    two["b"] = [3, 4]  # a second block
    assert pickle.dumps(one) != pickle.dumps(two)
    assert fp(Holder(one)) == fp(Holder(two))
    assert fp(Holder(one)) != fp(Holder(one + 1))


def test_a_frame_subclass_from_elsewhere_keeps_its_own_state() -> None:
    a, b = NotedFrame({"a": [1]}), NotedFrame({"a": [1]})
    a.note, b.note = "x", "y"
    assert takes_pickle_path(a)
    assert fp(a) != fp(b)


@functools.lru_cache
def _cached(x: int) -> int:
    return x


@pytest.mark.parametrize(
    "value, pickled",
    [
        ([1, "a"], False),
        (np.arange(3), False),
        (np.float32(1), False),
        (np.ma.masked_array([1, 2], mask=[0, 1]), False),  # numpy's own: trusted to round-trip
        (pd.DataFrame({"a": [1]}), False),
        (pd.Timestamp("2024-01-01"), False),
        (Holder(1), True),
        (types.SimpleNamespace(a=1), True),
        (fp, False),
        (functools.partial(max, 1), False),
        (_cached, True),  # as it always said: its pickle digest then comes out None
    ],
    ids=lambda v: re.sub(r" at 0x[0-9a-f]+", "", repr(v)),  # the same ids in every process (xdist)
)
def test_takes_pickle_path(value: object, pickled: bool) -> None:
    assert takes_pickle_path(value) is pickled


# -- classes with their subclasses, registrations by name, users' registrations ----------------
def test_a_class_registered_with_its_subclasses_decides_for_each(registry: Registry) -> None:
    base = _library_class("Module", "biglib.nn")
    registry.register_lazy("biglib", "nbcache")  # any importable module: biglib has an adapter
    registry.register_subclasses(base, lambda t: None if getattr(t, "own_pickle", False) else BASE)
    mine = type("Net", (base,), {"__module__": "__main__"})  # a notebook's subclass
    odd = type("Odd", (base,), {"__module__": "__main__", "own_pickle": True})
    assert registry.kind(mine()) is BASE
    assert registry.kind(odd()) is OTHER


def test_a_user_s_registration_wins_over_the_adapter_s(registry: Registry) -> None:
    cls = _library_class("Thing", "somelib")
    user = Kind(_encoder("user"))
    registry.register_user(cls, user)
    registry.register(cls, EXACT)  # the adapter, imported later
    registry.register_subclasses(cls, lambda t: EXACT)
    assert registry.kind(cls()) is user
    assert registry.kind(type("Sub", (cls,), {"__module__": "__main__"})()) is user


def test_a_registration_by_name_waits_for_its_library(fakelib: types.SimpleNamespace) -> None:
    reg = fakelib.registry
    user = Kind(_encoder("user"))
    sys.modules.pop("fakelib", None)
    reg.register_named("fakelib.Base", user)
    assert "fakelib" not in sys.modules
    sys.modules["fakelib"] = types.SimpleNamespace(Base=fakelib.Base)  # the notebook imports it
    try:
        assert reg.kind(fakelib.Base()) is user
        assert reg.kind(_library_class("Sub", "fakelib.sub", fakelib.Base)()) is user
    finally:
        del sys.modules["fakelib"]


REGISTER = """
import sys, warnings
import nbcache
from nbcache.errors import FingerprintError
from nbcache.key.fingerprint import fingerprint as fp

class Grid:
    def __init__(self, cells, scratch=None):
        self.cells, self.scratch = cells, scratch  # scratch: not part of the value

nbcache.register_fingerprint(Grid, lambda g: tuple(g.cells))
print(fp(Grid([1, 2], object())) == fp(Grid([1, 2], object())), fp(Grid([1, 2])) != fp(Grid([1, 3])))
class Sub(Grid):
    pass
print(fp(Sub([1, 2])) != fp(Grid([1, 2])) and fp(Sub([1, 2])) == fp(Sub([1, 2], 5)))

nbcache.register_fingerprint("regdemo.shapes.Poly", lambda p: p.points)
print("regdemo" in sys.modules)
import regdemo.shapes
print(fp(regdemo.shapes.Poly([1], object())) == fp(regdemo.shapes.Poly([1], object())))

nbcache.register_fingerprint("torch.Tensor", lambda t: tuple(t.shape))  # before torch is imported
import torch
print(fp(torch.zeros(3)) == fp(torch.ones(3)), fp(torch.nn.Parameter(torch.zeros(2))) == fp(torch.nn.Parameter(torch.ones(2))))

def broken(value):
    raise KeyError("cells")
nbcache.register_fingerprint(Grid, broken)
try:
    fp(Grid([1]))
except FingerprintError as exc:
    print(str(exc))
for bad in ((int, len), ("nodots", len), (3, len), (Grid, "not callable")):
    try:
        nbcache.register_fingerprint(*bad)
    except (TypeError, ValueError) as exc:
        print(str(exc).startswith("nbcache: "))
try:
    nbcache.register_fingerprint("regdemo.Missing", len)  # regdemo is imported: told at once
except ValueError as exc:
    print(exc)
nbcache.register_fingerprint("regdemo2.Missing", len)  # not imported yet: told when it is used
import regdemo2
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(len(fp(regdemo2.Thing())))
print([str(w.message) for w in caught])
"""


def test_register_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "regdemo").mkdir()
    (tmp_path / "regdemo" / "__init__.py").write_text("")
    (tmp_path / "regdemo" / "shapes.py").write_text(
        "class Poly:\n    def __init__(self, points, cache):\n        self.points, self.cache = points, cache\n"
    )
    (tmp_path / "regdemo2.py").write_text("class Thing:\n    pass\n")
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", REGISTER], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "True True",
        "True",
        "False",
        "True",
        "True True",
        "the fingerprint function registered for __main__.Grid raised KeyError: 'cells'",
        "True", "True", "True", "True",
        "nbcache: register_fingerprint('regdemo.Missing'): module 'regdemo' has no attribute 'Missing'",
        "16",
        "[\"nbcache: register_fingerprint('regdemo2.Missing'): module 'regdemo2' has no attribute 'Missing'\"]",
    ], done.stdout
