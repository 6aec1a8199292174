"""The spec file as frozen dataclasses: what the parser produces and every later layer reads.

Nothing here parses YAML or talks to a store: a :class:`Spec` is plain data, valid by construction
(:mod:`jobsecrets.spec.parser` builds one only from a file without problems).
"""

from __future__ import annotations

__all__ = [
    "BackendSpec",
    "RedactSettings",
    "SecretSpec",
    "Settings",
    "Spec",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import ReadRequest
from ..errors import ConfigError
from ..fieldsets import is_field_set
from ..refs import Reference
from .identity import IdentityConfig
from .policy import Policy


@dataclass(frozen=True)
class BackendSpec:
    """One entry of ``backends:``. ``options`` holds everything but ``type``."""

    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None
    implicit: bool = False


@dataclass(frozen=True)
class SecretSpec:
    """One entry of ``secrets:``: a variable and where its value comes from.

    For a prefix selection (``ref`` ending in ``*``) ``name`` is only a label: the variables are
    named after the secrets found under the prefix.
    """

    name: str
    ref: Reference
    backend: str
    file: bool = False
    optional: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    encoding: str = "utf-8"
    name_prefix: str = ""
    policy: Policy | None = None
    line: int | None = None
    flatten: bool = False

    @property
    def selects_fields(self) -> bool:
        """True for ``#*``/``#**``: every field of the document is a variable (``name`` is a label)."""
        return is_field_set(self.ref.field)

    @property
    def is_prefix(self) -> bool:
        """True when this entry selects every secret under a prefix."""
        return self.ref.is_prefix

    def read_request(self, path: str | None = None) -> ReadRequest:
        """The read this variable needs (``path`` overrides the reference's, for prefix members)."""
        return ReadRequest(
            path=self.ref.path if path is None else path,
            params=dict(self.params),
            options=dict(self.options),
            variables=(self.name,),
            ref=self.ref.raw,
        )


@dataclass(frozen=True)
class RedactSettings:
    """How values are masked in output."""

    replacement: str = "***"
    min_line_length: int = 4


@dataclass(frozen=True)
class Settings:
    """Timeouts and concurrency of resolution."""

    timeout: int = 10
    deadline: int = 60
    # One wave of reads for 100 paths in one store (Vault has no batch read: a request per
    # path), still bounded: at most this many requests at once per store.
    concurrency: int = 100


@dataclass(frozen=True)
class Spec:
    """A whole, valid spec file."""

    path: str
    version: int
    backends: Mapping[str, BackendSpec]
    secrets: tuple[SecretSpec, ...]
    allow_names: tuple[str, ...] = ()
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    redact: RedactSettings = field(default_factory=RedactSettings)
    settings: Settings = field(default_factory=Settings)
    policy: Policy = field(default_factory=Policy)

    def secret(self, name: str) -> SecretSpec:
        """The secret entry called ``name``."""
        for secret in self.secrets:
            if secret.name == name:
                return secret
        raise KeyError(name)

    def select(self, only: list[str] | None) -> Spec:
        """A spec restricted to the named entries (``--only``); unknown names are a ConfigError."""
        if not only:
            return self
        known = {s.name for s in self.secrets}
        unknown = [n for n in only if n not in known]
        if unknown:
            raise ConfigError(
                "--only names variables that are not in the spec: " + ", ".join(sorted(unknown)),
                hint="names must match keys under 'secrets:'",
            )
        wanted = set(only)
        return Spec(
            path=self.path,
            version=self.version,
            backends=self.backends,
            secrets=tuple(s for s in self.secrets if s.name in wanted),
            allow_names=self.allow_names,
            identity=self.identity,
            redact=self.redact,
            settings=self.settings,
            policy=self.policy,
        )
