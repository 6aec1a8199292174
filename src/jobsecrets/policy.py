"""``policy:``: rotation and TTL limits enforced in code, globally and per variable.

Three rules, each with ``on_violation: fail|warn`` (``fail`` is the default):

``max_age``
    A static secret (no lease) must have been set no longer ago than this. The time it was set is the
    ``created_time`` of the KV v2 version read (Vault/OpenBao), or AWS ``LastRotatedDate`` else
    ``LastChangedDate`` else ``CreatedDate`` (``DescribeSecret``). A KV ``custom_metadata`` key
    ``rotated_at`` (RFC 3339) can only make a secret *older*: the earlier of the two times counts, so
    whoever may write metadata cannot make a stale value look fresh. An age that cannot be known (KV v1,
    an engine that says nothing) is a violation: freshness that cannot be shown is not assumed.
``max_ttl``
    A lease (and the login token jobsecrets obtained) must not outlive this. Vault/OpenBao cannot
    shorten a lease (renewing with a smaller increment never lowers its TTL), so with ``fail`` the
    lease is revoked at once and the job fails; with ``warn`` it is kept and reported.
``require_dynamic``
    The variable must come from a leased (dynamic) engine.

How a rule's action is chosen, most specific first: the rule's own ``on_violation`` (long form
``max_age: {value: 90d, on_violation: warn}``), the variable's ``policy.on_violation``, the global
``policy.on_violation``, ``fail``. A variable's rule replaces the global rule of the same name;
``max_age: null`` switches a global rule off for that variable.

Nothing here reads a value: rules look at versions, times, TTLs and whether a lease exists.
"""

from __future__ import annotations

__all__ = [
    "ACTIONS",
    "RULES",
    "EffectiveRule",
    "Facts",
    "Finding",
    "Policy",
    "PolicyResult",
    "Rule",
    "check_plan",
    "effective_rules",
    "evaluate",
    "facts_from_document",
    "parse_policy",
    "plan_violations",
    "policy_text",
    "resolve_checked",
    "spec_secret_of",
]

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .durations import format_duration, parse_duration
from .errors import JobSecretsError, PolicyViolation

if TYPE_CHECKING:
    import yaml

    from .backends.base import Backend, Document, TokenRecord
    from .resolver import Resolution, ResolvedVar
    from .session import Session
    from .spec import SecretSpec, Spec

log = logging.getLogger("jobsecrets")

RULES = ("max_age", "max_ttl", "require_dynamic")
ACTIONS = ("fail", "warn")
POLICY_KEYS = (*RULES, "on_violation")
#: custom_metadata key (KV v2) that can date a secret further back than its version's created_time.
ROTATED_AT_KEY = "rotated_at"


# ---- the parsed spec section ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule as written: ``value`` is seconds (max_age/max_ttl), a bool, or ``None`` (switched off)."""

    value: int | bool | None
    on_violation: str | None = None


@dataclass(frozen=True)
class Policy:
    """One ``policy:`` block (global or per variable). ``None`` fields were not written."""

    max_age: Rule | None = None
    max_ttl: Rule | None = None
    require_dynamic: Rule | None = None
    on_violation: str | None = None
    line: int | None = None

    @property
    def is_empty(self) -> bool:
        """True when the block sets nothing."""
        return all(getattr(self, name) is None for name in POLICY_KEYS)

    def rule(self, name: str) -> Rule | None:
        """The rule called ``name`` as written, or None."""
        value: Rule | None = getattr(self, name)
        return value


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _key_lines(node: yaml.Node | None) -> dict[str, int | None]:
    """key -> line of its value, for problems that point at the right line."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(key.value): _line(value)
        for key, value in node.value
        if isinstance(key, yaml.ScalarNode)
    }


def parse_policy(
    value: Any, node: yaml.Node | None = None, *, what: str = "policy"
) -> tuple[Policy, list[tuple[str, int | None]]]:
    """Parse one ``policy:`` block; returns the policy and every problem as (message, line).

    ``node`` is the YAML node of the block, only used to point problems at their line.
    """
    problems: list[tuple[str, int | None]] = []
    base_line = _line(node)
    if value is None:
        return Policy(line=base_line), problems
    if not isinstance(value, dict):
        problems.append((f"{what} must be a mapping of {', '.join(POLICY_KEYS)}", base_line))
        return Policy(line=base_line), problems
    lines = _key_lines(node)
    rules: dict[str, Rule | None] = {}
    on_violation: str | None = None
    for key, raw in value.items():
        where = lines.get(str(key), base_line)
        if key == "on_violation":
            if raw not in ACTIONS:
                problems.append((f"{what}: 'on_violation' must be fail or warn", where))
            else:
                on_violation = raw
            continue
        if key not in RULES:
            problems.append(
                (f"{what}: unknown key {key!r} (known: {', '.join(POLICY_KEYS)})", where)
            )
            continue
        rule, message = _parse_rule(key, raw)
        if message:
            problems.append((f"{what}: {key!r}: {message}", where))
        else:
            rules[key] = rule
    policy = Policy(
        max_age=rules.get("max_age"),
        max_ttl=rules.get("max_ttl"),
        require_dynamic=rules.get("require_dynamic"),
        on_violation=on_violation,
        line=base_line,
    )
    return policy, problems


def _parse_rule(name: str, raw: Any) -> tuple[Rule | None, str]:
    """(rule, problem message or '')."""
    action: str | None = None
    if isinstance(raw, dict):
        unknown = sorted(str(k) for k in raw if k not in ("value", "on_violation"))
        if unknown:
            return None, f"unknown key(s) {', '.join(unknown)} (known: on_violation, value)"
        if "value" not in raw:
            return None, "the long form needs 'value' (e.g. {value: 90d, on_violation: warn})"
        action = raw.get("on_violation")
        if action is not None and action not in ACTIONS:
            return None, "'on_violation' must be fail or warn"
        raw = raw["value"]
    if raw is None:
        return Rule(None, action), ""
    if name == "require_dynamic":
        if not isinstance(raw, bool):
            return None, "must be true or false"
        return Rule(raw, action), ""
    try:
        seconds = parse_duration(raw)
    except ValueError as error:
        return None, str(error)
    if seconds < 1:
        return None, "must be at least 1s"
    return Rule(seconds, action), ""


# ---- which rules apply to one variable -------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveRule:
    """A rule in force for one variable, with the action chosen for it."""

    name: str
    value: int | bool
    action: str


def effective_rules(global_policy: Policy | None, local: Policy | None) -> list[EffectiveRule]:
    """The rules in force for a variable: its own block over the global one (see module doc)."""
    global_policy = global_policy or Policy()
    rules = []
    for name in RULES:
        rule = local.rule(name) if local is not None else None
        if rule is None:
            rule = global_policy.rule(name)
        if rule is None or rule.value is None or rule.value is False:
            continue
        action = (
            rule.on_violation
            or (local.on_violation if local is not None else None)
            or global_policy.on_violation
            or "fail"
        )
        rules.append(EffectiveRule(name, rule.value, action))
    return rules


# ---- evaluation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the rules look at, never a value.

    ``dynamic``: a lease exists (``None``: cannot be known yet, e.g. before a read). ``ttl``: the lease's
    TTL in seconds. ``set_at``: when the static value was last set, and ``age_source`` says from what.
    ``token_ttl``: the TTL of the login token jobsecrets obtained for this variable's backend.
    """

    dynamic: bool | None = None
    ttl: int | None = None
    set_at: datetime | None = None
    age_source: str = ""
    token_ttl: int | None = None
    token_accessor: str = ""


@dataclass(frozen=True)
class Finding:
    """The outcome of one rule for one variable. ``status``: pass, violation, unknown or n/a."""

    rule: str
    status: str
    action: str
    limit: int | bool
    actual: int | bool | None
    message: str
    subject: str = "secret"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (audit records, ``plan --format json``)."""
        return {
            "rule": self.rule,
            "subject": self.subject,
            "status": self.status,
            "action": self.action,
            "limit": self.limit,
            "actual": self.actual,
            "message": self.message,
        }


@dataclass(frozen=True)
class PolicyResult:
    """Every finding for one variable; ``result`` sums them up."""

    variable: str
    findings: tuple[Finding, ...] = ()

    @property
    def violations(self) -> list[Finding]:
        """Findings that break their rule."""
        return [f for f in self.findings if f.status == "violation"]

    @property
    def result(self) -> str:
        """``none`` (no rule), ``pass``, ``warn`` (violations set to warn) or ``fail``."""
        if not self.findings:
            return "none"
        actions = {f.action for f in self.violations}
        if "fail" in actions:
            return "fail"
        if actions:
            return "warn"
        return "pass"

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"result": self.result, "findings": [f.as_dict() for f in self.findings]}


def _utc(moment: datetime) -> datetime:
    # Naive times from a store are UTC (Vault and AWS both speak UTC).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return _utc(moment).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rotated_at(metadata: Mapping[str, Any]) -> datetime | None:
    from .backends.vault import _parse_time

    custom = metadata.get("custom_metadata")
    if not isinstance(custom, Mapping):
        return None
    return _parse_time(custom.get(ROTATED_AT_KEY))


def facts_from_document(
    document: Document | None,
    *,
    dynamic: bool | None = None,
    token: TokenRecord | None = None,
) -> Facts:
    """The facts of a read (or a metadata-only :class:`Document`).

    ``dynamic`` overrides "a lease exists": a metadata document knows the engine kind, not the lease.
    """
    token_ttl = token.ttl if token is not None and token.ttl > 0 else None
    accessor = token.accessor if token is not None else ""
    if document is None:
        return Facts(dynamic=dynamic, token_ttl=token_ttl, token_accessor=accessor)
    lease = document.lease
    if dynamic is None:
        hint = document.metadata.get("dynamic")
        dynamic = lease is not None or hint is True
    set_at = document.updated
    source = str(document.metadata.get("age_source") or ("version created" if set_at else ""))
    rotated = _rotated_at(document.metadata)
    # The earlier time wins: custom metadata may date a secret back, never make it look fresher.
    if rotated is not None and (set_at is None or _utc(rotated) < _utc(set_at)):
        set_at, source = rotated, f"custom_metadata.{ROTATED_AT_KEY}"
    return Facts(
        dynamic=dynamic,
        ttl=lease.ttl if lease is not None else None,
        set_at=set_at,
        age_source=source,
        token_ttl=token_ttl,
        token_accessor=accessor,
    )


def evaluate(
    variable: str,
    rules: Sequence[EffectiveRule],
    facts: Facts,
    *,
    now: datetime | None = None,
    before_read: bool = False,
) -> PolicyResult:
    """Apply ``rules`` to ``facts``. ``before_read``: plan --check, where a lease TTL is not known yet."""
    now = now or datetime.now(timezone.utc)
    findings: list[Finding] = []
    for rule in rules:
        if rule.name == "require_dynamic":
            if facts.dynamic is None:
                findings.append(
                    Finding(rule.name, "unknown", rule.action, True, None, "engine kind unknown")
                )
            elif facts.dynamic:
                findings.append(
                    Finding(rule.name, "pass", rule.action, True, True, "from a leased engine")
                )
            else:
                findings.append(
                    Finding(
                        rule.name,
                        "violation",
                        rule.action,
                        True,
                        False,
                        "a static secret, but the policy requires a dynamic (leased) one",
                    )
                )
        elif rule.name == "max_age":
            findings.append(_max_age(rule, facts, now))
        elif rule.name == "max_ttl":
            findings.extend(_max_ttl(rule, facts, before_read))
    return PolicyResult(variable, tuple(findings))


def _max_age(rule: EffectiveRule, facts: Facts, now: datetime) -> Finding:
    limit = int(rule.value)
    if facts.dynamic:
        return Finding(rule.name, "n/a", rule.action, limit, None, "dynamic: age does not apply")
    if facts.set_at is None:
        return Finding(
            rule.name,
            "violation" if facts.dynamic is False else "unknown",
            rule.action,
            limit,
            None,
            "the store does not say when this secret was set, so its age cannot be shown",
        )
    age = int((now - _utc(facts.set_at)).total_seconds())
    when = f"set {_iso(facts.set_at)} ({facts.age_source})"
    if age > limit:
        return Finding(
            rule.name,
            "violation",
            rule.action,
            limit,
            age,
            f"{format_duration(age)} old, over max_age {format_duration(limit)}: {when}",
        )
    return Finding(
        rule.name, "pass", rule.action, limit, age, f"{format_duration(age)} old: {when}"
    )


def _max_ttl(rule: EffectiveRule, facts: Facts, before_read: bool) -> list[Finding]:
    limit = int(rule.value)
    findings = []
    if facts.dynamic is False:
        findings.append(Finding(rule.name, "n/a", rule.action, limit, None, "static: no lease"))
    elif facts.ttl is None:
        detail = (
            "a lease's TTL is known only once it is issued: `run`/`export` check it"
            if before_read or facts.dynamic is None
            else "leased, but the store gave no TTL"
        )
        findings.append(Finding(rule.name, "unknown", rule.action, limit, None, detail))
    elif facts.ttl > limit:
        findings.append(
            Finding(
                rule.name,
                "violation",
                rule.action,
                limit,
                facts.ttl,
                f"lease TTL {format_duration(facts.ttl)} is over max_ttl {format_duration(limit)}",
            )
        )
    else:
        findings.append(
            Finding(rule.name, "pass", rule.action, limit, facts.ttl, "lease TTL within max_ttl")
        )
    if facts.token_ttl is not None:
        over = facts.token_ttl > limit
        findings.append(
            Finding(
                rule.name,
                "violation" if over else "pass",
                rule.action,
                limit,
                facts.token_ttl,
                f"login token (accessor {facts.token_accessor or '?'}) TTL "
                f"{format_duration(facts.token_ttl)}"
                + (f" is over max_ttl {format_duration(limit)}" if over else " within max_ttl"),
                subject="token",
            )
        )
    return findings


# ---- run / export ----------------------------------------------------------------------------------


def spec_secret_of(spec: Spec, var: ResolvedVar) -> SecretSpec | None:
    """The spec entry a resolved variable came from (a prefix selection's expanded ref names it)."""
    for secret in spec.secrets:
        if not secret.is_prefix and secret.name == var.name and secret.backend == var.backend:
            return secret
    for secret in spec.secrets:
        if secret.is_prefix and var.ref.startswith(secret.ref.raw + " -> "):
            return secret
        if secret.selects_fields and var.ref == secret.ref.raw and var.backend == secret.backend:
            return secret  # one of the variables `#*` made (named after the document's keys)
    return None


def _age_metadata(backend: Backend | None, secret: SecretSpec, path: str) -> Document | None:
    """For stores whose read does not say when a secret was rotated (AWS), ask metadata only."""
    if backend is None or not getattr(backend, "AGE_FROM_METADATA", False):
        return None
    request = secret.read_request(path)
    try:
        return backend.metadata(request)
    except JobSecretsError as error:
        # Denied DescribeSecret: the version's own creation time (from the read) still dates it.
        log.info(
            "%s: metadata not available (%s); using the read's version time",
            secret.name,
            error.message,
        )
        return None


def evaluate_resolution(
    session: Session, resolution: Resolution, *, now: datetime | None = None
) -> dict[str, PolicyResult]:
    """Policy results for every resolved variable (credentials a backend exports have none)."""
    spec = session.spec
    results: dict[str, PolicyResult] = {}
    for var in resolution.variables:
        secret = spec_secret_of(spec, var)
        if secret is None:
            results[var.name] = PolicyResult(var.name)
            continue
        rules = effective_rules(spec.policy, secret.policy)
        if not rules:
            results[var.name] = PolicyResult(var.name)
            continue
        backend = session.ledger.backends.get(var.backend)
        token = backend.token_record() if backend is not None else None
        document = var.document
        if (
            document is not None
            and document.lease is None
            and any(r.name == "max_age" for r in rules)
        ):
            meta = _age_metadata(backend, secret, var.path)
            if meta is not None and meta.updated is not None:
                document = _with_time(document, meta)
        facts = facts_from_document(document, token=token)
        results[var.name] = evaluate(var.name, rules, facts, now=now)
    return results


def _with_time(document: Document, meta: Document) -> Document:
    from dataclasses import replace

    merged = dict(document.metadata)
    merged["age_source"] = meta.metadata.get("age_source", "metadata")
    return replace(document, updated=meta.updated, metadata=merged)


def _summary(results: Mapping[str, PolicyResult], action: str) -> str:
    parts = []
    for name, result in results.items():
        for finding in result.violations:
            if finding.action == action:
                parts.append(f"{name}: {finding.rule}: {finding.message}")
    return "; ".join(parts)


def resolve_checked(
    session: Session,
    command: str,
    audit_target: str | None,
    *,
    files_dir: str | None = None,
) -> Resolution:
    """Resolve with the policy enforced and every variable audited: ``run`` and ``export`` call this.

    The audit log is opened first, so an unwritable log fails before anything is fetched. A rule
    set to ``fail`` raises :class:`PolicyViolation` (exit 8) after revoking each offending lease at
    once; the caller's cleanup then ends everything else (all or nothing).
    """
    from .audit import open_audit
    from .resolver import resolve

    audit = open_audit(audit_target, session.env)
    try:
        try:
            resolution = resolve(session.spec, session.context, session.ledger, files_dir=files_dir)
        except JobSecretsError as error:
            if audit is not None:
                audit.resolution_failed(session, command, error)
            raise
        results = evaluate_resolution(session, resolution)
        failing = {n: r for n, r in results.items() if r.result == "fail"}
        revoked = _revoke_over_ttl(session, resolution, failing) if failing else set()
        if audit is not None:
            audit.resolved(
                session, command, resolution, results, failed=bool(failing), revoked=revoked
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
        backend = session.ledger.backends.get(var.backend)
        if backend is None:
            continue
        # Best effort: the session's cleanup revokes whatever is left in the ledger anyway.
        with contextlib.suppress(JobSecretsError):
            backend.revoke_lease(var.lease_id)
            revoked.add(var.name)
    return revoked


# ---- plan --check ----------------------------------------------------------------------------------


def check_plan(spec: Spec, secret: SecretSpec, backend: Backend | None) -> dict[str, Any]:
    """The policy result of one variable for ``plan --check``: metadata calls only, no value read."""
    rules = effective_rules(spec.policy, secret.policy)
    if not rules:
        return PolicyResult(secret.name).as_dict()
    if backend is None or secret.is_prefix:
        facts = Facts()
    else:
        request = secret.read_request()
        try:
            meta = backend.metadata(request)
        except JobSecretsError as error:
            result = evaluate(secret.name, rules, Facts(), before_read=True).as_dict()
            result["detail"] = f"metadata not readable: {error.message}"
            return result
        facts = facts_from_document(meta, token=backend.token_record())
    return evaluate(secret.name, rules, facts, before_read=True).as_dict()


def policy_text(report: Mapping[str, Any]) -> list[str]:
    """Text lines for ``plan --check``: one per finding that is not a plain pass."""
    lines = []
    variables = (report.get("check") or {}).get("variables") or {}
    for name, entry in variables.items():
        policy = entry.get("policy") or {}
        for finding in policy.get("findings", []):
            if finding["status"] == "pass":
                continue
            status = finding["status"].upper()
            if finding["status"] == "violation":
                status += f" ({finding['action']})"
            lines.append(f"  {name}: {finding['rule']} {status}: {finding['message']}")
    if lines:
        lines.insert(0, "policy:")
    return lines


def plan_violations(report: Mapping[str, Any]) -> list[str]:
    """Variables whose policy result is ``fail`` in a ``plan --check`` report."""
    variables = (report.get("check") or {}).get("variables") or {}
    return [n for n, v in variables.items() if (v.get("policy") or {}).get("result") == "fail"]
