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
    "EffectiveRule",
    "Facts",
    "Finding",
    "PolicyResult",
    "effective_rules",
    "evaluate",
    "facts_from_document",
]

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .durations import format_duration
from .names import shown_id
from .spec.policy import RULES, Policy
from .timeutil import iso_utc, utc

if TYPE_CHECKING:
    from .backends.base import Document, TokenRecord


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


def facts_from_document(document: Document | None, *, token: TokenRecord | None = None) -> Facts:
    """The facts of a read (or of a metadata-only :class:`Document`): its typed fields only."""
    token_ttl = token.ttl if token is not None and token.ttl > 0 else None
    accessor = token.accessor if token is not None else ""
    if document is None:
        return Facts(token_ttl=token_ttl, token_accessor=accessor)
    lease = document.lease
    return Facts(
        dynamic=document.is_dynamic,
        ttl=lease.ttl if lease is not None else None,
        set_at=document.updated,
        # A backend that dates a value but does not say from what: its version's creation.
        age_source=document.age_source or ("version created" if document.updated else ""),
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
    age = int((now - utc(facts.set_at)).total_seconds())
    when = f"set {iso_utc(facts.set_at)} ({facts.age_source})"
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
                f"login token (accessor {shown_id(facts.token_accessor)}) TTL "
                f"{format_duration(facts.token_ttl)}"
                + (f" is over max_ttl {format_duration(limit)}" if over else " within max_ttl"),
                subject="token",
            )
        )
    return findings
