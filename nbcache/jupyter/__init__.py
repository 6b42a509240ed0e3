"""The IPython and Jupyter edge: everything that knows a shell, a kernel or a frontend.

- :mod:`~nbcache.jupyter.extension`: ``%load_ext nbcache``; one :class:`Session` per shell.
- :mod:`~nbcache.jupyter.magic`: ``%%cache`` and ``%config NbCache.*``, a thin magic over the engine.
- :mod:`~nbcache.jupyter.host`: runs a cell body as IPython would and replays outputs (the engine's host).
- :mod:`~nbcache.jupyter.comm`: the ``nbcache`` comm the JupyterLab extension talks to.
- :mod:`~nbcache.jupyter.dashboard`, ``dashboard_widget``, ``dashboard_view``: ``%cache_dashboard``.
- :mod:`~nbcache.jupyter.checkpoints`: ``nbcache.checkpoint(...)`` for resumable loops.

Only ``extension`` wires the others together; none of them imports another's state.
"""

__all__: list[str] = []  # a namespace of modules: import them by name
