"""The error tree. Every failure jobsecrets reports on purpose is one of these.

::

    JobSecretsError (exit 1)          root; carries ``exit_code``
    ├── ConfigError (exit 2)          the spec file or the command line is wrong; nothing was fetched
    ├── IdentityError (exit 3)        no CI identity token could be found or obtained
    ├── AuthError (exit 3)            a secret store refused to sign us in
    │   └── ClaimsRefused              ... because the CI identity's claims do not match the role
    ├── SecretNotFound (exit 4)       a path, secret or field does not exist
    ├── AccessDenied (exit 5)         signed in, but not allowed to read this path
    ├── BackendError (exit 6)         a store failed or could not be reached
    │   └── StoreUnavailable          ... for a reason of its own (network, 5xx, 429, sealed): sign-in too
    ├── RevokeError (exit 7)          a lease or token could not be revoked
    ├── PolicyViolation (exit 8)      a secret breaks a ``policy:`` rule set to fail
    ├── LeakFound (exit 9)            ``scan`` found a value (in some form) in a file or commit
    ├── ScanIncomplete (exit 10)      ``scan`` found none, but could not read everything
    ├── ValueNotExportable (exit 11)  a fetched value cannot be handed over exactly as asked
    └── ChildError (exit 126 / 127)   ``run`` could not start the command

Messages never contain a secret value: they name the variable and the reference instead.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AuthError",
    "BackendError",
    "ChildError",
    "ClaimsRefused",
    "ConfigError",
    "IdentityError",
    "JobSecretsError",
    "LeakFound",
    "PolicyViolation",
    "Problem",
    "RevokeError",
    "ScanIncomplete",
    "SecretNotFound",
    "StoreUnavailable",
    "ValueNotExportable",
]

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem found in a spec file, with where it is."""

    message: str
    file: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}"


class JobSecretsError(Exception):
    """Root of every error jobsecrets raises on purpose; ``exit_code`` is the process exit code."""

    exit_code: int = 1
    hint: str = ""
    #: Set by :meth:`about`: what failed (variables, a reference) and why, apart, so that one
    #: cause hitting many variables is reported once with the variables grouped.
    subject: str = ""
    cause: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    @classmethod
    def about(cls, subject: str, cause: str, *, hint: str = "") -> JobSecretsError:
        """``SUBJECT: CAUSE``, with both kept for grouping (see :mod:`jobsecrets.failures`)."""
        error = cls(f"{subject}: {cause}", hint=hint)
        error.subject = subject
        error.cause = cause
        return error

    @property
    def message(self) -> str:
        """The one-line message, without the hint."""
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(JobSecretsError):
    """The spec file or the command line is invalid. ``problems`` lists every problem found."""

    exit_code = 2

    def __init__(
        self, message: str, problems: list[Problem] | None = None, *, hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems: list[Problem] = list(problems or [])

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        lines = [self.message] + [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class IdentityError(JobSecretsError):
    """The CI job's identity (OIDC) token could not be found or requested."""

    exit_code = 3


class AuthError(JobSecretsError):
    """A secret store refused the login."""

    exit_code = 3


class ClaimsRefused(AuthError):
    """A store refused to sign the CI job's identity in: its claims do not match the role.

    ``plan --check`` shows the token's public claims next to this, which is what to compare.
    """


class SecretNotFound(JobSecretsError):
    """A referenced path, secret or field does not exist."""

    exit_code = 4


class AccessDenied(JobSecretsError):
    """The store signed us in but denies access to a path."""

    exit_code = 5


class BackendError(JobSecretsError):
    """A store failed, timed out or could not be reached."""

    exit_code = 6


class StoreUnavailable(BackendError):
    """The store could not be reached, or answered with a failure of its own (5xx, 429, sealed).

    Apart from :class:`BackendError` so a sign-in that fails this way stays exit 6 ("could not
    be reached") instead of becoming a refusal (exit 3).
    """


class RevokeError(JobSecretsError):
    """At least one lease or token could not be revoked."""

    exit_code = 7


class PolicyViolation(JobSecretsError):
    """A secret breaks a policy rule whose ``on_violation`` is ``fail``."""

    exit_code = 8


class LeakFound(JobSecretsError):
    """``scan`` found a value of the job in a file, an archive member or a commit."""

    exit_code = 9


class ScanIncomplete(JobSecretsError):
    """``scan`` found no value but could not read everything (unreadable, damaged, a bomb)."""

    exit_code = 10


class ValueNotExportable(JobSecretsError):
    """A fetched value cannot be handed over exactly as asked: the export format, the CI
    system's variable files or ``execve`` cannot carry it (a NUL byte, binary, a newline for
    docker's env-file, a value over the kernel's limit). Nothing was written or started; what
    was fetched is revoked. Not exit 2: the spec and the command line are fine, the value is not.
    """

    exit_code = 11


class ChildError(JobSecretsError):
    """``run`` could not start the child command (127: not found, 126: not executable)."""

    exit_code = 126
