"""The one path from a spec to a job's variables, shared by ``run`` and ``export``.

open the audit log -> resolve -> evaluate the policy -> revoke each lease that breaks ``max_ttl`` ->
audit every variable -> hand the variables over, or raise.

The audit log is opened first, so an unwritable log fails before anything is fetched. A rule set to
``fail`` raises :class:`~jobsecrets.errors.PolicyViolation` (exit 8) after revoking each offending lease
at once; the caller's cleanup (:meth:`Session.finish`) then ends everything else: all or nothing.
"""

from __future__ import annotations

__all__ = ["evaluate_resolution", "importing", "resolve_checked"]

import contextlib
import importlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from . import _collect
from .audit import open_audit
from .errors import JobSecretsError, PolicyViolation
from .policy import PolicyResult, effective_rules, evaluate, facts_from_document
from .resolved import Resolution, ResolvedVar
from .resolver import resolve
from .session import Session

log = logging.getLogger("jobsecrets")


def resolve_checked(
    session: Session,
    command: str,
    audit_target: str | None,
    *,
    files_dir: str | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Resolution:
    """Resolve with the policy enforced and every variable audited: ``run`` and ``export`` call this.

    ``meanwhile``: work of the caller's for while the stores answer (see :func:`resolve`).
    """
    audit = open_audit(audit_target, session.env)
    # What a failed resolution did, variable by variable (see resolve's on_failure): the raised
    # error combines the causes, and the audit log needs each variable's own.
    partial: list[Resolution] = []
    try:
        try:
            # No collection pauses while resolving (imports and client construction allocate
            # enough to trigger dozens); on again afterwards, before `run` starts the child.
            with _collect.paused():
                resolution = resolve(
                    session.spec,
                    session.context,
                    session.ledger,
                    files_dir=files_dir,
                    backend_factory=session.backend_factory,
                    meanwhile=meanwhile,
                    on_failure=partial.append if audit is not None else None,
                )
        except JobSecretsError as error:
            if audit is not None:
                audit.resolution_failed(
                    session.spec,
                    session.env,
                    command,
                    error,
                    partial[-1] if partial else None,
                    tokens=session.token_records(),
                )
            raise
        finally:
            partial.clear()  # it holds the values read: not kept past the audit
        results = evaluate_resolution(session, resolution)
        failing = {n: r for n, r in results.items() if r.result == "fail"}
        revoked = _revoke_over_ttl(session, resolution, failing) if failing else set()
        if audit is not None:
            audit.resolved(
                session.spec,
                session.env,
                command,
                resolution,
                results,
                tokens=session.token_records(),
                failed=bool(failing),
                revoked=revoked,
            )
        warnings = _summary(results, "warn")
        if warnings:
            log.warning("policy (warn): %s", warnings)
        if failing:
            raise PolicyViolation(
                f"policy violated by {len(failing)} variable(s), nothing was handed to the job: "
                + _summary(failing, "fail"),
                hint="rotate the secret / shorten the role's TTL, or set on_violation: warn",
            )
        return resolution
    finally:
        if audit is not None:
            audit.close()


def importing(*modules: str) -> Callable[[], None]:
    """A ``meanwhile`` for :func:`resolve_checked` that imports ``modules``: what a command needs
    once the values are in, loaded while the stores answer instead of before the first request."""

    def load() -> None:
        for name in modules:
            importlib.import_module(name)

    return load


def evaluate_resolution(
    session: Session, resolution: Resolution, *, now: datetime | None = None
) -> dict[str, PolicyResult]:
    """Policy results for every resolved variable (credentials a backend exports have none)."""
    return {var.name: _evaluate(session, var, now) for var in resolution.variables}


def _evaluate(session: Session, var: ResolvedVar, now: datetime | None) -> PolicyResult:
    secret = var.secret
    if secret is None:
        return PolicyResult(var.name)
    rules = effective_rules(session.spec.policy, secret.policy)
    if not rules:
        return PolicyResult(var.name)
    backend = session.ledger.backend(var.backend)
    document = var.document
    if (
        backend is not None
        and document is not None
        and document.lease is None
        and any(r.name == "max_age" for r in rules)
    ):
        # How old a static value is: some stores say so only when asked (AWS DescribeSecret).
        document = backend.dated(secret.read_request(var.path), document)
    token = backend.token_record() if backend is not None else None
    return evaluate(var.name, rules, facts_from_document(document, token=token), now=now)


def _summary(results: Mapping[str, PolicyResult], action: str) -> str:
    parts = []
    for name, result in results.items():
        for finding in result.violations:
            if finding.action == action:
                parts.append(f"{name}: {finding.rule}: {finding.message}")
    return "; ".join(parts)


def _revoke_over_ttl(
    session: Session, resolution: Resolution, failing: Mapping[str, PolicyResult]
) -> set[str]:
    """Revoke, right now, each lease whose TTL broke a ``fail`` rule; returns their variable names.

    Vault/OpenBao cannot shorten a lease, so a lease that outlives max_ttl must not live at all.
    """
    revoked: set[str] = set()
    for var in resolution.variables:
        result = failing.get(var.name)
        if result is None or var.lease_id is None:
            continue
        if not any(f.rule == "max_ttl" and f.subject == "secret" for f in result.violations):
            continue
        backend = session.ledger.backend(var.backend)
        if backend is None:
            continue
        # Best effort: the session's cleanup revokes whatever is left in the ledger anyway.
        with contextlib.suppress(JobSecretsError):
            backend.revoke_lease(var.lease_id)
            revoked.add(var.name)
    return revoked
