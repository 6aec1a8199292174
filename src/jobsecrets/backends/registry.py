"""Find backend classes by type name: the built-in ones, then the ``jobsecrets.backends`` entry points.

The built-in backends are registered in this package's metadata like a third party's
(``pyproject.toml``), and :data:`BUILTIN` names the same classes (a unit test holds the two
equal), so a spec that uses only built-in types never reads any package's metadata: importing
``importlib.metadata`` and scanning every installed distribution's entry points cost ~20-35 ms
of every ``plan`` and ``run`` (an export through Vault or AWS still imports it: urllib3 does).
A third party's type is looked up in the entry points on first use. Loading a class imports
only its module, never its client library.
"""

from __future__ import annotations

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "available_types", "get_backend_class"]

import importlib
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import Backend

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "jobsecrets.backends"

#: The built-in backend types and their classes, as ``module:attribute`` (the entry points of
#: this package's own metadata). A third party's entry point cannot replace one of these.
BUILTIN: dict[str, str] = {
    "vault": "jobsecrets.backends.vault:VaultBackend",
    "aws": "jobsecrets.backends.aws:AwsBackend",
    "github": "jobsecrets.backends.github:GithubBackend",
    "fake": "jobsecrets.testing.fake:FakeBackend",
}


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points  # only for a type that is not built in

    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        # First registration wins, so a third party cannot silently replace another.
        found.setdefault(ep.name, ep)
    return found


def available_types() -> list[str]:
    """The backend type names that can be used in ``type:``."""
    return sorted(set(BUILTIN) | set(_entry_points()))


def _load_builtin(target: str) -> object:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@cache
def get_backend_class(type_name: str) -> type[Backend]:
    """Load the backend class registered as ``type_name``; ``ConfigError`` when there is none."""
    if type_name in BUILTIN:
        cls = _load_builtin(BUILTIN[type_name])
    else:
        eps = _entry_points()
        if type_name not in eps:
            known = ", ".join(available_types())
            raise ConfigError(f"unknown backend type {type_name!r} (known: {known})")
        cls = eps[type_name].load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(
            f"entry point {type_name!r} in {ENTRY_POINT_GROUP} is not a Backend class"
        )
    return cls
