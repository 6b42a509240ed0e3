"""Every error nbcache raises, in one tree.

::

    NbCacheError(Exception)
    ├── AnalysisError(NbCacheError, SyntaxError)     the cell's source cannot be analysed
    ├── SettingError(NbCacheError, ValueError)        a setting was given a value nbcache cannot use
    ├── FingerprintError(NbCacheError, TypeError)    an input value has no sound fingerprint
    │   └── StaleModuleError                          a loaded module's file changed since import
    ├── SerializationError(NbCacheError)             a value the cell produced cannot be stored
    │   └── UnpicklableError(SerializationError, TypeError)
    └── StoreError(NbCacheError, OSError)            the store cannot be read or written
        ├── CorruptEntryError(StoreError)            checksum, format or structure is wrong
        │   ├── SignatureError(CorruptEntryError)     the manifest is not signed with our key
        │   └── OutdatedEntryError(CorruptEntryError) written in an older store format (a miss)
        └── StoreFormatError(StoreError)             the folder was written by another format

    NbCacheWarning(UserWarning)                      nbcache's own warnings (never an exception)

The rule behind the tree: none of these may cost the user the result of their cell. The engine
catches them, tells the user in one line beginning with ``nbcache:``, and runs the cell without
the cache.
"""

from __future__ import annotations

__all__ = [
    "AnalysisError",
    "CorruptEntryError",
    "FingerprintError",
    "NbCacheError",
    "NbCacheWarning",
    "OutdatedEntryError",
    "SerializationError",
    "SettingError",
    "SignatureError",
    "StaleModuleError",
    "StoreError",
    "StoreFormatError",
    "UnpicklableError",
]


class NbCacheError(Exception):
    """Root of every error nbcache raises."""


class AnalysisError(NbCacheError, SyntaxError):
    """The cell's source could not be parsed or analysed."""


class SettingError(NbCacheError, ValueError):
    """A setting (``%config NbCache.<name> = ...``) was given a value nbcache cannot use; raised
    when it is set, naming the setting and an example of a good value."""


class FingerprintError(NbCacheError, TypeError):
    """A value has no sound fingerprint (a generator, an open file, a lock...)."""

    def __init__(self, message: str, *, name: str | None = None, type_name: str | None = None):
        super().__init__(message)
        self.name = name
        self.type_name = type_name


class StaleModuleError(FingerprintError):
    """A working-tree module changed on disk after it was imported: the kernel runs old code."""


class SerializationError(NbCacheError):
    """A value the cell produced cannot be written to the store."""

    def __init__(self, message: str, *, name: str | None = None, type_name: str | None = None):
        super().__init__(message)
        self.name = name
        self.type_name = type_name


class UnpicklableError(SerializationError, TypeError):
    """A value cannot be pickled (a generator, an open file, a lock...)."""


class StoreError(NbCacheError, OSError):
    """The store could not be read or written."""

    reported: bool = False
    """True when the user was already told of this problem (it is still going on)."""


class CorruptEntryError(StoreError):
    """An entry failed its checksum, or its structure is not what nbcache writes."""


class SignatureError(CorruptEntryError):
    """An entry's signature does not verify: another key wrote it, or it was tampered with."""


class OutdatedEntryError(CorruptEntryError):
    """An entry written by an older nbcache in a store format this one no longer reads: a clean
    miss (the cell runs and is stored again), never an unpickle."""


class StoreFormatError(StoreError):
    """The store folder was written by an on-disk format this version does not read."""


class NbCacheWarning(UserWarning):
    """A caching problem that nbcache recovered from (the cell ran anyway)."""
