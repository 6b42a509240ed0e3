"""Which strings name a cell's files: constants, f-string folders, SQL quotes, input values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbcache.key.paths import code_strings, in_text, named_paths, source_strings, value_strings


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.parquet").write_text("x")
    (tmp_path / "notes").write_text("no extension, but it exists")
    return tmp_path


def test_existing_files_names_of_files_to_be_and_globs_are_paths(folder: Path) -> None:
    strings = ["notes", "data", "data/a.parquet", "out.parquet", "runs/latest", "data/*.parquet", "*.csv", str(folder / "x.json")]
    assert list(named_paths(strings)) == strings


def test_words_sentences_urls_and_bare_wildcards_are_not(folder: Path) -> None:
    strings = ["apple", "hello world.txt", "https://example.com/d.csv", "*", "a*b", "", "line\nbreak.txt", "?", "x" * 5000]
    assert list(named_paths(strings)) == []


def test_sql_text_names_its_quoted_files_and_globs() -> None:
    sql = "select sum(a) from 'data/*.parquet' join read_csv_auto(\"x.csv\") using (k) where name = 'bob'"
    assert in_text(sql) == ["data/*.parquet", "x.csv"]
    assert in_text("select 1") == []


def test_source_strings_take_constants_sql_quotes_and_the_folder_of_an_fstring() -> None:
    python = "import duckdb\nduckdb.sql(\"select * from 'q.parquet'\")\ndf = read(f'data/{name}.parquet')\nlabel = 'total'\n"
    found = source_strings(python)
    assert "q.parquet" in found and "data/" in found and "total" in found


def test_code_strings_come_from_the_notebooks_functions_and_classes() -> None:
    def load() -> str:
        return "inner/values.csv"

    class Loader:
        def read(self) -> str:
            return "method/values.csv"

    Loader.__module__ = "__main__"
    found = code_strings([load, Loader, 3])
    assert "inner/values.csv" in found and "method/values.csv" in found


def test_value_strings_look_inside_containers_and_paths_up_to_a_limit() -> None:
    values = [Path("p.csv"), {"k.csv": ["l.csv", ("t.csv",)]}, {"s.csv"}, 5]
    assert sorted(value_strings(values)) == ["k.csv", "l.csv", "p.csv", "s.csv", "t.csv"]
    assert len(value_strings([[f"w{i}" for i in range(1000)]], limit=100)) < 100


def test_ten_thousand_string_inputs_cost_little(folder: Path) -> None:
    # behaviour, not timing: one listing per folder, whatever the number of strings
    calls = []
    real = os.listdir
    strings = [f"token{i}" for i in range(10_000)] + [f"dir{i % 7}/x{i}" for i in range(100)]

    def listdir(path: str = ".") -> list[str]:
        calls.append(path)
        return real(path)

    os.listdir = listdir  # type: ignore[assignment]
    try:
        assert list(named_paths(strings)) == strings[10_000:]
    finally:
        os.listdir = real  # type: ignore[assignment]
    assert len(calls) <= 8
