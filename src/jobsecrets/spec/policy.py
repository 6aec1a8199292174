"""The ``policy:`` section (global and per variable), parsed; the rules' meaning is in :mod:`jobsecrets.policy`."""

from __future__ import annotations

__all__ = ["ACTIONS", "POLICY_KEYS", "RULES", "Policy", "Rule", "parse_policy"]

from dataclasses import dataclass
from typing import Any

import yaml

from ..durations import parse_duration

RULES = ("max_age", "max_ttl", "require_dynamic")
ACTIONS = ("fail", "warn")
POLICY_KEYS = (*RULES, "on_violation")


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
