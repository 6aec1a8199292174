"""``jobsecrets plan``: what a job will get, from where, and how; reads no secret value.

``--check`` also signs in, reports the CI identity's public claims (what Vault roles bind on) and asks
each store whether every path may be read, still without reading a value.

The report is typed data (:class:`PlanReport`) with one JSON rendering (:meth:`PlanReport.to_json`)
and one text rendering (:meth:`PlanReport.to_text`); the exit status comes from
:meth:`PlanReport.failure`.
"""

from __future__ import annotations

__all__ = [
    "BackendCheck",
    "IdentityReport",
    "PlanReport",
    "PlannedBackend",
    "PlannedVariable",
    "TokenReport",
    "VariableCheck",
    "build_report",
    "run_plan",
]

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .. import unshown
from ..backends.base import Backend
from ..backends.registry import get_backend_class
from ..backends.retry import OutOfTime, within
from ..errors import (
    AccessDenied,
    AuthError,
    BackendError,
    ClaimsRefused,
    JobSecretsError,
    PolicyViolation,
    SecretNotFound,
    StoreUnavailable,
)
from ..names import clean_text
from ..policy import Facts, PolicyResult, effective_rules, evaluate, facts_from_document
from ..redact import MIN_SECRET_LENGTH
from ..session import Session
from ..spec.model import SecretSpec, Spec
from ..timeutil import iso_utc, unix_time

MASKED_FORMS = (
    "value, distinctive lines and JSON leaves, base64 (any offset, wrapped), hex, "
    "percent- and JSON-escaped in common dialects, shell re-quoting (see docs/masking.md)"
)


def masking_limits(min_line_length: int) -> str:
    """What cannot be masked, said up front: ``plan`` reads no value, so it cannot name the variable."""
    return (
        f"values shorter than {MIN_SECRET_LENGTH} bytes are not masked at all, and lines shorter than "
        f"{min_line_length} bytes of a multi-line value are not masked on their own "
        "(run and export warn, naming the variable)"
    )


# ---- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedVariable:
    """One entry of ``secrets:`` as the job will get it (a prefix selection is one entry)."""

    name: str
    ref: str
    backend: str
    type: str
    path: str
    field: str | None
    auth: str
    file: bool
    optional: bool
    prefix: bool
    #: How a prefix selection names its variables, and whether the value is base64.
    name_prefix: str
    encoding: str
    #: For ``#*``/``#**``: how the variables of every field are named (``None`` otherwise).
    every_field: str | None = None


@dataclass(frozen=True)
class PlannedBackend:
    """A backend the job signs in to, and how; ``warnings`` are the backend's own (GitHub: tokens
    last one hour, and a job that may run longer is told so here)."""

    name: str
    type: str
    auth: str
    warnings: tuple[str, ...] = ()
    #: Where the store is (address, region, endpoint) and where the credentials come from.
    target: str = ""
    credentials: str = ""


@dataclass(frozen=True)
class TokenReport:
    """The public claims of the CI identity token for one audience (``plan --check``)."""

    audience: str | None
    claims: dict[str, Any] | None = None
    error: str = ""
    expires: str = ""
    expires_in: int | None = None


@dataclass
class IdentityReport:
    """Where the CI identity comes from; with ``--check``, the tokens the backends asked for."""

    platform: str
    kind: str
    source: str
    tokens: list[TokenReport] | None = None


@dataclass(frozen=True)
class BackendCheck:
    """Whether signing in worked; who we are (non-secret facts) or why not."""

    signed_in: bool
    identity: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    hint: str = ""
    #: Could not be reached (exit 6), as opposed to refused (exit 3).
    unreachable: bool = False


@dataclass(frozen=True)
class VariableCheck:
    """Whether a variable may be read, found without reading it, and its policy result."""

    allowed: bool
    missing: bool
    detail: str
    optional: bool
    policy: PolicyResult
    policy_detail: str = ""
    #: The store could not answer (exit 6), as opposed to denied or missing.
    unreachable: bool = False

    @property
    def verdict(self) -> str:
        """The ACCESS column's word."""
        if self.allowed:
            return "ok"
        if self.missing:
            return "missing (optional: left out)" if self.optional else "MISSING"
        return "DENIED"


@dataclass
class PlanReport:
    """Everything ``plan`` shows. ``checks`` is ``None`` without ``--check``."""

    spec: str
    identity: IdentityReport
    backends: list[PlannedBackend]
    variables: list[PlannedVariable]
    min_line_length: int
    backend_checks: dict[str, BackendCheck] | None = None
    variable_checks: dict[str, VariableCheck] | None = None

    @property
    def checked(self) -> bool:
        """True when the report comes from ``plan --check``."""
        return self.variable_checks is not None

    # ---- JSON ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The ``--format json`` document."""
        identity: dict[str, Any] = {
            "platform": self.identity.platform,
            "kind": self.identity.kind,
            "source": self.identity.source,
        }
        if self.identity.tokens is not None:
            identity["tokens"] = [_token_json(t) for t in self.identity.tokens]
        data: dict[str, Any] = {
            "spec": self.spec,
            "identity": identity,
            "backends": [vars(b).copy() for b in self.backends],
            "variables": [{**vars(v), "masked": True} for v in self.variables],
            "masked_forms": MASKED_FORMS,
            "masking_limits": masking_limits(self.min_line_length),
        }
        if self.backend_checks is not None and self.variable_checks is not None:
            data["check"] = {
                "backends": {n: _backend_json(c) for n, c in self.backend_checks.items()},
                "variables": {n: _variable_json(c) for n, c in self.variable_checks.items()},
            }
        return data

    # ---- text ------------------------------------------------------------------------------

    def to_text(self) -> str:
        """The text rendering."""
        lines = [f"spec: {self.spec}"]
        identity = self.identity
        note = "; only jwt login and AWS role_arn need one" if identity.kind == "none" else ""
        lines.append(f"CI identity: {identity.platform} - {identity.source}{note}")
        for token in identity.tokens or []:
            lines.append(f"  token for audience {token.audience!r}:")
            if token.error:
                lines.append(f"    error: {token.error}")
            for key, value in sorted((token.claims or {}).items()):
                if key == "exp" and token.expires:
                    value = f"{value} ({token.expires}, in {token.expires_in}s)"
                lines.append(f"    {key}: {value}")
        for backend in self.backends:
            lines.append(f"backend {backend.name} ({backend.type}): auth {backend.auth}")
            lines.extend(f"  warning: {warning}" for warning in backend.warnings)
            if backend.target:
                lines.append(f"  {backend.target}")
            if backend.credentials:
                lines.append(f"  credentials: {backend.credentials}")
            checked = (self.backend_checks or {}).get(backend.name)
            if checked is None:
                continue
            if checked.signed_in:
                # The store's own words (accessor, display name, metadata): without control
                # characters, as every text of a store written to the job log.
                facts = ", ".join(
                    f"{k}={clean_text(v, 300)}"
                    for k, v in sorted(checked.identity.items())
                    if v not in (None, "", [])
                )
                lines.append(f"  signed in: {facts or 'yes'}")
            else:
                lines.append(f"  sign-in FAILED: {checked.error}")
                if checked.hint:
                    lines.append(f"  hint: {checked.hint}")
        lines.append("")
        lines.extend(self._table())
        lines.append("")
        lines.extend(self._policy_lines())
        lines.append(f"masked in output: {MASKED_FORMS}")
        lines.append(f"warning: {masking_limits(self.min_line_length)}")
        return "\n".join(lines) + "\n"

    def _table(self) -> list[str]:
        header: tuple[str, ...] = ("VARIABLE", "FROM", "FILE", "OPTIONAL", "MASKED")
        rows = [header + (("ACCESS",) if self.checked else ())]
        for var in self.variables:
            row: tuple[str, ...] = (
                var.name
                + (" (prefix)" if var.prefix else "")
                + (f" ({var.every_field})" if var.every_field else ""),
                var.ref,
                "yes" if var.file else "",
                "yes" if var.optional else "",
                "yes",
            )
            if self.variable_checks is not None:
                check = self.variable_checks.get(var.name)
                row += (f"{check.verdict} - {check.detail}" if check else "DENIED - ",)
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in rows]

    def _policy_lines(self) -> list[str]:
        """One line per finding that is not a plain pass (``--check`` only)."""
        lines = []
        for name, check in (self.variable_checks or {}).items():
            for finding in check.policy.findings:
                if finding.status == "pass":
                    continue
                status = finding.status.upper()
                if finding.status == "violation":
                    status += f" ({finding.action})"
                lines.append(f"  {name}: {finding.rule} {status}: {finding.message}")
        return ["policy:", *lines] if lines else []

    # ---- exit status -----------------------------------------------------------------------

    def failure(self) -> JobSecretsError | None:
        """What ``plan --check`` exits with: 3, 5 or 4 if a sign-in, a path or a secret fails,
        8 if a policy rule set to fail is broken; ``None`` when all is well."""
        if self.variable_checks is None or self.backend_checks is None:
            return None
        checks = self.variable_checks
        unreachable = sorted(
            {n for n, b in self.backend_checks.items() if b.unreachable}
            | {n for n, v in checks.items() if v.unreachable}
        )
        if unreachable:
            # A store that cannot answer, or answers what cannot be used (a malformed answer, an
            # error of its own), is exit 6, as for `run`: not a refusal or a denial. The summary
            # must not call every such case "could not reach": the lines above say which it was.
            # The first cause in words (the table holds them all): on stderr, the only part a
            # CI annotation shows, "no usable answer" alone would not say which it was.
            causes = [b.error for b in self.backend_checks.values() if b.unreachable] + [
                v.detail for v in checks.values() if v.unreachable
            ]
            return StoreUnavailable(
                "plan --check: no usable answer from the store for "
                + ", ".join(unreachable[:6])
                + (f" and {len(unreachable) - 6} more" if len(unreachable) > 6 else "")
                + (f" (first: {clean_text(causes[0], 300)})" if causes else ""),
                hint="see the errors above: the store was unreachable, failed, or sent an answer "
                "jobsecrets cannot use; check the store's address and status",
            )
        denied = [n for n, v in checks.items() if not v.allowed and not v.missing]
        missing = [n for n, v in checks.items() if v.missing and not v.allowed and not v.optional]
        failed = [n for n, b in self.backend_checks.items() if not b.signed_in]
        message = (
            f"plan --check: {len(failed)} backend(s) could not sign in"
            + (f" ({', '.join(failed)})" if failed else "")
            + f", {len(denied)} variable(s) denied"
            + (f" ({', '.join(denied)})" if denied else "")
            + f", {len(missing)} missing"
            + (f" ({', '.join(missing)})" if missing else "")
        )
        # The same codes `run` would fail with.
        if failed:
            return AuthError(message, hint="see 'sign-in FAILED' above")
        if denied:
            return AccessDenied(message)
        if missing:
            return SecretNotFound(message, hint="see 'MISSING' above")
        violated = [n for n, v in checks.items() if v.policy.result == "fail"]
        if violated:
            return PolicyViolation(
                f"plan --check: policy violated by {len(violated)} variable(s) "
                f"({', '.join(violated)})",
                hint="see 'policy:' above",
            )
        return None


def _token_json(token: TokenReport) -> dict[str, Any]:
    entry: dict[str, Any] = {"audience": token.audience}
    if token.error:
        entry["error"] = token.error
        return entry
    entry["claims"] = token.claims
    if token.expires:
        entry["expires"] = token.expires
        entry["expires_in"] = token.expires_in
    return entry


def _backend_json(check: BackendCheck) -> dict[str, Any]:
    if check.signed_in:
        return {"signed_in": True, "identity": check.identity}
    entry: dict[str, Any] = {
        "signed_in": False,
        "error": check.error,
        "unreachable": check.unreachable,
    }
    if check.hint:
        entry["hint"] = check.hint
    return entry


def _variable_json(check: VariableCheck) -> dict[str, Any]:
    policy = check.policy.as_dict()
    if check.policy_detail:
        policy["detail"] = check.policy_detail
    entry = {
        "allowed": check.allowed,
        "missing": check.missing,
        "detail": check.detail,
        "optional": check.optional,
        "policy": policy,
    }
    if check.unreachable:
        entry["unreachable"] = True
    return entry


# ---- building it ---------------------------------------------------------------------------------


def build_report(session: Session, check: bool) -> PlanReport:
    """The plan of the session's spec; with ``check``, signs in and checks access."""
    spec = session.spec
    variables = [_planned(spec, secret) for secret in spec.secrets]
    backends = []
    for name in session.backends_wanted():
        backend = spec.backends[name]
        cls = get_backend_class(backend.type)
        backends.append(
            PlannedBackend(
                name,
                backend.type,
                cls.describe_auth(backend.options),
                tuple(cls.plan_warnings(backend.options, session.env)),
                target=cls.describe_target(backend.options, session.env),
                credentials=cls.describe_credentials(
                    backend.options, session.env, session.context.local
                ),
            )
        )
    report = PlanReport(
        spec=spec.path,
        identity=IdentityReport(
            session.identity.platform, session.identity.kind, session.identity.describe()
        ),
        backends=backends,
        variables=variables,
        min_line_length=spec.redact.min_line_length,
    )
    if check:
        _check(session, report)
    return report


def _planned(spec: Spec, secret: SecretSpec) -> PlannedVariable:
    backend = spec.backends[secret.backend]
    return PlannedVariable(
        name=secret.name,
        ref=secret.ref.raw,
        backend=backend.name,
        type=backend.type,
        path=secret.ref.path,
        field=secret.ref.field,
        auth=get_backend_class(backend.type).describe_auth(backend.options),
        file=secret.file,
        optional=secret.optional,
        prefix=secret.is_prefix,
        name_prefix=secret.name_prefix,
        encoding=secret.encoding,
        every_field=field_set_label(secret),
    )


def field_set_label(secret: SecretSpec) -> str | None:
    """How ``plan`` names the variables of a ``#*``/``#**`` entry, e.g. ``every field as APP_*``."""
    if not secret.selects_fields:
        return None
    case = "key case kept" if secret.ref.field == "**" else "upper case"
    flat = ", nested keys joined with _" if secret.flatten else ""
    return f"every field as {secret.name_prefix}<KEY>: {case}{flat}"


def _token_report(session: Session, audience: str | None) -> TokenReport:
    """The public claims of the identity token for ``audience`` (already fetched: no request)."""
    shown = audience or session.identity.config.audience
    try:
        claims = session.identity.claims(audience)
    except JobSecretsError as error:
        return TokenReport(shown, error=error.message)
    exp = unix_time(claims.get("exp"))
    if exp is not None:
        return TokenReport(shown, claims, expires=iso_utc(exp), expires_in=int(exp - time.time()))
    return TokenReport(shown, claims)


def _check(session: Session, report: PlanReport) -> None:
    """Sign in and ask each store about each path, reading no value.

    Sign-in failures are reported, not raised: a refused login (a bound-claims mismatch) is
    exactly what this command is for, shown next to the claims the token really has.
    """
    spec = session.spec
    live: dict[str, Backend] = {}
    report.backend_checks = {}
    for name in session.backends_wanted():
        backend = session.build_backend(name)
        try:
            backend.login()
        except JobSecretsError as error:
            hint = error.hint
            if isinstance(error, ClaimsRefused):
                # We are plan --check: point at what it shows instead of at ourselves.
                hint = "compare the role's bound claims and audiences with the token's claims above"
            report.backend_checks[name] = BackendCheck(
                False,
                error=error.message,
                hint=hint,
                unreachable=isinstance(error, BackendError),
            )
            continue
        try:
            facts = dict(backend.identity_info())
        except AuthError as error:
            # The store refused the credentials themselves (an expired $VAULT_TOKEN): a sign-in
            # failure, exit 3, not a lookup detail of a signed-in backend.
            report.backend_checks[name] = BackendCheck(False, error=error.message, hint=error.hint)
            continue
        except JobSecretsError as error:
            facts = {"lookup_error": error.message}
        live[name] = backend
        report.backend_checks[name] = BackendCheck(True, identity=facts)
    for name, signed_in in live.items():  # exit 2 on a path that cannot be meant, as `run` does
        signed_in.preflight(
            [s.read_request() for s in spec.secrets if s.backend == name and not s.is_prefix]
        )
    # Claims of exactly the tokens the backends asked for (the audience matters to the role).
    report.identity.tokens = [
        _token_report(session, audience) for audience in session.identity_audiences()
    ]
    report.variable_checks = {
        secret.name: _check_variable(spec, secret, live.get(secret.backend))
        for secret in spec.secrets
    }


def _check_variable(spec: Spec, secret: SecretSpec, live: Backend | None) -> VariableCheck:
    # "missing" (the store says it does not exist) is not "denied": an optional variable is then
    # just left out, as `run` would, and a required one fails with exit 4, not 5.
    allowed, missing, unreachable = False, False, False
    if live is None:
        detail = f"not signed in to {secret.backend!r}"
    else:
        try:
            if secret.is_prefix:
                found = live.list_prefix(secret.ref.path[:-1])
                allowed, detail = True, f"{len(found)} secret(s) under the prefix"
            else:
                access = live.check_access(secret.read_request())
                allowed, missing, detail = access.allowed, access.missing, access.detail
        except JobSecretsError as error:
            missing, detail = isinstance(error, SecretNotFound), error.message
            unreachable = isinstance(error, BackendError)
    policy, policy_detail = _check_policy(spec, secret, live)
    return VariableCheck(
        allowed, missing, detail, secret.optional, policy, policy_detail, unreachable
    )


def _check_policy(
    spec: Spec, secret: SecretSpec, backend: Backend | None
) -> tuple[PolicyResult, str]:
    """The policy result of one variable: metadata calls only (KV metadata/, DescribeSecret)."""
    rules = effective_rules(spec.policy, secret.policy)
    if not rules:
        return PolicyResult(secret.name), ""
    if backend is None or secret.is_prefix:
        return evaluate(secret.name, rules, Facts(), before_read=True), ""
    try:
        meta = backend.metadata(secret.read_request())
    except JobSecretsError as error:
        result = evaluate(secret.name, rules, Facts(), before_read=True)
        return result, f"metadata not readable: {error.message}"
    facts = facts_from_document(meta, token=backend.token_record())
    return evaluate(secret.name, rules, facts, before_read=True), ""


def _report_within_deadline(session: Session, check: bool) -> PlanReport:
    """:func:`build_report`, held to the overall deadline when it talks to the stores.

    The checks run one after another and a store may not answer at all: past the deadline the
    command stops waiting (the worker is abandoned; the process exits without it, _exit.py).
    """
    deadline = session.context.deadline
    if not check or deadline is None:
        return build_report(session, check)
    try:
        return within(max(0.1, deadline - time.monotonic()), lambda: build_report(session, check))
    except OutOfTime:
        raise StoreUnavailable(
            f"plan --check: the overall deadline ({session.spec.settings.deadline}s) passed "
            "while still checking the stores",
            hint="a store is slow or unreachable; raise 'settings: {deadline: ...}' if it is "
            "only slow",
        ) from None


def run_plan(config: str, only: list[str] | None, *, check: bool, fmt: str) -> None:
    """Print the plan; with ``check``, exit 3, 5, 4 or 8 if a sign-in, a path, a secret or a
    policy rule fails."""
    session = Session(config, only)
    try:
        report = _report_within_deadline(session, check)
    finally:
        session.finish(quiet=True)
    if fmt == "json":
        text = json.dumps(report.to_json(), indent=2, sort_keys=True, default=str) + "\n"
    else:
        text = report.to_text()
    # --check quotes the stores' words (a refused path, a failed sign-in), which may quote the
    # token in use: masked as every message is. Free when nothing was signed in to.
    sys.stdout.write(unshown.scrub(text))
    failure = report.failure()
    if failure is not None:
        raise failure
