"""The key of a cell run: its normalized code plus the fingerprints of everything it reads.

The key is xxh3-128 over named components, each itself a digest:

- ``source``: the cell's code with comments and formatting removed (the AST);
- ``python``: the interpreter's major.minor version (pickles and results may differ across them);
- ``format``: nbcache's key, fingerprint and values format versions;
- ``module:<name>``: each module the cell imports (a version, or the working-tree sources);
- ``deps:<path>``: files and folders named with ``--deps``, by content;
- ``attr:<module>.<name>``: each attribute of a working-tree module that the cell or the code it
  reaches reads or assigns (see :mod:`nbcache.key.reach`), by value, or ``unbound``;
- ``input:<name>``: the fingerprint of each variable the cell reads, or that the code it reaches
  reads as a global, or ``unbound`` when the name is not defined (the cell will then fail, or
  bind it first on some path).

Components are kept by name in every entry, so ``--explain`` can say which one changed.
"""

from __future__ import annotations

import builtins
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import xxhash

from ..errors import FingerprintError
from .fingerprint import FINGERPRINT_VERSION, Fingerprinter

__all__ = ["ATTR", "KEY_VERSION", "MISSING", "UNBOUND", "CellKey", "compute_key"]

# Bump when the set or the encoding of key components changes. 2: globals reached through
# called code are inputs, working-tree module attributes are components, state requirements
# are per provider. 3: entries check the files the cell names (read by native code) and restore
# the files it wrote; an entry made before knows of neither, so it must not hit.
KEY_VERSION = 3
UNBOUND = "unbound"
ATTR = "attr:"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Stands for an attribute that does not exist."""


@dataclass(frozen=True)
class CellKey:
    key: str
    inputs: Mapping[str, str]
    components: Mapping[str, str]
    attr_values: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The objects behind the ``attr:`` components when the key was made (:data:`MISSING` for an
    attribute that did not exist): a miss compares them with what the run left."""


def _hex(data: bytes | str) -> str:
    return xxhash.xxh3_128_hexdigest(data.encode() if isinstance(data, str) else data)


def compute_key(
    normalized_source: str,
    reads: Iterable[str],
    namespace: Mapping[str, Any],
    *,
    ignore: Callable[[str], bool] = lambda name: False,
    fingerprinter: Fingerprinter | None = None,
    extra: Mapping[str, str] | None = None,
    attrs: Iterable[tuple[str, str]] = (),
    values_version: int,
) -> CellKey:
    """Fingerprint the cell's inputs and combine them with its code into a key.

    ``values_version`` is the version of the stored values' layout (the run layer's, which the
    key must not import): an entry of another layout never matches. ``attrs``: ``(module,
    attribute)`` pairs of working-tree modules to key by value. Raises
    :class:`FingerprintError` with ``name`` set when an input has no fingerprint.
    """
    fp = fingerprinter or Fingerprinter()
    attr_components, attr_values = _attributes(attrs, fp)
    inputs: dict[str, str] = {}
    for name in reads:
        if ignore(name):
            continue
        if name in namespace:
            try:
                inputs[name] = fp.digest(namespace[name]).hex()
            except FingerprintError as exc:
                exc.name = name
                raise
        elif not hasattr(builtins, name):
            inputs[name] = UNBOUND
    components = {
        "source": _hex(normalized_source),
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "format": f"key{KEY_VERSION}.fp{FINGERPRINT_VERSION}.values{values_version}",
        **(extra or {}),
        **attr_components,
    }
    hasher = xxhash.xxh3_128()
    for part, value in sorted(components.items()):
        hasher.update(f"{part}\0{value}\0".encode())
    for name, digest in sorted(inputs.items()):
        hasher.update(f"input:{name}\0{digest}\0".encode())
    return CellKey(hasher.hexdigest(), inputs, components, attr_values)


def _attributes(attrs: Iterable[tuple[str, str]], fp: Fingerprinter) -> tuple[dict[str, str], dict[str, Any]]:
    components: dict[str, str] = {}
    values: dict[str, Any] = {}
    for module_name, attr in attrs:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        qualified = f"{module_name}.{attr}"
        value = getattr(module, attr, MISSING)
        values[qualified] = value
        if value is MISSING:
            components[ATTR + qualified] = UNBOUND
            continue
        try:
            components[ATTR + qualified] = fp.digest(value).hex()
        except FingerprintError as exc:
            exc.name = qualified
            raise
    return components, values
