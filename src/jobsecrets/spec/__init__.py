"""The spec file (``jobsecrets.yml``): its data model and its parser.

:mod:`.model` holds the frozen dataclasses every later layer reads; :mod:`.parser` builds them from a
file, with every problem listed with file and line; :mod:`.policy` and :mod:`.identity` are the
sections with a module of their own.
"""

from __future__ import annotations

__all__ = [
    "BackendSpec",
    "IdentityConfig",
    "Policy",
    "RedactSettings",
    "Rule",
    "SecretSpec",
    "Settings",
    "Spec",
    "load_spec",
    "parse_spec",
]

from .identity import IdentityConfig
from .model import BackendSpec, RedactSettings, SecretSpec, Settings, Spec
from .parser import load_spec, parse_spec
from .policy import Policy, Rule
