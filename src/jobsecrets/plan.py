"""``jobsecrets plan``: what a job will get, from where, and how; reads no secret value.

``--check`` also signs in, reports the CI identity's public claims (what Vault roles bind on) and asks
each store whether every path may be read, still without reading a value.
"""

from __future__ import annotations

__all__ = ["build_report", "run_plan"]

import json
import sys
from typing import Any

import click

from .backends.base import Backend, ReadRequest
from .backends.registry import get_backend_class
from .errors import AccessDenied, JobSecretsError
from .resolver import plan
from .session import Session

MASKED_FORMS = "value, each line, base64 (std/url/unpadded), hex, URL- and JSON-escaped"


def build_report(session: Session, check: bool) -> dict[str, Any]:
    """The plan as a JSON-able mapping; with ``check``, signs in and checks access."""
    spec = session.spec
    entries = plan(spec)
    identity: dict[str, Any] = {
        "platform": session.identity.platform,
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
    }
    if check:
        report["check"] = _check(session, report)
    return report


def _check(session: Session, report: dict[str, Any]) -> dict[str, Any]:
    """Sign in and ask each store about each path, reading no value."""
    spec = session.spec
    result: dict[str, Any] = {"backends": {}, "variables": {}}
    audiences = {
        b.options.get("auth", {}).get("audience")
        if isinstance(b.options.get("auth"), dict)
        else None
        for b in spec.backends.values()
    }
    if session.identity.kind != "none":
        try:
            report["identity"]["claims"] = session.identity.claims(
                sorted(a for a in audiences if a)[0] if any(audiences) else None
            )
        except JobSecretsError as error:
            report["identity"]["error"] = error.message
    backends: dict[str, Backend] = {}
    for name in sorted({s.backend for s in spec.secrets}):
        cls = get_backend_class(spec.backends[name].type)
        backend = cls(name, spec.backends[name].options, session.context)
        session.ledger.add_backend(backend)
        try:
            backend.login()
            backends[name] = backend
            result["backends"][name] = {
                "signed_in": True,
                "identity": dict(backend.identity_info()),
            }
        except JobSecretsError as error:
            result["backends"][name] = {"signed_in": False, "error": error.message}
    for secret in spec.secrets:
        entry: dict[str, Any]
        live = backends.get(secret.backend)
        if live is None:
            entry = {"allowed": False, "detail": "not signed in"}
        elif secret.is_prefix:
            try:
                found = live.list_prefix(secret.ref.path[:-1])
                entry = {"allowed": True, "detail": f"{len(found)} secret(s) under the prefix"}
            except JobSecretsError as error:
                entry = {"allowed": False, "detail": error.message}
        else:
            request = ReadRequest(
                secret.ref.path,
                dict(secret.params),
                dict(secret.options),
                (secret.name,),
                secret.ref.raw,
            )
            try:
                access = live.check_access(request)
                entry = {"allowed": access.allowed, "detail": access.detail}
            except JobSecretsError as error:
                entry = {"allowed": False, "detail": error.message}
        result["variables"][secret.name] = entry
    return result


def _text(report: dict[str, Any]) -> str:
    lines = [f"spec: {report['spec']}"]
    identity = report["identity"]
    lines.append(f"CI identity: {identity['platform']} - {identity['source']}")
    for key, value in sorted((identity.get("claims") or {}).items()):
        lines.append(f"  {key}: {value}")
    if identity.get("error"):
        lines.append(f"  error: {identity['error']}")
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
            row += (
                ("ok" if checked_var.get("allowed") else "DENIED")
                + f" - {checked_var.get('detail', '')}",
            )
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    lines.append("")
    lines.append(f"masked in output: {report['masked_forms']}")
    return "\n".join(lines) + "\n"


def run_plan(config: str, only: list[str] | None, *, check: bool, fmt: str) -> None:
    """Print the plan; with ``check``, exit 5 if any path is denied."""
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
        denied = [n for n, v in report["check"]["variables"].items() if not v["allowed"]]
        failed = [n for n, b in report["check"]["backends"].items() if not b["signed_in"]]
        if failed or denied:
            raise AccessDenied(
                f"plan --check: {len(failed)} backend(s) could not sign in, {len(denied)} variable(s) denied"
                + (f": {', '.join(denied)}" if denied else "")
            )
