"""The JupyterLab extension ships inside the Python package: after ``pip install`` JupyterLab
lists it as enabled, with its settings schemas, and no Node is needed at run time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbcache

SHARE = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "nbcache"


def test_paths_point_at_the_built_extension() -> None:
    (path,) = nbcache._jupyter_labextension_paths()
    assert path == {"src": "labextension", "dest": "nbcache"}


def test_installed_as_shared_data_with_schemas() -> None:
    meta = json.loads((SHARE / "package.json").read_text())
    assert meta["name"] == "nbcache"
    assert meta["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    schemas = sorted(p.name for p in (SHARE / "schemas" / "nbcache").glob("*.json"))
    assert {"badges.json", "panel.json"} <= set(schemas)


def test_jupyter_labextension_list_shows_it_enabled() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    line = next((line for line in output.splitlines() if line.strip().startswith("nbcache ")), "")
    assert "enabled" in line and "OK" in line, output
