"""Find backend classes by type name through the ``jobsecrets.backends`` entry-point group.

The built-in backends are registered in this package's own metadata exactly like a third party's, so
there is one way in. Loading a class imports only its module, never its client library.
"""

from __future__ import annotations

__all__ = ["ENTRY_POINT_GROUP", "available_types", "get_backend_class"]

from functools import cache, lru_cache
from importlib.metadata import EntryPoint, entry_points

from ..errors import ConfigError
from .base import Backend

ENTRY_POINT_GROUP = "jobsecrets.backends"


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        # First registration wins, so a third party cannot silently replace a built-in.
        found.setdefault(ep.name, ep)
    return found


def available_types() -> list[str]:
    """The backend type names that can be used in ``type:``."""
    return sorted(_entry_points())


@cache
def get_backend_class(type_name: str) -> type[Backend]:
    """Load the backend class registered as ``type_name``; ``ConfigError`` when there is none."""
    eps = _entry_points()
    if type_name not in eps:
        known = ", ".join(sorted(eps)) or "none: is jobsecrets installed?"
        raise ConfigError(f"unknown backend type {type_name!r} (known: {known})")
    cls = eps[type_name].load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(
            f"entry point {type_name!r} in {ENTRY_POINT_GROUP} is not a Backend class"
        )
    return cls
