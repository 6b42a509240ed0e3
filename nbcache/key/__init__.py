"""What a cell depends on, and its key.

- :mod:`~nbcache.key.analysis`: source -> the names a cell reads and writes, its imports and calls.
- :mod:`~nbcache.key.fingerprint`: values and code -> 16-byte digests (a registry of type encoders).
- :mod:`~nbcache.key.modules`: imported modules: working-tree sources and library versions.
- :mod:`~nbcache.key.deps`: files, folders and environment variables a run touched (audit hooks).
- :mod:`~nbcache.key.reach`: the globals and working-tree module attributes the code a cell runs reaches.
- :mod:`~nbcache.key.state`: interpreter state a cell reads or changes: a registry of providers
  (generators, print options, rcParams, library settings, warnings, environment...).
- :mod:`~nbcache.key.cellkey`: all of the above -> the key of one run of a cell.

Plain Python: nothing here imports IPython.
"""

__all__: list[str] = []  # a namespace of modules: import them by name
