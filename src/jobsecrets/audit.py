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

import json
import os
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from .errors import ConfigError, JobSecretsError
from .platforms import detect
from .safe_files import open_append
from .timeutil import iso_utc, now_iso_ms

if TYPE_CHECKING:
    from .backends.base import Document, TokenRecord
    from .policy import PolicyResult
    from .resolved import FailedVar, Resolution, ResolvedVar
    from .spec.model import Spec

SCHEMA_ID = "jobsecrets.audit/v1"

_MAX_FIELD = 256


def ci_context(env: Mapping[str, str]) -> dict[str, Any]:
    """The CI context of this job: platform and the run's public identifiers (never a token)."""
    platform = detect(env)
    context: dict[str, Any] = {"platform": platform.name}
    for key, names in platform.audit_variables.items():
        value = next((env[name] for name in names if env.get(name)), None)
        # Bounded and control-free: the environment is the job's, and the log is read by tools.
        context[key] = None if value is None else _clean(value)
    return context


def _clean(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned[:_MAX_FIELD]


def lease_hash(lease_id: str) -> str:
    """``sha256:<hex>`` of a lease id: joins records to the store's audit without copying the id."""
    import hashlib  # here: OpenSSL's start-up (~5 ms) only when an audit log is written

    return "sha256:" + hashlib.sha256(lease_id.encode("utf-8")).hexdigest()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


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
            # An access that cannot be recorded must not go ahead: the caller revokes. Exit 2,
            # as when the file cannot be opened: --audit-log names a target that fails (a full
            # disk), not a bug of ours (1).
            raise ConfigError(
                f"cannot write the audit log {self.target}: {error.strerror or error}",
                hint="--audit-log takes a writable file path, or - for stdout; "
                "what was fetched has been revoked",
            ) from None

    def close(self) -> None:
        """Close the file (stdout stays open)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ---- records -----------------------------------------------------------------------------

    @staticmethod
    def _base(spec: Spec, command: str, ci: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID,
            "time": now_iso_ms(),
            "command": command,
            "spec": os.path.abspath(spec.path),
            "ci": dict(ci),
        }

    def resolved(
        self,
        spec: Spec,
        env: Mapping[str, str],
        command: str,
        resolution: Resolution,
        results: Mapping[str, PolicyResult],
        *,
        tokens: Mapping[str, TokenRecord | None],
        failed: bool,
        revoked: set[str],
    ) -> None:
        """One record per variable of a resolution (and per skipped optional variable).

        ``tokens``: backend name -> the login token jobsecrets obtained there (named by accessor).
        """
        ci = ci_context(env)
        for var in resolution.variables:
            result = results.get(var.name)
            if result is not None and result.result == "fail":
                outcome = "revoked" if var.name in revoked else "policy_violation"
            elif failed:
                # All or nothing: another variable broke a fail rule, so this one was not handed over.
                outcome = "withheld"
            else:
                outcome = "ok"
            record = self._base(spec, command, ci)
            record.update(self._variable(spec, var, tokens))
            record["outcome"] = outcome
            record["error"] = None
            record["policy"] = (
                result.as_dict() if result is not None else {"result": "none", "findings": []}
            )
            self.write(record)
        for name in resolution.skipped:
            record = self._base(spec, command, ci)
            record.update(self._from_spec_or_member(spec, name))
            record.update(outcome="skipped", error=None, policy={"result": "none", "findings": []})
            self.write(record)

    def resolution_failed(
        self,
        spec: Spec,
        env: Mapping[str, str],
        command: str,
        error: JobSecretsError,
        partial: Resolution | None = None,
        *,
        tokens: Mapping[str, TokenRecord | None] | None = None,
    ) -> None:
        """Resolution failed: nothing was handed over. One record per variable.

        ``partial`` is what the resolver reported variable by variable (see ``resolve``'s
        ``on_failure``): a variable read fine is ``withheld``, with its lease (issued, and revoked
        with the rest when the command ends); a failed one is ``error`` with its own error kind,
        and its lease when the read itself succeeded; skipped optional ones are ``skipped``.
        Without ``partial`` (resolution never got that far), or for an entry it does not cover,
        the record is ``error`` with ``error``'s kind. Errors are named by kind and exit code
        only; their messages are on stderr.
        """
        ci = ci_context(env)
        tokens = tokens or {}
        none: dict[str, Any] = {"result": "none", "findings": []}
        covered: set[str] = set()
        if partial is not None:
            for var in partial.variables:
                record = self._base(spec, command, ci)
                record.update(self._variable(spec, var, tokens))
                record.update(outcome="withheld", error=None, policy=none)
                self.write(record)
            for failed in partial.failed:
                record = self._base(spec, command, ci)
                record.update(self._failed(spec, failed, tokens))
                record.update(outcome="error", error=_kind(failed.error), policy=none)
                self.write(record)
            for name in partial.skipped:
                record = self._base(spec, command, ci)
                record.update(self._from_spec_or_member(spec, name))
                record.update(outcome="skipped", error=None, policy=none)
                self.write(record)
            covered = _entries(spec, partial)
        for secret in spec.secrets:
            if secret.name in covered:
                continue
            record = self._base(spec, command, ci)
            record.update(self._from_spec(spec, secret.name))
            record.update(outcome="error", error=_kind(error), policy=none)
            self.write(record)

    @staticmethod
    def _from_spec(spec: Spec, name: str) -> dict[str, Any]:
        secret = spec.secret(name)
        backend = spec.backends[secret.backend]
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
    def _from_spec_or_member(spec: Spec, name: str) -> dict[str, Any]:
        """``_from_spec`` for a skipped entry; a skipped prefix member has no entry of its name."""
        if any(s.name == name for s in spec.secrets):
            return AuditLog._from_spec(spec, name)
        return {
            "variable": name,
            "backend": "",
            "backend_type": None,
            "ref": "",
            "path": "",
            "field": None,
            "version": None,
            "updated": None,
            "lease": None,
            "token": None,
        }

    @staticmethod
    def _failed(
        spec: Spec, failed: FailedVar, tokens: Mapping[str, TokenRecord | None]
    ) -> dict[str, Any]:
        document = failed.document
        return AuditLog._fields(
            spec,
            tokens,
            name=failed.name,
            backend_name=failed.backend,
            ref=failed.ref,
            path=failed.path,
            field_name=failed.secret.ref.field if failed.secret is not None else None,
            version=document.version if document is not None else None,
            document=document,
        )

    @staticmethod
    def _variable(
        spec: Spec, var: ResolvedVar, tokens: Mapping[str, TokenRecord | None]
    ) -> dict[str, Any]:
        return AuditLog._fields(
            spec,
            tokens,
            name=var.name,
            backend_name=var.backend,
            ref=var.ref,
            path=var.path,
            field_name=var.secret.ref.field if var.secret is not None else None,
            version=var.version,
            document=var.document,
        )

    @staticmethod
    def _fields(
        spec: Spec,
        tokens: Mapping[str, TokenRecord | None],
        *,
        name: str,
        backend_name: str,
        ref: str,
        path: str,
        field_name: str | None,
        version: str | None,
        document: Document | None,
    ) -> dict[str, Any]:
        backend = spec.backends.get(backend_name)
        lease = document.lease if document is not None else None
        token = tokens.get(backend_name)
        return {
            "variable": name,
            "backend": backend_name,
            "backend_type": backend.type if backend is not None else None,
            "ref": ref,
            "path": path,
            "field": field_name,
            "version": version,
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


def _kind(error: JobSecretsError) -> dict[str, Any]:
    """An error as a record names it: its class and exit code, never its message."""
    return {"kind": type(error).__name__, "exit_code": error.exit_code}


def _entries(spec: Spec, partial: Resolution) -> set[str]:
    """The spec entries ``partial`` has a record for (a prefix or ``#*`` entry through its
    members), so that the rest get one each."""
    covered = {v.secret.name for v in partial.variables if v.secret is not None}
    covered |= {f.secret.name for f in partial.failed if f.secret is not None}
    covered |= set(partial.skipped)
    return covered & {s.name for s in spec.secrets}


def open_audit(target: str | None, env: Mapping[str, str] | None = None) -> AuditLog | None:
    """Open ``target`` for appending (created 0600), ``-`` for stdout, ``None`` for no audit log."""
    if not target:
        return None
    if target == "-":
        return AuditLog("-", stream=sys.stdout)
    try:
        fd = open_append(target, 0o600, follow=False)
    except OSError as error:
        raise ConfigError(
            f"cannot open the audit log {target}: {error.strerror or error}",
            hint="--audit-log takes a writable file path, or - for stdout",
        ) from None
    return AuditLog(target, fd=fd)
