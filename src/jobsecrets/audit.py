"""The audit log (``--audit-log FILE|-``): one JSON line per variable per resolution, never a value.

A record says who (the CI context from the platform's own environment), what (backend, path, version,
a hash of the lease id, TTLs), and how it ended (outcome, policy result). The record format is versioned
(``"schema": "jobsecrets.audit/v1"``), documented in ``docs/audit.md`` and described by the JSON Schema
``schema/audit-record.v1.schema.json``.

Why a lease id is hashed rather than written: Vault lease ids are not credentials, but an audit log is
kept long and read widely, and the hash still joins records to the store's own audit trail
(``sha256`` of the lease id the store reports). Tokens appear only by accessor.

Lines are written with one ``write(2)`` on an ``O_APPEND`` descriptor, so concurrent jobs appending to
one shared file do not interleave within a record.
"""

from __future__ import annotations

__all__ = [
    "SCHEMA_ID",
    "AuditLog",
    "ci_context",
    "lease_hash",
    "open_audit",
]

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from .errors import ConfigError, JobSecretsError

if TYPE_CHECKING:
    from .policy import PolicyResult
    from .resolver import Resolution, ResolvedVar
    from .session import Session

SCHEMA_ID = "jobsecrets.audit/v1"

# platform -> record key -> environment variables, first set one wins. Only non-secret CI metadata.
_CI_VARIABLES: dict[str, dict[str, tuple[str, ...]]] = {
    "github": {
        "server": ("GITHUB_SERVER_URL",),
        "project": ("GITHUB_REPOSITORY",),
        "pipeline": ("GITHUB_RUN_ID",),
        "attempt": ("GITHUB_RUN_ATTEMPT",),
        "workflow": ("GITHUB_WORKFLOW_REF", "GITHUB_WORKFLOW"),
        "job": ("GITHUB_JOB",),
        "ref": ("GITHUB_REF",),
        "sha": ("GITHUB_SHA",),
        "actor": ("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"),
        "event": ("GITHUB_EVENT_NAME",),
    },
    "gitlab": {
        "server": ("CI_SERVER_URL",),
        "project": ("CI_PROJECT_PATH",),
        "pipeline": ("CI_PIPELINE_ID",),
        "job_id": ("CI_JOB_ID",),
        "job": ("CI_JOB_NAME",),
        "ref": ("CI_COMMIT_REF_NAME",),
        "sha": ("CI_COMMIT_SHA",),
        "actor": ("GITLAB_USER_LOGIN",),
        "event": ("CI_PIPELINE_SOURCE",),
        "environment": ("CI_ENVIRONMENT_NAME",),
    },
    "local": {
        "actor": ("USER", "LOGNAME"),
    },
}
_MAX_FIELD = 256


def ci_context(env: Mapping[str, str]) -> dict[str, Any]:
    """The CI context of this job: platform and the run's public identifiers (never a token)."""
    from .identity import detect_platform

    platform = detect_platform(env)
    context: dict[str, Any] = {"platform": platform}
    for key, names in _CI_VARIABLES[platform].items():
        value = next((env[name] for name in names if env.get(name)), None)
        # Bounded and control-free: the environment is the job's, and the log is read by tools.
        context[key] = None if value is None else _clean(value)
    return context


def _clean(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned[:_MAX_FIELD]


def lease_hash(lease_id: str) -> str:
    """``sha256:<hex>`` of a lease id: joins records to the store's audit without copying the id."""
    return "sha256:" + hashlib.sha256(lease_id.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AuditLog:
    """An open audit log. Use :func:`open_audit`."""

    def __init__(self, target: str, stream: IO[str] | None = None, fd: int | None = None) -> None:
        self.target = target
        self._stream = stream
        self._fd = fd

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record as one JSON line."""
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str) + "\n"
        try:
            if self._fd is not None:
                data = line.encode("utf-8")
                written = os.write(self._fd, data)
                if written != len(data):
                    raise OSError("short write")
            elif self._stream is not None:
                self._stream.write(line)
                self._stream.flush()
        except OSError as error:
            # An access that cannot be recorded must not go ahead: the caller revokes.
            raise JobSecretsError(
                f"cannot write the audit log {self.target}: {error.strerror or error}"
            ) from None

    def close(self) -> None:
        """Close the file (stdout stays open)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ---- records -----------------------------------------------------------------------------

    @staticmethod
    def _base(session: Session, command: str, ci: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID,
            "time": _now(),
            "command": command,
            "spec": os.path.abspath(session.spec.path),
            "ci": dict(ci),
        }

    def resolved(
        self,
        session: Session,
        command: str,
        resolution: Resolution,
        results: Mapping[str, PolicyResult],
        *,
        failed: bool,
        revoked: set[str],
    ) -> None:
        """One record per variable of a resolution (and per skipped optional variable)."""
        ci = ci_context(session.env)
        tokens = {name: b.token_record() for name, b in session.ledger.backends.items()}
        for var in resolution.variables:
            result = results.get(var.name)
            if result is not None and result.result == "fail":
                outcome = "revoked" if var.name in revoked else "policy_violation"
            elif failed:
                # All or nothing: another variable broke a fail rule, so this one was not handed over.
                outcome = "withheld"
            else:
                outcome = "ok"
            record = self._base(session, command, ci)
            record.update(self._variable(session, var, tokens))
            record["outcome"] = outcome
            record["error"] = None
            record["policy"] = (
                result.as_dict() if result is not None else {"result": "none", "findings": []}
            )
            self.write(record)
        for name in resolution.skipped:
            record = self._base(session, command, ci)
            record.update(self._from_spec(session, name))
            record.update(outcome="skipped", error=None, policy={"result": "none", "findings": []})
            self.write(record)

    def resolution_failed(self, session: Session, command: str, error: JobSecretsError) -> None:
        """Resolution failed as a whole: one record per requested variable, outcome ``error``.

        The error is named by kind and exit code only; its message is on stderr.
        """
        ci = ci_context(session.env)
        for secret in session.spec.secrets:
            record = self._base(session, command, ci)
            record.update(self._from_spec(session, secret.name))
            record.update(
                outcome="error",
                error={"kind": type(error).__name__, "exit_code": error.exit_code},
                policy={"result": "none", "findings": []},
            )
            self.write(record)

    @staticmethod
    def _from_spec(session: Session, name: str) -> dict[str, Any]:
        secret = session.spec.secret(name)
        backend = session.spec.backends[secret.backend]
        return {
            "variable": name,
            "backend": backend.name,
            "backend_type": backend.type,
            "ref": secret.ref.raw,
            "path": secret.ref.path,
            "field": secret.ref.field,
            "version": None,
            "updated": None,
            "lease": None,
            "token": None,
        }

    @staticmethod
    def _variable(session: Session, var: ResolvedVar, tokens: Mapping[str, Any]) -> dict[str, Any]:
        backend = session.spec.backends.get(var.backend)
        document = var.document
        lease = document.lease if document is not None else None
        token = tokens.get(var.backend)
        from .policy import spec_secret_of

        secret = spec_secret_of(session.spec, var)
        field_name = secret.ref.field if secret is not None else None
        return {
            "variable": var.name,
            "backend": var.backend,
            "backend_type": backend.type if backend is not None else None,
            "ref": var.ref,
            "path": var.path,
            "field": field_name,
            "version": var.version,
            "updated": _iso(document.updated) if document is not None else None,
            "lease": (
                {
                    "id_sha256": lease_hash(lease.lease_id),
                    "ttl": lease.ttl,
                    "renewable": lease.renewable,
                }
                if lease is not None
                else None
            ),
            "token": (
                {"accessor": token.accessor or None, "ttl": token.ttl}
                if token is not None
                else None
            ),
        }


def open_audit(target: str | None, env: Mapping[str, str] | None = None) -> AuditLog | None:
    """Open ``target`` for appending (created 0600), ``-`` for stdout, ``None`` for no audit log."""
    if not target:
        return None
    if target == "-":
        return AuditLog("-", stream=sys.stdout)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise ConfigError(
            f"cannot open the audit log {target}: {error.strerror or error}",
            hint="--audit-log takes a writable file path, or - for stdout",
        ) from None
    return AuditLog(target, fd=fd)
