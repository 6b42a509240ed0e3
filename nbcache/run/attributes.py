"""Attributes of working-tree modules that a run changed: found after a miss, made again on a hit.

The key holds each attribute of a working-tree module that the cell or the code it reaches reads
or assigns (``attr:helpers.SCALE``, see :mod:`nbcache.key.reach`), with the object it was bound
to. After the run, an attribute bound to another object was rebound (``helpers.SCALE = 2``), or
deleted; one bound to the same object with another fingerprint was changed in place
(``helpers.registry.append(...)`` inside ``helpers.register``). A hit rebinds, deletes, or updates
the live object in place, so other names for it see the change as they would after the run.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping

from ..errors import FingerprintError
from ..key.cellkey import ATTR, MISSING, CellKey
from ..key.fingerprint import Fingerprinter, Substitutes

__all__ = ["apply_attribute_changes", "attribute_changes"]


def attribute_changes(key: CellKey, substitutes: Substitutes) -> dict[str, tuple[Any, ...]]:
    """``module.attr -> ("set", value) | ("update", value) | ("del",)`` for what the run changed."""
    out: dict[str, tuple[Any, ...]] = {}
    for qualified, before in key.attr_values.items():
        module_name, _, attr = qualified.rpartition(".")
        module = sys.modules.get(module_name)
        now = MISSING if module is None else getattr(module, attr, MISSING)
        if now is before:
            if now is MISSING:
                continue
            try:
                digest = Fingerprinter(substitutes).digest(now).hex()
            except FingerprintError:
                digest = None
            if digest != key.components.get(ATTR + qualified):
                out[qualified] = ("update", now)
        elif now is MISSING:
            out[qualified] = ("del",)
        else:
            out[qualified] = ("set", now)
    return out


def apply_attribute_changes(changes: Mapping[str, tuple[Any, ...]], update_in_place: Callable[[Any, Any], bool]) -> list[str]:
    """Make the changes on a hit; returns the attributes that could not be set."""
    failed = []
    for qualified, change in changes.items():
        module_name, _, attr = qualified.rpartition(".")
        try:
            module = sys.modules.get(module_name) or importlib.import_module(module_name)
            if change[0] == "del":
                if hasattr(module, attr):
                    delattr(module, attr)
            elif change[0] == "update" and hasattr(module, attr) and update_in_place(getattr(module, attr), change[1]):
                continue
            else:
                setattr(module, attr, change[1])
        except Exception:  # noqa: BLE001
            failed.append(qualified)
    return failed
