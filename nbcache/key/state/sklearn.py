"""scikit-learn's global configuration (``sklearn.set_config``, ``config_context``)."""

from __future__ import annotations

import sys
from typing import Any

from .registry import StateProvider, changed_items, mapping_delta, register

__all__: list[str] = []


def _config() -> dict[str, Any]:
    return dict(sys.modules["sklearn"].get_config())


def _restore(config: dict[str, Any]) -> None:
    sys.modules["sklearn"].set_config(**changed_items(_config(), config))


register(StateProvider("sklearn.config", _config, _restore, module="sklearn", description="scikit-learn's configuration (set_config)", delta=mapping_delta))
