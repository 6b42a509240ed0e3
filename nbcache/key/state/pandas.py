"""pandas' options (``pd.set_option``, ``pd.options.display...``): they shape how tables print."""

from __future__ import annotations

import sys
import warnings
from typing import Any

from .registry import StateProvider, changed_items, mapping_delta, register

__all__: list[str] = []


def _options() -> dict[str, Any]:
    """pandas' options, read from its registry directly: ``get_option`` would warn about
    deprecated options, in the user's cell."""
    from pandas._config import config

    flat: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", config._global_config)]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                stack.append((name + ".", value))
            else:
                flat[name] = value
    return dict(sorted(flat.items()))


def _restore(options: dict[str, Any]) -> None:
    # Only what differs from now: a cell that imported pandas itself records every option as
    # changed, and a hit should not set them all (setting a deprecated one warns).
    pd = sys.modules["pandas"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, value in changed_items(_options(), options).items():
            try:
                pd.set_option(key, value)
            except Exception:  # noqa: BLE001 - an option this pandas no longer has
                continue


register(StateProvider("pandas.options", _options, _restore, module="pandas", description="pandas options", delta=mapping_delta))
