"""jobsecrets: give every CI job exactly the secrets it asks for, for as long as it runs, and nothing more.

The command line (``jobsecrets plan|run|export|revoke``) is the main interface; this package also exposes
the spec parser, the resolver and the backend interface for wrappers and third-party backends.

The public names are loaded on first use (PEP 562): ``jobsecrets --version`` imports this package, and
every CI job pays its start-up, so importing it must not pull in the spec parser, YAML or the backends.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AuthError",
    "Backend",
    "BackendError",
    "ClaimsRefused",
    "ConfigError",
    "IdentityError",
    "JobSecretsError",
    "PolicyViolation",
    "Reference",
    "RevokeError",
    "SecretNotFound",
    "Spec",
    "__version__",
    "load_spec",
    "parse_reference",
    "parse_spec",
]

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .backends.base import Backend
    from .errors import (
        AccessDenied,
        AuthError,
        BackendError,
        ClaimsRefused,
        ConfigError,
        IdentityError,
        JobSecretsError,
        PolicyViolation,
        RevokeError,
        SecretNotFound,
    )
    from .refs import Reference, parse_reference
    from .spec import Spec, load_spec, parse_spec

# Public name -> the private module that defines it.
_LAZY = {
    "Backend": ".backends.base",
    "AccessDenied": ".errors",
    "AuthError": ".errors",
    "BackendError": ".errors",
    "ClaimsRefused": ".errors",
    "ConfigError": ".errors",
    "IdentityError": ".errors",
    "JobSecretsError": ".errors",
    "PolicyViolation": ".errors",
    "RevokeError": ".errors",
    "SecretNotFound": ".errors",
    "Reference": ".refs",
    "parse_reference": ".refs",
    "Spec": ".spec",
    "load_spec": ".spec",
    "parse_spec": ".spec",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
