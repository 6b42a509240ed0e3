"""Shared fixtures: an isolated environment per test, an IPython shell with nbcache, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

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
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "nbcache")
    from nbcache.magic import _loaded

    magics = _loaded[id(shell)]
    magics.directory = str(tmp_path / "cache")
    before = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
    for trait in ("directory", "size_limit", "key", "compression"):
        setattr(magics, trait, magics.trait_defaults(trait))
    magics.storage_options = {}


def nbcache_magics(shell: Any) -> Any:
    from nbcache.magic import _loaded

    return _loaded[id(shell)]


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


def write_entry(cache: Any, key: str | None = None, *, label: str | None = None, value: Any = None, created: float | None = None, runtime: float = 1.0) -> Any:
    """Write an entry straight through :class:`~nbcache.cache.Cache` (no IPython): fast setup."""
    import time
    import uuid

    from nbcache.capture import encode_outputs
    from nbcache.serialize import dump_values

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
