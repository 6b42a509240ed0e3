"""Fixtures: a real IPython shell with an ordered transcript of what cells show, and real kernels."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell


@dataclass
class Transcript:
    """Everything a cell showed, in order, with nbcache's own notes set apart."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: BaseException | None = None
    result: Any = None

    def add_stream(self, name: str, text: str) -> None:
        if self.events and self.events[-1][0] == name:
            self.events[-1] = (name, self.events[-1][1] + text)
        else:
            self.events.append((name, text))

    def normalized(self) -> list[tuple[Any, ...]]:
        """Events with prompt numbers blanked (``Out[3]`` vs ``Out[2]`` only says which cell)."""
        import re

        return [(e[0], re.sub(r"Out\[\d+\]", "Out[#]", e[1]), *e[2:]) if e[0] == "stdout" else e for e in self.events]

    @property
    def stdout(self) -> str:
        return "".join(e[1] for e in self.events if e[0] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(e[1] for e in self.events if e[0] == "stderr")


class _RecordingPublisher(DisplayPublisher):
    transcript: Transcript | None = None

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):  # type: ignore[override]
        if self.transcript is None:
            return
        if isinstance(metadata, dict) and "nbcache" in metadata:
            self.transcript.notes.append(data.get("text/plain", ""))
        else:
            self.transcript.events.append(("display", data, metadata, transient, update))

    def clear_output(self, wait=False):
        if self.transcript is not None:
            self.transcript.events.append(("clear", wait))


class _Stream:
    """Stands in for sys.stdout / sys.stderr and appends what is written to the transcript."""

    def __init__(self, name: str):
        self.name = name
        self.transcript: Transcript | None = None
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        if self.transcript is not None:
            self.transcript.add_stream(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class Shell:
    """A real InteractiveShell driven cell by cell."""

    def __init__(self, ip: InteractiveShell):
        self.ip = ip
        self.publisher = _RecordingPublisher(shell=ip)
        ip.display_pub = self.publisher
        self.out = _Stream("stdout")
        self.err = _Stream("stderr")

    @property
    def ns(self) -> dict[str, Any]:
        return self.ip.user_ns

    @property
    def magics(self) -> Any:
        from nbcache.magic import _loaded

        return _loaded[id(self.ip)]

    @property
    def status(self) -> str | None:
        last = self.magics.engine.last
        return None if last is None else last.status

    def run(self, source: str) -> Transcript:
        transcript = Transcript()
        self.publisher.transcript = self.out.transcript = self.err.transcript = transcript
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.out, self.err
        try:
            result = self.ip.run_cell(source, store_history=True)
        finally:
            sys.stdout, sys.stderr = saved
            self.publisher.transcript = self.out.transcript = self.err.transcript = None
        transcript.error = result.error_in_exec or result.error_before_exec
        transcript.result = result.result
        return transcript

    def restart(self) -> None:
        """Forget every variable, as a kernel restart would (the cache on disk stays)."""
        self.ip.reset(new_session=True)
        self.ip.display_pub = self.publisher


@pytest.fixture(scope="session")
def _ipython() -> InteractiveShell:
    ip = InteractiveShell.instance()
    ip.colors = "nocolor"
    return ip


@pytest.fixture
def shell(_ipython: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    """A shell with nbcache loaded and a fresh cache folder under tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBCACHE_DIR", raising=False)
    _ipython.reset(new_session=True)
    _ipython.config.pop("NbCache", None)
    sh = Shell(_ipython)
    sh.run("%load_ext nbcache")
    sh.magics.directory = str(tmp_path / "cache")
    yield sh
    sh.run("%unload_ext nbcache")
    _ipython.reset(new_session=True)
    _ipython.config.pop("NbCache", None)


# -- real kernels ------------------------------------------------------------------------------
def run_notebook(cells: list[str], cwd: Path, env: dict[str, str] | None = None, allow_errors: bool = False, timeout: int = 120) -> nbformat.NotebookNode:
    """Execute ``cells`` in a fresh kernel (nbclient) in ``cwd``; returns the executed notebook."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors, resources={"metadata": {"path": str(cwd)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def is_note(output: dict[str, Any]) -> bool:
    """nbcache's own notes, which a hit adds and a plain run does not have."""
    if output.get("output_type") == "display_data":
        return "nbcache" in output.get("metadata", {})
    if output.get("output_type") == "stream":
        return output.get("text", "").startswith("nbcache:")
    return False


def comparable(outputs: list[Any]) -> list[dict[str, Any]]:
    """Outputs without nbcache's notes, with streams merged the way a frontend shows them."""
    merged: list[dict[str, Any]] = []
    for out in outputs:
        out = dict(out)
        if is_note(out):
            continue
        if out["output_type"] == "stream" and merged and merged[-1]["output_type"] == "stream" and merged[-1]["name"] == out["name"]:
            merged[-1] = {**merged[-1], "text": merged[-1]["text"] + out["text"]}
            continue
        out.pop("execution_count", None)
        merged.append(out)
    return merged
