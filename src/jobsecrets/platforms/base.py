"""What jobsecrets needs to know about a CI system; one subclass per system, one module each.

Adding a CI system is one module under :mod:`jobsecrets.platforms` defining a :class:`Platform`
subclass, and its name in :data:`jobsecrets.platforms.PLATFORM_MODULES`.
"""

from __future__ import annotations

__all__ = ["Platform", "TokenSource"]

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class TokenSource:
    """Where the job's OIDC identity token comes from; never the token itself.

    ``kind``: github, gitlab, file, env or none. ``missing`` says why no token can be had (empty
    when the source looks usable) and ``hint`` what to do. A token is either requested
    (``request(audience, timeout, clock, sleep)``, GitHub's endpoint) or read as it is, from the
    variable ``variable`` or the file ``path``.
    """

    kind: str
    detail: str
    missing: str = ""
    hint: str = ""
    variable: str = ""
    path: str = ""
    request: Callable[..., str] | None = field(default=None, repr=False)


class Platform:
    """One CI system. The base class is the local machine: no CI, no identity, no job ids."""

    #: ``github``, ``gitlab``, ``local``.
    name: ClassVar[str] = "local"
    #: Audit record key -> environment variables, first set one wins. Only public CI metadata.
    audit_variables: ClassVar[Mapping[str, tuple[str, ...]]] = {"actor": ("USER", "LOGNAME")}
    #: True when the platform hands its token in a variable the spec may name (GitLab's
    #: ``id_tokens:``): ``identity.variable`` then names that variable instead of choosing the
    #: ``env`` provider.
    token_in_variable: ClassVar[bool] = False
    #: ``jobsecrets export --format NAME`` handled by this platform's :meth:`export`, if any.
    export_format: ClassVar[str | None] = None

    def detect(self, env: Mapping[str, str]) -> bool:
        """True when this process runs in a job of this CI system (its own marker variables)."""
        return False

    def job_key(self, env: Mapping[str, str]) -> str:
        """Text unique to this job run (the state file's name), ``""`` when there is none."""
        return ""

    def state_base(self, env: Mapping[str, str]) -> str | None:
        """The directory the job's state file belongs in, when the platform has a better one."""
        return None

    def session_name(self, env: Mapping[str, str]) -> str | None:
        """An AWS RoleSessionName naming this job in CloudTrail, when this platform's ids are set."""
        return None

    def token_source(
        self, variable: str | None, audience: str | None, env: Mapping[str, str]
    ) -> TokenSource:
        """Where this platform hands the job its OIDC token (``variable``: a name from the spec)."""
        return TokenSource(
            "none",
            "no CI identity (not running in GitHub Actions or GitLab CI)",
            missing="no CI identity token: not running in GitHub Actions or GitLab CI "
            "and the spec names no token source",
            hint="set 'identity: {file: PATH}' or 'identity: {variable: NAME}' in the "
            "spec to use a token from a file or a variable, or use a backend auth "
            "method that needs no identity (token, approle)",
        )

    def export(self, *args: Any, **kwargs: Any) -> None:
        """Hand the values to later steps (``export --format`` :attr:`export_format`)."""
        raise NotImplementedError(f"{self.name} has no export format")
