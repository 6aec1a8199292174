"""What tests need, for jobsecrets' own and for third-party backends and users' specs.

- :class:`BackendConformance`: the whole backend contract as a pytest suite;
- :class:`MemoryStore` / :class:`MemoryBackend`: an in-memory store (plain data or a function
  instead of a server), to pass wherever a backend factory is taken;
- :class:`FakeBackend`: the same over files (``type: fake``), for ``jobsecrets`` subprocesses;
- :class:`SpecBuilder`: spec files written from code;
- :class:`GithubApiServer`: a local server answering like GitHub's REST API for the ``github``
  backend (App JWT, installations, installation tokens and their revocation).

Names load on first use: the ``fake`` backend's entry point imports this package, and that must not
need pytest (only the conformance suite does).
"""

from __future__ import annotations

__all__ = [
    "BackendConformance",
    "FakeBackend",
    "GithubApiServer",
    "MemoryBackend",
    "MemoryStore",
    "SpecBuilder",
]

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conformance import BackendConformance
    from .fake import FakeBackend
    from .github_api import GithubApiServer
    from .memory import MemoryBackend, MemoryStore
    from .specs import SpecBuilder

_LAZY = {
    "BackendConformance": ".conformance",
    "FakeBackend": ".fake",
    "GithubApiServer": ".github_api",
    "MemoryBackend": ".memory",
    "MemoryStore": ".memory",
    "SpecBuilder": ".specs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
