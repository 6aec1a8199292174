"""policy: parsing with file:line problems, which rule applies, evaluation, and enforcement in run/export.

The CLI cases use the fake backend (leases of a chosen TTL, a journal of revocations); the real stores
are in ``tests/integration/test_policy_stores.py``.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobsecrets.backends.base import Document, Lease, TokenRecord
from jobsecrets.backends.vault.backend import kv_date
from jobsecrets.errors import ConfigError
from jobsecrets.policy import EffectiveRule, Facts, effective_rules, evaluate, facts_from_document
from jobsecrets.spec import parse_spec
from jobsecrets.spec.policy import Policy, Rule, parse_policy
from jobsecrets.testing.specs import JOURNAL, SpecBuilder, read_journal
from support.cli import jobsecrets

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def spec_problems(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_spec(textwrap.dedent(text), "jobsecrets.yml")
    return [(p.line, p.message) for p in caught.value.problems]


# ---- parsing -----------------------------------------------------------------------------------


def test_spec_policy_becomes_typed_objects() -> None:
    spec = parse_spec(
        textwrap.dedent(
            """\
            version: 1
            policy:
              max_age: 90d
              max_ttl: {value: 1h, on_violation: warn}
              on_violation: fail
            secrets:
              A: vault:secret/a#x
              B:
                ref: vault:database/creds/ci#password
                policy: {require_dynamic: true, max_age: null, on_violation: warn}
            """
        )
    )
    assert spec.policy.max_age == Rule(90 * 86400)
    assert spec.policy.max_ttl == Rule(3600, "warn")
    assert spec.policy.on_violation == "fail"
    assert spec.secret("A").policy is None
    local = spec.secret("B").policy
    assert local is not None
    assert local.require_dynamic == Rule(True)
    assert local.max_age == Rule(None)


def test_bad_policies_are_listed_with_their_lines() -> None:
    problems = spec_problems(
        """\
        version: 1
        policy:
          max_age: ninety days
          max_tll: 1h
          on_violation: explode
        secrets:
          A:
            ref: vault:secret/a#x
            policy:
              require_dynamic: maybe
              max_ttl: {value: 1h, on_violation: later}
          B:
            ref: vault:secret/b#x
            policy: [max_age]
        """
    )
    lines = {line for line, _ in problems}
    assert {3, 4, 5, 10, 11, 14} <= lines
    text = " ".join(message for _, message in problems)
    assert "'max_age'" in text
    assert "unknown key 'max_tll'" in text
    assert "'on_violation' must be fail or warn" in text
    assert "secret 'A': policy: 'require_dynamic': must be true or false" in text
    assert "secret 'B': policy must be a mapping" in text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"max_age": "0s"}, "at least 1s"),
        ({"max_age": {"on_violation": "warn"}}, "needs 'value'"),
        ({"max_ttl": {"value": "1h", "when": "x"}}, "unknown key(s) when"),
        ({"require_dynamic": "yes"}, "true or false"),
        ({"max_ttl": True}, "not a duration"),
    ],
)
def test_parse_policy_refuses(value: object, problem: str) -> None:
    policy, problems = parse_policy(value)
    assert problems
    assert any(problem in message for message, _ in problems)
    assert policy.max_ttl is None or policy.max_ttl.value is not True


# ---- which rules apply ---------------------------------------------------------------------------


def test_action_precedence_rule_then_variable_then_global() -> None:
    global_policy = Policy(max_age=Rule(100), max_ttl=Rule(60, "warn"), on_violation="fail")
    assert effective_rules(global_policy, None) == [
        EffectiveRule("max_age", 100, "fail"),
        EffectiveRule("max_ttl", 60, "warn"),
    ]
    local = Policy(on_violation="warn", require_dynamic=Rule(True, "fail"))
    assert effective_rules(global_policy, local) == [
        EffectiveRule("max_age", 100, "warn"),
        EffectiveRule("max_ttl", 60, "warn"),
        EffectiveRule("require_dynamic", True, "fail"),
    ]
    off = Policy(max_age=Rule(None), max_ttl=Rule(10))
    assert effective_rules(global_policy, off) == [EffectiveRule("max_ttl", 10, "fail")]
    assert effective_rules(Policy(), None) == []


# ---- evaluation ----------------------------------------------------------------------------------


def static(updated: datetime | None, custom: dict[str, str] | None = None) -> Document:
    """A KV v2 read as the Vault backend dates it (version created_time, custom_metadata)."""
    when, source = kv_date(updated.isoformat() if updated else None, custom)
    return Document(data={}, updated=when, age_source=source, dynamic=False)


def leased(ttl: int) -> Document:
    return Document(data={}, lease=Lease("v", "database/creds/ci/abc", ttl, True))


def test_max_age() -> None:
    rules = [EffectiveRule("max_age", 3600, "fail")]
    fresh = evaluate("A", rules, facts_from_document(static(NOW - timedelta(minutes=5))), now=NOW)
    assert fresh.result == "pass"
    assert fresh.findings[0].actual == 300
    stale = evaluate("A", rules, facts_from_document(static(NOW - timedelta(hours=2))), now=NOW)
    assert stale.result == "fail"
    assert stale.findings[0].actual == 7200
    unknown = evaluate("A", rules, facts_from_document(static(None)), now=NOW)
    assert unknown.result == "fail", "an age that cannot be shown is not assumed fresh"
    dynamic = evaluate("A", rules, facts_from_document(leased(60)), now=NOW)
    assert dynamic.result == "pass"
    assert dynamic.findings[0].status == "n/a"


def test_custom_metadata_can_only_make_a_secret_older() -> None:
    rules = [EffectiveRule("max_age", 3600, "warn")]
    older = static(NOW - timedelta(minutes=1), {"rotated_at": "2020-01-01T00:00:00Z"})
    result = evaluate("A", rules, facts_from_document(older), now=NOW)
    assert result.result == "warn"
    assert "custom_metadata.rotated_at" in result.findings[0].message
    newer = static(NOW - timedelta(days=3), {"rotated_at": NOW.isoformat()})
    assert evaluate("A", rules, facts_from_document(newer), now=NOW).result == "warn"


def test_max_ttl_and_token() -> None:
    rules = [EffectiveRule("max_ttl", 600, "fail")]
    assert evaluate("A", rules, facts_from_document(leased(300))).result == "pass"
    over = evaluate("A", rules, facts_from_document(leased(3600)))
    assert over.result == "fail"
    assert over.findings[0].actual == 3600
    token = TokenRecord("v", "s.not-shown", "acc-1", 7200, True)
    facts = facts_from_document(leased(300), token=token)
    result = evaluate("A", rules, facts)
    assert [f.subject for f in result.violations] == ["token"]
    assert "s.not-shown" not in json.dumps(result.as_dict())
    assert evaluate("A", rules, facts_from_document(static(NOW))).findings[0].status == "n/a"
    before = evaluate("A", rules, Facts(dynamic=True), before_read=True)
    assert before.findings[0].status == "unknown"
    assert before.result == "pass"


def test_require_dynamic() -> None:
    rules = [EffectiveRule("require_dynamic", True, "warn")]
    assert evaluate("A", rules, facts_from_document(leased(60))).result == "pass"
    assert evaluate("A", rules, facts_from_document(static(NOW))).result == "warn"
    assert evaluate("A", rules, Facts()).findings[0].status == "unknown"


# ---- run / export with the fake backend ----------------------------------------------------------


def write_fake(tmp_path: Path, policy: str, lease_ttl: int | None = 3600) -> tuple[Path, str, Path]:
    value = "canary-" + secrets.token_hex(12)
    documents = {"db/creds": {"password": value}, "kv/app": {"key": value}}
    options = {"lease_ttl": lease_ttl} if lease_ttl else {}
    builder = SpecBuilder().fake(tmp_path, documents, **options)
    spec = builder.secret("DB_PASS", "fake:db/creds#password").merge(policy).write(tmp_path)
    return spec, value, tmp_path / JOURNAL


def events(journal: Path) -> list[dict[str, str]]:
    return read_journal(journal.parent, journal.name)


def obtained_and_revoked(journal: Path) -> tuple[set[str], set[str]]:
    """The lease ids the fake store's journal shows obtained, and those it shows revoked."""
    entries = events(journal) if journal.exists() else []
    leases = {e["lease_id"] for e in entries if e["event"] == "lease"}
    return leases, {e["lease_id"] for e in entries if e["event"] == "revoke"}


def test_run_fails_with_exit_8_and_revokes_an_over_long_lease(tmp_path: Path) -> None:
    write_fake(tmp_path, "policy: {max_ttl: 10m}\n")
    result = jobsecrets(["run", "--", "sh", "-c", "echo child-ran"], cwd=tmp_path)
    assert result.returncode == 8
    assert "child-ran" not in result.stdout
    assert "max_ttl" in result.stderr
    leases = [e["lease_id"] for e in events(tmp_path / "journal.jsonl") if e["event"] == "lease"]
    revoked = [e["lease_id"] for e in events(tmp_path / "journal.jsonl") if e["event"] == "revoke"]
    assert leases
    assert set(leases) <= set(revoked)


def test_run_warns_and_goes_on(tmp_path: Path) -> None:
    write_fake(tmp_path, "policy: {max_ttl: 10m, on_violation: warn}\n")
    result = jobsecrets(["run", "--", "sh", "-c", "echo child-ran"], cwd=tmp_path)
    assert result.returncode == 0
    assert "child-ran" in result.stdout
    assert "policy (warn)" in result.stderr


def test_export_enforces_require_dynamic(tmp_path: Path) -> None:
    _, value, _ = write_fake(tmp_path, "policy: {require_dynamic: true}\n", lease_ttl=None)
    result = jobsecrets(["export", "--format", "json"], cwd=tmp_path)
    assert result.returncode == 8
    assert value not in result.stdout + result.stderr
    assert result.stdout == ""


def test_per_variable_policy_overrides_global(tmp_path: Path) -> None:
    spec, _, _ = write_fake(tmp_path, "policy: {max_ttl: 10m}\n")
    text = spec.read_text().replace(
        "DB_PASS: fake:db/creds#password",
        "DB_PASS: {ref: 'fake:db/creds#password', policy: {max_ttl: 2h}}",
    )
    spec.write_text(text)
    result = jobsecrets(["run", "--", "true"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
