"""``jobsecrets plan``: what a job will get, from where, and how; reads no secret value.

``--check`` also signs in, reports the CI identity's public claims (what Vault roles bind on) and asks
each store whether every path may be read, still without reading a value.
"""

from __future__ import annotations

__all__ = ["build_report", "run_plan"]

import json
import sys
import time
from datetime import datetime, timezone
from typing import Any

import click

from .backends.base import Backend
from .backends.registry import get_backend_class
from .errors import AccessDenied, AuthError, JobSecretsError, PolicyViolation, SecretNotFound
from .policy import check_plan, plan_violations, policy_text
from .resolver import plan
from .session import Session

MASKED_FORMS = (
    "value, distinctive lines and JSON leaves, base64 (any offset, wrapped), hex, "
    "percent- and JSON-escaped in common dialects, shell re-quoting (see README: Masking)"
)


def masking_limits(min_line_length: int) -> str:
    """What cannot be masked, said up front: ``plan`` reads no value, so it cannot name the variable."""
    from .redact import MIN_SECRET_LENGTH

    return (
        f"values shorter than {MIN_SECRET_LENGTH} bytes are not masked at all, and lines shorter than "
        f"{min_line_length} bytes of a multi-line value are not masked on their own "
        "(run and export warn, naming the variable)"
    )


def build_report(session: Session, check: bool) -> dict[str, Any]:
    """The plan as a JSON-able mapping; with ``check``, signs in and checks access."""
    spec = session.spec
    entries = plan(spec)
    identity: dict[str, Any] = {
        "platform": session.identity.platform,
        "kind": session.identity.kind,
        "source": session.identity.describe(),
    }
    backends = []
    for name in sorted({e.backend for e in entries}):
        backend = spec.backends[name]
        cls = get_backend_class(backend.type)
        backends.append(
            {"name": name, "type": backend.type, "auth": cls.describe_auth(backend.options)}
        )
    variables = [
        {
            "name": e.name,
            "ref": e.ref,
            "backend": e.backend,
            "type": e.backend_type,
            "path": e.path,
            "field": e.field,
            "auth": e.auth,
            "file": e.file,
            "optional": e.optional,
            "prefix": e.prefix,
            # How the value reaches the job: what a prefix selection's variables are called,
            # and whether the value is base64-encoded.
            "name_prefix": spec.secret(e.name).name_prefix,
            "encoding": spec.secret(e.name).encoding,
            "masked": True,
        }
        for e in entries
    ]
    report: dict[str, Any] = {
        "spec": spec.path,
        "identity": identity,
        "backends": backends,
        "variables": variables,
        "masked_forms": MASKED_FORMS,
        "masking_limits": masking_limits(spec.redact.min_line_length),
    }
    if check:
        report["check"] = _check(session, report)
    return report


def _claims_report(session: Session, audience: str | None) -> dict[str, Any]:
    """The public claims of the identity token for ``audience`` (already fetched: no request)."""
    entry: dict[str, Any] = {"audience": audience or session.identity.config.audience}
    try:
        claims = session.identity.claims(audience)
    except JobSecretsError as error:
        entry["error"] = error.message
        return entry
    entry["claims"] = claims
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        entry["expires"] = datetime.fromtimestamp(exp, tz=timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        entry["expires_in"] = int(exp - time.time())
    return entry


def _check(session: Session, report: dict[str, Any]) -> dict[str, Any]:
    """Sign in and ask each store about each path, reading no value.

    Sign-in failures are reported, not raised: a refused login (a bound-claims mismatch) is
    exactly what this command is for, shown next to the claims the token really has.
    """
    spec = session.spec
    result: dict[str, Any] = {"backends": {}, "variables": {}}
    backends: dict[str, Backend] = {}
    for name in sorted({s.backend for s in spec.secrets}):
        cls = get_backend_class(spec.backends[name].type)
        backend = cls(name, spec.backends[name].options, session.context)
        # In the ledger before signing in: finish() revokes the token even if a check fails.
        session.ledger.add_backend(backend)
        try:
            backend.login()
        except JobSecretsError as error:
            entry: dict[str, Any] = {"signed_in": False, "error": error.message}
            if "plan --check" in error.hint:
                # We are plan --check: point at what it shows instead.
                entry["hint"] = (
                    "compare the role's bound claims and audiences with the token's claims above"
                )
            elif error.hint:
                entry["hint"] = error.hint
            result["backends"][name] = entry
            continue
        backends[name] = backend
        try:
            facts = dict(backend.identity_info())
        except JobSecretsError as error:
            facts = {"lookup_error": error.message}
        result["backends"][name] = {"signed_in": True, "identity": facts}
    # Claims of exactly the tokens the backends asked for (the audience matters to the role).
    report["identity"]["tokens"] = [
        _claims_report(session, audience) for audience in session.identity_audiences()
    ]
    for secret in spec.secrets:
        live = backends.get(secret.backend)
        # "missing" (the store says it does not exist) is not "denied": an optional variable is
        # then just left out, as `run` would, and a required one fails with exit 4, not 5.
        if live is None:
            entry = {
                "allowed": False,
                "missing": False,
                "detail": f"not signed in to {secret.backend!r}",
            }
        elif secret.is_prefix:
            try:
                found = live.list_prefix(secret.ref.path[:-1])
                entry = {
                    "allowed": True,
                    "missing": False,
                    "detail": f"{len(found)} secret(s) under the prefix",
                }
            except JobSecretsError as error:
                entry = {
                    "allowed": False,
                    "missing": isinstance(error, SecretNotFound),
                    "detail": error.message,
                }
        else:
            request = secret.read_request()
            try:
                access = live.check_access(request)
                entry = {
                    "allowed": access.allowed,
                    "missing": access.missing,
                    "detail": access.detail,
                }
            except JobSecretsError as error:
                entry = {
                    "allowed": False,
                    "missing": isinstance(error, SecretNotFound),
                    "detail": error.message,
                }
        entry["optional"] = secret.optional
        # policy: metadata calls only (KV metadata/, DescribeSecret), never a value.
        entry["policy"] = check_plan(spec, secret, live)
        result["variables"][secret.name] = entry
    return result


def _text(report: dict[str, Any]) -> str:
    lines = [f"spec: {report['spec']}"]
    identity = report["identity"]
    note = ""
    if identity.get("kind") == "none":
        note = "; only jwt login and AWS role_arn need one"
    lines.append(f"CI identity: {identity['platform']} - {identity['source']}{note}")
    for token in identity.get("tokens", []):
        lines.append(f"  token for audience {token['audience']!r}:")
        if token.get("error"):
            lines.append(f"    error: {token['error']}")
        for key, value in sorted((token.get("claims") or {}).items()):
            if key == "exp" and "expires" in token:
                value = f"{value} ({token['expires']}, in {token['expires_in']}s)"
            lines.append(f"    {key}: {value}")
    for backend in report["backends"]:
        lines.append(f"backend {backend['name']} ({backend['type']}): auth {backend['auth']}")
        checked = report.get("check", {}).get("backends", {}).get(backend["name"])
        if checked:
            if checked["signed_in"]:
                facts = ", ".join(
                    f"{k}={v}"
                    for k, v in sorted(checked["identity"].items())
                    if v not in (None, "", [])
                )
                lines.append(f"  signed in: {facts or 'yes'}")
            else:
                lines.append(f"  sign-in FAILED: {checked['error']}")
                if checked.get("hint"):
                    lines.append(f"  hint: {checked['hint']}")
    rows = [
        ("VARIABLE", "FROM", "FILE", "OPTIONAL", "MASKED")
        + (("ACCESS",) if "check" in report else ())
    ]
    for var in report["variables"]:
        row: tuple[str, ...] = (
            var["name"] + (" (prefix)" if var["prefix"] else ""),
            var["ref"],
            "yes" if var["file"] else "",
            "yes" if var["optional"] else "",
            "yes",
        )
        if "check" in report:
            checked_var = report["check"]["variables"].get(var["name"], {})
            row += (f"{_access_word(checked_var)} - {checked_var.get('detail', '')}",)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    lines.append("")
    lines.extend(policy_text(report))
    lines.append(f"masked in output: {report['masked_forms']}")
    lines.append(f"warning: {report['masking_limits']}")
    return "\n".join(lines) + "\n"


def _access_word(checked: dict[str, Any]) -> str:
    """The ACCESS column's verdict for one variable."""
    if checked.get("allowed"):
        return "ok"
    if checked.get("missing"):
        return "missing (optional: left out)" if checked.get("optional") else "MISSING"
    return "DENIED"


def run_plan(config: str, only: list[str] | None, *, check: bool, fmt: str) -> None:
    """Print the plan; with ``check``, exit 3, 5 or 4 if a sign-in, a path or a secret fails."""
    session = Session(config, only)
    try:
        report = build_report(session, check)
    finally:
        session.finish(quiet=True)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
    else:
        sys.stdout.write(_text(report))
    if check:
        checked = report["check"]["variables"]
        denied = [n for n, v in checked.items() if not v["allowed"] and not v["missing"]]
        missing = [
            n for n, v in checked.items() if v["missing"] and not v["allowed"] and not v["optional"]
        ]
        failed = [n for n, b in report["check"]["backends"].items() if not b["signed_in"]]
        message = (
            f"plan --check: {len(failed)} backend(s) could not sign in"
            + (f" ({', '.join(failed)})" if failed else "")
            + f", {len(denied)} variable(s) denied"
            + (f" ({', '.join(denied)})" if denied else "")
            + f", {len(missing)} missing"
            + (f" ({', '.join(missing)})" if missing else "")
        )
        # A refused sign-in is an authentication failure (exit 3), a denied path exit 5, a
        # missing secret exit 4: the same codes `run` would fail with.
        if failed:
            raise AuthError(message, hint="see 'sign-in FAILED' above")
        if denied:
            raise AccessDenied(message)
        if missing:
            raise SecretNotFound(message, hint="see 'MISSING' above")
        violated = plan_violations(report)
        if violated:
            raise PolicyViolation(
                f"plan --check: policy violated by {len(violated)} variable(s) "
                f"({', '.join(violated)})",
                hint="see 'policy:' above",
            )
