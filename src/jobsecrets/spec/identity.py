"""The spec's optional ``identity:`` section: where the CI job's OIDC token comes from."""

from __future__ import annotations

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_REQUEST_TIMEOUT",
    "IDENTITY_KEYS",
    "PROVIDERS",
    "IdentityConfig",
]

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..durations import parse_duration

PROVIDERS = ("auto", "github", "gitlab", "file", "env")
# Vault's own jwt auth allows 60s of leeway by default; refusing tokens inside that window
# avoids a login that fails on the server with a less helpful message.
DEFAULT_CLOCK_SKEW = 60
# GitHub's token endpoint is normally fast; 30s covers its occasional 5xx bursts.
DEFAULT_REQUEST_TIMEOUT = 30
IDENTITY_KEYS = ("provider", "audience", "variable", "file", "clock_skew", "timeout")


@dataclass(frozen=True)
class IdentityConfig:
    """The spec's optional top-level ``identity:`` mapping.

    ``audience`` is the default audience requested from GitHub when a backend asks for none;
    GitLab and static tokens carry the audience they were minted with. ``variable`` names the
    environment variable holding a token (GitLab default ``VAULT_ID_TOKEN``), ``file`` a token
    file. ``clock_skew`` and ``timeout`` are seconds.
    """

    provider: str = "auto"
    audience: str | None = None
    variable: str | None = None
    file: str | None = None
    clock_skew: int = DEFAULT_CLOCK_SKEW
    timeout: int = DEFAULT_REQUEST_TIMEOUT

    @classmethod
    def from_mapping(cls, data: object) -> tuple[IdentityConfig, list[str]]:
        """Build a config from the parsed YAML; return it with every problem found.

        Problems are plain messages (the spec parser adds file and line). With problems,
        the returned config holds the defaults for the offending keys.
        """
        if data is None:
            return cls(), []
        if not isinstance(data, Mapping):
            return cls(), [f"identity: expected a mapping, got {type(data).__name__}"]
        problems: list[str] = []
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in IDENTITY_KEYS:
                problems.append(
                    f"identity: unknown key {key!r} (expected one of: {', '.join(IDENTITY_KEYS)})"
                )
                continue
            if key in ("clock_skew", "timeout"):
                try:
                    values[key] = parse_duration(value)
                except ValueError as exc:
                    problems.append(f"identity.{key}: {exc}")
                continue
            if not isinstance(value, str) or not value.strip():
                problems.append(f"identity.{key}: expected a non-empty string")
                continue
            values[key] = value.strip()
        provider = values.get("provider", "auto")
        if provider not in PROVIDERS:
            problems.append(f"identity.provider: {provider!r} is not one of {', '.join(PROVIDERS)}")
            values.pop("provider")
            provider = "auto"
        if provider == "file" and "file" not in values:
            problems.append("identity: provider 'file' needs 'file: PATH'")
        if provider == "env" and "variable" not in values:
            problems.append("identity: provider 'env' needs 'variable: NAME'")
        if provider == "auto" and "file" in values and "variable" in values:
            problems.append(
                "identity: set either 'file' or 'variable', not both "
                "(or choose one with 'provider:')"
            )
        if values.get("timeout") == 0:
            problems.append("identity.timeout: must be more than 0s")
            values.pop("timeout")
        return cls(**values), problems
