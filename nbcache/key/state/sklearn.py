"""scikit-learn's global configuration (``sklearn.set_config``, ``config_context``)."""

from __future__ import annotations

import sys
from typing import Any

from .registry import options_provider, register

__all__: list[str] = []


def _sklearn() -> Any:
    return sys.modules["sklearn"]


register(
    options_provider(
        "sklearn.config",
        "sklearn",
        "scikit-learn's configuration (set_config)",
        lambda: _sklearn().get_config(),
        lambda **config: _sklearn().set_config(**config),
    )
)
