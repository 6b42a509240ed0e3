"""Re-execute notebooks in place against a fresh cache, so their committed outputs are first-run outputs.

    .venv/bin/python scripts/execute_notebooks.py notebooks/*.ipynb
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(paths: list[str]) -> None:
    for name in paths:
        path = Path(name)
        with tempfile.TemporaryDirectory(prefix="nbcache-exec-") as cache:
            os.environ["NBCACHE_DIR"] = cache
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
            for cell in nb.cells:
                cell.metadata.pop("execution", None)
            nbformat.write(nb, path)
            print(f"executed {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
