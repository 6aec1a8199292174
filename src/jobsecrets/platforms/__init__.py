"""How values reach a job on each CI platform, and how masking is announced there.

Each platform module exposes ``export(resolution, masks, env, output) -> None`` for
``jobsecrets export --format NAME``. They are imported only when that format is used.
"""

from __future__ import annotations

__all__ = ["PLATFORM_FORMATS", "load_exporter"]

import importlib
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

# format name -> module under jobsecrets.platforms
PLATFORM_FORMATS = {"github": "github", "gitlab": "gitlab"}


def load_exporter(fmt: str) -> Callable[..., Any]:
    """The ``export`` function of the platform module for ``fmt``."""
    try:
        module = importlib.import_module(f"{__name__}.{PLATFORM_FORMATS[fmt]}")
    except (KeyError, ModuleNotFoundError):
        raise ConfigError(f"export format {fmt!r} is not available in this version") from None
    exporter: Callable[..., Any] = module.export
    return exporter
