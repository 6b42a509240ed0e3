"""Shared fixtures: an isolated environment per test; a real IPython shell with an ordered transcript
of what cells show; real kernels; the CLI; a real S3-protocol server."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the user's key, cache or settings; each has its own Jupyter data dir."""
    home = tmp_path / "home"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(home / "jupyter"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    for name in ("NBCACHE_DIR", "NBCACHE_KEY", "NBCACHE_SIZE_LIMIT", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def ip(tmp_path: Path) -> Iterator[Any]:
    """The test IPython shell with nbcache loaded and its cache in ``tmp_path/cache``."""
    if InteractiveShell.initialized():  # the `shell` fixture's came first: one shell per process
        shell = InteractiveShell.instance()
    else:
        from IPython.testing.globalipapp import get_ipython

        shell = get_ipython()
    shell.run_line_magic("load_ext", "nbcache")
    from nbcache.jupyter.extension import session

    magics = session(shell).magics
    magics.directory = str(tmp_path / "cache")
    before = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
    # Loaded it stays in IPython's record: a later test that loads and unloads nbcache by hand
    # would leave that record alone, and every `%load_ext nbcache` after it would do nothing.
    shell.run_line_magic("unload_ext", "nbcache")
    shell.config.pop("NbCache", None)  # what %config set: later shells must not inherit it
    for trait in ("directory", "size_limit", "key", "compression", "judge_restores"):
        setattr(magics, trait, magics.trait_defaults(trait))
    magics.storage_options = {}


def nbcache_magics(shell: Any) -> Any:
    from nbcache.jupyter.extension import session

    return session(shell).magics


def run_cli(*args: str, env: dict[str, str] | None = None, expect: int | None = 0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``nbcache ARGS`` as a subprocess; assert the exit code, showing the output if it differs."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "nbcache.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )
    if expect is not None:
        assert proc.returncode == expect, (
            f"nbcache {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def slow_to_restore(seconds: float) -> str:
    """Source of a class ``Frozen`` that is instant to make and takes ``seconds`` to unpickle: a
    cell that makes one restores slower than it runs (nbcache.run.pays)."""
    return (
        "import time\n\n"
        "def thaw():\n"
        f"    time.sleep({seconds})  # unpickling a Frozen calls this\n"
        "    return Frozen()\n\n"
        "class Frozen:\n"
        "    def __reduce__(self):\n"
        "        return (thaw, ())\n"
    )


def write_entry(cache: Any, key: str | None = None, *, label: str | None = None, value: Any = None, created: float | None = None, runtime: float = 1.0) -> Any:
    """Write an entry straight through :class:`~nbcache.store.cache.Cache` (no IPython): fast setup."""
    import time
    import uuid

    from nbcache.run.capture import encode_outputs
    from nbcache.run.serialize import dump_values

    key = key or uuid.uuid4().hex
    frames = dump_values({"x": value, "\0results": []}, namespace={}, refs={})
    fields = dict(
        key=key,
        cell=label or f"cell {key[:6]}",
        label=label,
        source=f"x = value_for({key!r})",
        created=time.time() if created is None else created,
        runtime=runtime,
        names=("x",),
        deleted=(),
        refs=(),
        inputs={},
        components={"python": "3.11"},
        python="3.11",
        nbcache="test",
        extra={"mutated": []},
    )
    outputs = encode_outputs([{"type": "stream", "name": "stdout", "text": f"ran {key}\n"}])
    return cache.write(fields, frames, outputs)


@pytest.fixture(scope="session")
def swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real S3-protocol server (OpenStack Swift + s3api) on 127.0.0.1 for the whole session."""
    from swift_server import SwiftS3

    import atexit

    server = SwiftS3(tmp_path_factory.mktemp("swift"))
    atexit.register(server.stop)  # also when the session ends abnormally
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def bucket(swift: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; this process's environment points at the server. Returns the cache URL."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + uuid.uuid4().hex[:8]
    swift.make_bucket(name)
    for var, value in swift.env().items():
        monkeypatch.setenv(var, value)
    return f"s3://{name}/team-cache"


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
        from nbcache.jupyter.extension import session

        return session(self.ip).magics

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


def _expect_extension(sh: Shell, ran: Transcript, loaded: bool) -> None:
    """Fail where ``%load_ext`` / ``%unload_ext`` did not leave nbcache loaded / unloaded.

    The magics swallow an error (the cell shows it), and IPython then keeps its own record of what
    is loaded: a half-done unload would make every later ``%load_ext`` in this process a no-op.
    """
    from nbcache.jupyter.extension import session

    recorded = "nbcache" in sh.ip.extension_manager.loaded
    if ran.error is not None or (session(sh.ip) is not None) != loaded or recorded != loaded:
        verb = "load" if loaded else "unload"
        pytest.fail(f"%{verb}_ext nbcache: error {ran.error!r}, session {session(sh.ip)!r}, IPython records it loaded: {recorded}\n{ran.stdout}{ran.stderr}")


@pytest.fixture
def shell(_ipython: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    """A shell with nbcache loaded and a fresh cache folder under tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBCACHE_DIR", raising=False)
    _ipython.reset(new_session=True)
    _ipython.config.pop("NbCache", None)
    # a notebook frontend receives every format (a terminal shell would keep only text/plain)
    formatter = _ipython.display_formatter
    active = list(formatter.active_types)
    formatter.active_types = list(formatter.format_types)
    sh = Shell(_ipython)
    _expect_extension(sh, sh.run("%load_ext nbcache"), loaded=True)
    sh.magics.directory = str(tmp_path / "cache")
    yield sh
    _expect_extension(sh, sh.run("%unload_ext nbcache"), loaded=False)
    _ipython.reset(new_session=True)
    _ipython.config.pop("NbCache", None)
    formatter.active_types = active


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
