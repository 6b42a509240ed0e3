"""source -> reads, writes: the static analysis as a table."""

from __future__ import annotations

import pytest

from nbcache.key.analysis import analyze

CASES = [
    # (source, reads, writes)
    ("x = 1\nprint(x)", ["print"], ["x"]),
    ("y = x + 1", ["x"], ["y"]),
    ("x = x + 1", ["x"], ["x"]),
    ("n += 1", ["n"], ["n"]),
    ("if c:\n    y = 1\nprint(y)", ["c", "print", "y"], ["y"]),
    ("if c:\n    y = 1\nelse:\n    y = 2\nprint(y)", ["c", "print"], ["y"]),
    ("for i in range(3):\n    loss = i\n    print(loss)", ["range", "print"], ["i", "loss"]),
    ("while k < 3:\n    k = k + 1", ["k"], ["k"]),
    ("[a * b for a in xs]", ["xs", "b"], []),
    ("{k: v for k, v in pairs.items() if v > lim}", ["pairs", "lim"], []),
    ("f'{w:>{width}}'", ["w", "width"], []),
    ("def f():\n    return z\n", ["z"], ["f"]),
    ("def f(a=d):\n    return a\n", ["d"], ["f"]),
    ("@dec\ndef f():\n    pass\n", ["dec"], ["f"]),
    ("def outer():\n    def inner():\n        return g\n    return inner\n", ["g"], ["outer"]),
    ("def f():\n    t = 1\n    return t\n", [], ["f"]),
    ("def f():\n    global G\n    G = 1\n", [], ["f"]),
    ("class K(Base):\n    v = q\n    def m(self):\n        return r\n", ["Base", "q", "r"], ["K"]),
    ("lam = lambda t: t + off", ["off"], ["lam"]),
    ("import numpy as np\nnp.mean(arr)", ["arr"], ["np"]),
    ("from os import path\npath.join(a)", ["a"], ["path"]),
    ("with open(p) as fh:\n    data = fh.read()\nlen(data)", ["open", "p", "len"], ["data", "fh"]),
    ("try:\n    v = risky()\nexcept E as e:\n    v = 0\nprint(v)", ["risky", "E", "print"], ["e", "v"]),
    ("[y := t for t in ts]\nprint(y)", ["ts", "print", "y"], ["y"]),
    ("(w := 5)\nprint(w)", ["print"], ["w"]),
    ("obj.attr = 1", ["obj"], []),
    ("d[k] = v", ["v", "d", "k"], []),
    ("a, (b, *c) = seq", ["seq"], ["a", "b", "c"]),
    ("match cmd:\n    case [x, y]:\n        z = x\n", ["cmd"], ["x", "y", "z"]),
    # IPython syntax after transformation
    ("get_ipython().run_line_magic('time', 'res = g(k)')", ["get_ipython", "g", "k"], ["res"]),
    ("get_ipython().system('echo $name {a+b}')", ["get_ipython", "name", "a", "b"], []),
    ("files = get_ipython().getoutput('ls {folder}')", ["get_ipython", "folder"], ["files"]),
    ("get_ipython().run_line_magic('timeit', '-n 3 -r 1 f(x)')", ["get_ipython", "f", "x"], []),
]


@pytest.mark.parametrize("source, reads, writes", CASES, ids=[c[0][:40] for c in CASES])
def test_reads_and_writes(source: str, reads: list[str], writes: list[str]) -> None:
    analysis = analyze(source)
    assert list(analysis.reads) == reads
    assert sorted(analysis.writes) == sorted(writes)


def test_deletes() -> None:
    analysis = analyze("del a, b[0]\nc = 1")
    assert analysis.deletes == {"a"}
    assert "b" in analysis.reads


@pytest.mark.parametrize("source", ["eval('x')", "exec(code)", "print(globals())", "v = vars()", "locals()['x']"])
def test_dynamic_namespace_access_is_flagged(source: str) -> None:
    assert analyze(source).dynamic_reason is not None


def test_vars_with_an_argument_is_not_dynamic() -> None:
    assert analyze("vars(obj)").dynamic_reason is None


def test_normalized_source_ignores_comments_and_layout() -> None:
    a = analyze("x = f( 1 ,2 )  # comment\n\n")
    b = analyze("# header\nx = f(1, 2)")
    c = analyze("x = f(1, 3)")
    assert a.normalized == b.normalized != c.normalized


def test_syntax_error_is_an_analysis_error() -> None:
    from nbcache.errors import AnalysisError

    with pytest.raises(AnalysisError):
        analyze("x = (")


def test_attributes_of_names_read_or_assigned() -> None:
    found = analyze("import helpers\nhelpers.SCALE = 2\ny = helpers.f(x.mean())\ndef g():\n    return cfg.rate\n").attributes
    assert found == {("helpers", "SCALE"), ("helpers", "f"), ("x", "mean"), ("cfg", "rate")}
