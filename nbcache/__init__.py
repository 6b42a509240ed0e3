"""nbcache: a cell-level cache for Jupyter.

``%load_ext nbcache``, then put ``%%cache`` on a slow cell. The first run executes it and stores
what it produced; later runs, after a restart or on another machine, restore the variables and
replay the outputs, as long as nothing the cell depends on has changed.

A cell's path, one subpackage each: :mod:`nbcache.key` (source -> what the cell reads -> its
key), :mod:`nbcache.store` (entries -> signed manifests and blobs in a folder or a bucket),
:mod:`nbcache.run` (lookup, run and record, or restore and replay, without IPython), and
:mod:`nbcache.jupyter` (the magic, the frontend's comm, the dashboard: the IPython edge).
This module is the public API only; importing it imports none of them.
"""

from __future__ import annotations

from typing import Any, Callable

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "_jupyter_labextension_paths",
    "checkpoint",
    "dashboard",
    "explain",
    "load_ipython_extension",
    "register_adapter",
    "register_fingerprint",
    "register_state",
    "stats",
    "unload_ipython_extension",
    "wait_for_writes",
]


def checkpoint(
    name: str, *, every: int | None = None, seconds: float | None = None, directory: str | None = None,
    key: str | bytes | None = None,
) -> Any:
    """Resume a long loop after an interruption: see :mod:`nbcache.jupyter.checkpoints`."""
    from .jupyter.checkpoints import checkpoint as make

    return make(name, every=every, seconds=seconds, directory=directory, key=key)


def wait_for_writes(timeout: float | None = None) -> bool:
    """Wait for what this kernel's cache still writes after its cells: a large values blob that
    compresses well is written as it is, and compressed a moment later on a thread of its own (see
    :mod:`nbcache.store.later`). Whether all of it is done (within ``timeout`` seconds). Entries
    are usable meanwhile; this is for code that looks at the cache's files."""
    from .store import later

    return later.wait(timeout)


def explain() -> Any:
    """Why the most recent ``%%cache`` cell of this IPython session hit or missed.

    Returns an :class:`nbcache.run.explanation.Explanation` (printable; ``.status``, ``.reasons``), the
    same answer ``%%cache --explain`` prints, or None when no cached cell has run.
    """
    from IPython import get_ipython

    from .jupyter.extension import session

    found = session(get_ipython())
    if found is None:
        raise RuntimeError("nbcache: the extension is not loaded in this IPython session (%load_ext nbcache)")
    return found.engine.explain_last()


def register_state(
    name: str,
    capture: Callable[[], Any],
    restore: Callable[[Any], None],
    *,
    module: str | None = None,
    description: str | None = None,
    digest: Callable[[Any], str] | None = None,
) -> Any:
    """Tell nbcache about a setting it should key cells on and restore on a hit.

    ``capture()`` returns the current state as a picklable value; ``restore(value)`` makes a
    value returned by ``capture`` current again. A cached cell's entry then requires the state it
    ran under (a change before the cell makes it run again), and a hit leaves behind the state
    the cell left. ``module``: active only while that module is imported. ``digest(value)``: a
    string equal for equal states, when comparing pickles is not faithful. Registering a name
    again replaces it. Libraries can register through the entry point group ``nbcache.state``
    instead. Returns the :class:`nbcache.key.state.registry.StateProvider`::

        nbcache.register_state("mylib.precision", mylib.get_precision, mylib.set_precision, module="mylib")
    """
    from .key.state.registry import register_state as register

    return register(name, capture, restore, module=module, description=description, digest=digest)
def register_adapter(module_name: str, install: Callable[[Any], None]) -> None:
    """Have ``install(module)`` wrap the functions of ``module_name`` that read or write files in
    native code, once the notebook imports it, so that the paths they are handed are watched::

        from nbcache.key.adapters import wrap
        nbcache.register_adapter("cv2", lambda cv2: wrap.patch(cv2, "imread", wrap.reads(0, "filename")))

    See :mod:`nbcache.key.adapters`.
    """
    from .key.adapters import register_adapter as register

    register(module_name, install)


def register_fingerprint(type_or_name: type | str, fn: Any) -> None:
    """Fingerprint values of ``type_or_name`` (a class, or ``"package.Class"`` for a library not
    imported yet) and of its subclasses by ``fn(value)``: anything nbcache can fingerprint (bytes,
    strings, numbers, tuples, arrays...) that is equal exactly when the values are equal::

        nbcache.register_fingerprint(Grid, lambda g: (g.shape, g.cells))
        nbcache.register_fingerprint("shapely.Polygon", lambda p: p.wkb)

    See :mod:`nbcache.key.fingerprint.user`.
    """
    from .key.fingerprint.user import register_fingerprint as register

    register(type_or_name, fn)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbcache``: register ``%%cache`` and nbcache's configuration."""
    from .jupyter.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbcache``: remove everything ``load_ipython_extension`` registered."""
    from .jupyter.extension import unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt extension (cell badges and the cache panel)."""
    return [{"src": "labextension", "dest": "nbcache"}]


def dashboard() -> Any:
    """A live ipywidgets dashboard of the active cache (as ``%cache_dashboard``)."""
    from .jupyter.dashboard import open_dashboard
    from .jupyter.extension import active

    found = active()
    return open_dashboard(found.open_cache, found.shell)


def stats() -> Any:
    """The active cache's entries and their usage as a pandas DataFrame."""
    from .jupyter.dashboard import usage_frame
    from .jupyter.extension import active

    return usage_frame(active().open_cache)
