"""polars' ``Config`` (table formatting, streaming chunk size, verbosity...).

Most of it lives in ``POLARS_*`` environment variables, which polars reads in Rust where no
recording ``os.environ`` sees it: the whole configuration, as ``pl.Config.save()`` gives it, is
one setting.
"""

from __future__ import annotations

import sys

from .registry import StateProvider, register

__all__: list[str] = []


def _config() -> str:
    return str(sys.modules["polars"].Config.save())


def _restore(saved: str) -> None:
    if _config() != saved:
        sys.modules["polars"].Config.load(saved)


register(StateProvider("polars.config", _config, _restore, module="polars", description="polars Config"))
