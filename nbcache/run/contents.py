"""What the engine keeps in an entry besides the variables, in one place for writer and reader.

The values pickle holds the cell's variables by name, plus names no identifier can have:
:data:`RESULTS`, the values that went to the display hook (``Out[n]``) in order,
:data:`STATE`, the interpreter-state changes a hit makes again (see :mod:`nbcache.key.state`),
and :data:`ATTRS`, the changes to working-tree module attributes (see :mod:`nbcache.run.attributes`).

The manifest's ``extra`` mapping is part of the on-disk format: entries already in caches carry
these keys in this JSON shape, so neither may change. :class:`Extra` is the one place in
``run/`` that spells them; a key an older entry lacks reads as empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..store.cache import Entry

__all__ = ["ATTRS", "RESULTS", "STATE", "Extra"]

RESULTS = "\0results"
STATE = "\0state"
ATTRS = "\0attrs"


@dataclass(frozen=True)
class Extra:
    """An entry's ``extra`` mapping, typed."""

    mutated: tuple[str, ...] = ()
    """Inputs the cell changed in place: a hit updates the live object, so aliases see it."""
    reads: Mapping[str, Any] = field(default_factory=dict)
    """Files, folders and environment variables the cell read (:mod:`nbcache.key.deps`)."""
    requires: Mapping[str, str] = field(default_factory=dict)
    """State the result depends on other than the generators (:func:`nbcache.key.state.unmet`)."""
    pickled: Mapping[str, str] = field(default_factory=dict)
    """Pickle digest (hex) of each value fingerprinted through its pickle, by name."""
    rng: Mapping[str, str] = field(default_factory=dict)
    """Digests of the generator states the entry's key is a variant for (``rng_variant``)."""
    imports: tuple[str, ...] = ()
    """Modules the run imported, in order: a hit imports them again (:mod:`nbcache.run.imports`)."""
    keep: bool = False
    """Stored with ``--force``: kept even when restoring it does not pay (see nbcache.run.pays)."""
    files: tuple[Mapping[str, Any], ...] = ()
    """The files the run created, changed or removed (:mod:`nbcache.run.files`): a hit puts them back."""

    @classmethod
    def of(cls, entry: Entry) -> Extra:
        extra = entry.extra
        return cls(
            mutated=tuple(extra.get("mutated") or ()),
            reads=extra.get("reads") or {},
            requires=extra.get("requires") or {},
            pickled=extra.get("pickled") or {},
            rng=extra.get("rng") or {},
            imports=tuple(extra.get("imports") or ()),
            keep=bool(extra.get("keep")),
            files=tuple(extra.get("files") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        """The mapping as the manifest stores it (``keep`` only when set: other manifests stay as
        they were)."""
        mapping: dict[str, Any] = {
            "mutated": sorted(self.mutated),
            "reads": dict(self.reads),
            "requires": dict(self.requires),
            "pickled": dict(self.pickled),
            "rng": dict(self.rng),
            "imports": list(self.imports),
        }
        if self.keep:
            mapping["keep"] = True
        if self.files:
            mapping["files"] = [dict(record) for record in self.files]
        return mapping
