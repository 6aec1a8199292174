"""What resolution hands over: each variable with its value and the spec entry it came from.

Plain data, built by :mod:`jobsecrets.resolver` and read by the pipeline, the audit log, the exporters
and ``run``. A value is never shown: it is left out of every ``repr``.

A failed resolution hands nothing over, but what it did is still a fact to record: the resolver reports
a partial :class:`Resolution` (see :func:`jobsecrets.resolver.resolve`'s ``on_failure``) whose
``variables`` were read and withheld, and whose ``failed`` each name their own error.
"""

from __future__ import annotations

__all__ = ["FailedVar", "Resolution", "ResolvedVar"]

from dataclasses import dataclass, field

from .backends.base import Document
from .errors import JobSecretsError
from .spec.model import SecretSpec


@dataclass(frozen=True)
class ResolvedVar:
    """A resolved variable: its value and where it came from (for summaries and audit; never shown).

    ``secret`` is the spec entry that asked for it (for a prefix selection's members, the selection
    itself; ``None`` for credentials a backend exports on its own, which no entry names). ``ref``
    is the reference as the user reads it (``aws:ci/* -> ci/db`` for a prefix member).
    """

    name: str
    value: str | bytes = field(repr=False)
    backend: str
    path: str
    ref: str
    file: str | None = None
    version: str | None = None
    lease_id: str | None = None
    lease_ttl: int | None = None
    document: Document | None = field(default=None, repr=False)
    secret: SecretSpec | None = field(default=None, repr=False)

    @property
    def value_bytes(self) -> bytes:
        """The value as bytes (what a file holds and what masking looks for)."""
        value = self.value
        return value if isinstance(value, bytes) else value.encode("utf-8")


@dataclass(frozen=True)
class FailedVar:
    """A variable that could not be resolved, with its own error (not the combined one).

    ``document`` is the store's answer when the read itself succeeded and what followed failed (a
    field missing from a dynamic secret, a binary value): its lease was issued all the same, and
    the audit log names it. ``secret`` is ``None`` for credentials a backend exports on its own.
    """

    name: str
    backend: str
    path: str
    ref: str
    error: JobSecretsError = field(repr=False)
    document: Document | None = field(default=None, repr=False)
    secret: SecretSpec | None = field(default=None, repr=False)


@dataclass
class Resolution:
    """Everything a job gets: the variables (values or file paths) and the extra credentials.

    ``failed`` is empty in a resolution handed to the job; only a partial one (a failure's
    report, never handed over) lists variables there.
    """

    variables: list[ResolvedVar] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[FailedVar] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """Name -> what the environment variable holds (the file path for ``file: true``)."""
        result = {}
        for var in self.variables:
            if var.file is not None:
                result[var.name] = var.file
            else:
                value = var.value
                result[var.name] = (
                    value if isinstance(value, str) else value.decode("utf-8", "replace")
                )
        return result

    def secret_values(self) -> list[bytes]:
        """Every value to mask, as bytes (file contents too: a job may cat the file)."""
        return [var.value_bytes for var in self.variables]
