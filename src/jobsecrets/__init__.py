"""jobsecrets: give every CI job exactly the secrets it asks for, for as long as it runs, and nothing more.

The command line (``jobsecrets plan|run|export|revoke``) is the main interface; this package also exposes
the spec parser, the resolver and the backend interface for wrappers and third-party backends.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AuthError",
    "Backend",
    "BackendError",
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

from ._version import __version__
from .backends.base import Backend
from .errors import (
    AccessDenied,
    AuthError,
    BackendError,
    ConfigError,
    IdentityError,
    JobSecretsError,
    PolicyViolation,
    RevokeError,
    SecretNotFound,
)
from .refs import Reference, parse_reference
from .spec import Spec, load_spec, parse_spec
