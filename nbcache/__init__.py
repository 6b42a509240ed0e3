"""nbcache: a cell-level cache for Jupyter.

``%load_ext nbcache``, then put ``%%cache`` on a slow cell. The first run executes it and stores
what it produced; later runs, after a restart or on another machine, restore the variables and
replay the outputs, as long as nothing the cell depends on has changed.

Data flow, one module each: ``analysis`` (source -> reads, writes) -> ``fingerprint`` and ``key``
(values -> key) -> ``cache`` over ``store`` (entries -> bytes) -> ``capture`` (outputs, replay),
``serialize`` (values <-> bytes); ``engine`` ties them together without IPython, and ``magic`` is
the thin IPython adapter.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "_jupyter_labextension_paths", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbcache``: register ``%%cache`` and nbcache's configuration."""
    from .magic import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbcache``: remove everything ``load_ipython_extension`` registered."""
    from .magic import unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt extension (cell badges and the cache panel)."""
    return [{"src": "labextension", "dest": "nbcache"}]
