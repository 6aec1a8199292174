"""audit: one JSON line per variable, valid against the published record schema, never a value."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from test_policy import JOURNAL, obtained_and_revoked, write_fake

from jobsecrets.audit import ci_context, lease_hash, open_audit
from jobsecrets.errors import ConfigError
from jobsecrets.testing.specs import SpecBuilder
from support.cli import jobsecrets

ROOT = Path(__file__).resolve().parents[2]
RECORD_SCHEMA = json.loads((ROOT / "schema" / "audit-record.v1.schema.json").read_text())

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_JOB": "deploy",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_SHA": "0" * 40,
    "GITHUB_ACTOR": "octocat",
    "GITHUB_SERVER_URL": "https://github.com",
    # A credential in the environment: the audit log must not pick it up.
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-never-logged",
}


def records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]
    for record in parsed:
        jsonschema.validate(record, RECORD_SCHEMA)
    return parsed


def no_trace(text: str, value: str) -> bool:
    forms = {value, base64.b64encode(value.encode()).decode(), value.encode().hex()}
    return not any(form in text for form in forms)


def test_ci_context_per_platform() -> None:
    github = ci_context(GITHUB_ENV)
    assert github["platform"] == "github"
    assert (github["project"], github["pipeline"], github["job"]) == ("acme/shop", "4242", "deploy")
    assert (github["ref"], github["actor"]) == ("refs/heads/main", "octocat")
    assert "request-token-never-logged" not in json.dumps(github)
    gitlab = ci_context(
        {
            "GITLAB_CI": "true",
            "CI_PROJECT_PATH": "g/p",
            "CI_PIPELINE_ID": "7",
            "CI_JOB_NAME": "build",
            "CI_JOB_ID": "99",
            "CI_COMMIT_REF_NAME": "main",
            "GITLAB_USER_LOGIN": "dev",
            "CI_JOB_TOKEN": "job-token-never-logged",
        }
    )
    assert gitlab["platform"] == "gitlab"
    assert (gitlab["project"], gitlab["pipeline"], gitlab["job"], gitlab["job_id"]) == (
        "g/p",
        "7",
        "build",
        "99",
    )
    assert (gitlab["ref"], gitlab["actor"]) == ("main", "dev")
    assert "job-token-never-logged" not in json.dumps(gitlab)
    local = ci_context({"USER": "me\x1b[31m"})
    assert local == {"platform": "local", "actor": "me [31m"}


def test_lease_hash_is_stable_and_not_the_id() -> None:
    digest = lease_hash("database/creds/ci/abc")
    assert digest.startswith("sha256:")
    assert "abc" not in digest
    assert digest == lease_hash("database/creds/ci/abc")


def test_audit_file_is_created_0600_and_appended(tmp_path: Path) -> None:
    target = tmp_path / "audit.jsonl"
    for _ in range(2):
        log = open_audit(str(target))
        assert log is not None
        log.write({"n": 1})
        log.close()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert len(target.read_text().splitlines()) == 2
    with pytest.raises(ConfigError):
        open_audit(str(tmp_path / "missing-dir" / "audit.jsonl"))


def test_run_writes_one_record_per_variable_and_no_value(tmp_path: Path) -> None:
    _, value, _ = write_fake(tmp_path, "policy: {max_ttl: 2h, max_age: 1d, on_violation: warn}\n")
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        spec.read_text().replace(
            "secrets:\n",
            "secrets:\n  KEY: fake:kv/app#key\n  GONE: {ref: 'fake:nope#x', optional: true}\n",
        )
    )
    audit = tmp_path / "audit.jsonl"
    result = jobsecrets(
        ["run", "--audit-log", str(audit), "--", "sh", "-c", "echo $DB_PASS"],
        cwd=tmp_path,
        env=GITHUB_ENV,
    )
    assert result.returncode == 0
    found = {r["variable"]: r for r in records(audit)}
    assert set(found) == {"DB_PASS", "KEY", "GONE"}
    db = found["DB_PASS"]
    assert db["outcome"] == "ok"
    assert db["ci"]["project"] == "acme/shop"
    assert db["ci"]["actor"] == "octocat"
    assert db["lease"]["ttl"] == 3600
    assert db["lease"]["id_sha256"].startswith("sha256:")
    assert db["field"] == "password"
    assert db["policy"]["result"] == "pass"
    # Two variables, two reads: each record names its own lease.
    assert found["KEY"]["lease"]["id_sha256"] != db["lease"]["id_sha256"]
    assert found["GONE"]["outcome"] == "skipped"
    text = audit.read_text()
    assert no_trace(text, value)
    assert "request-token-never-logged" not in text


def test_audit_to_stdout_comes_before_the_child(tmp_path: Path) -> None:
    _, value, _ = write_fake(tmp_path, "")
    result = jobsecrets(
        ["run", "--audit-log", "-", "--", "sh", "-c", "echo child-line"], cwd=tmp_path
    )
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert json.loads(lines[0])["variable"] == "DB_PASS"
    assert lines[-1] == "child-line"
    assert no_trace(result.stdout, value)


def test_failed_resolution_and_policy_failure_are_recorded(tmp_path: Path) -> None:
    spec, value, _ = write_fake(tmp_path, "policy: {max_ttl: 1m}\n")
    audit = tmp_path / "audit.jsonl"
    failed = jobsecrets(
        ["export", "--format", "dotenv", "-o", "out.env", "--audit-log", str(audit)], cwd=tmp_path
    )
    assert failed.returncode == 8
    (record,) = records(audit)
    assert record["outcome"] == "revoked"
    assert record["policy"]["result"] == "fail"
    assert not (tmp_path / "out.env").exists()
    spec.write_text(spec.read_text().replace("db/creds#password", "db/missing#password"))
    missing = jobsecrets(["run", "--audit-log", str(audit), "--", "true"], cwd=tmp_path)
    assert missing.returncode == 4
    last = records(audit)[-1]
    assert last["outcome"] == "error"
    assert last["error"] == {"kind": "SecretNotFound", "exit_code": 4}
    assert no_trace(audit.read_text(), value)


def test_an_audit_log_that_cannot_be_written_stops_the_job_and_revokes(tmp_path: Path) -> None:
    """A full disk (/dev/full: ENOSPC) under --audit-log: no child, exit 2, every lease revoked."""
    write_fake(tmp_path, "")
    result = jobsecrets(
        ["run", "--audit-log", "/dev/full", "--", "sh", "-c", "echo child-ran"], cwd=tmp_path
    )
    assert result.returncode == 2
    assert "child-ran" not in result.stdout
    assert "cannot write the audit log /dev/full" in result.stderr
    leases, revoked = obtained_and_revoked(tmp_path / JOURNAL)
    assert leases and leases <= revoked


def test_export_refuses_audit_on_the_stdout_it_writes_values_to(tmp_path: Path) -> None:
    write_fake(tmp_path, "")
    result = jobsecrets(["export", "--format", "json", "--audit-log", "-"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""


def test_a_partial_failure_records_each_variable_as_it_ended(tmp_path: Path) -> None:
    """The hostile tester's case: dynamic credentials issued, then one path missing and one denied.
    The issued ones are ``withheld`` with their lease hashes (not ``error`` with ``lease: null``),
    each failed variable has its own kind, and every lease the records name was revoked."""
    value = "canary-" + secrets.token_hex(12)
    documents = {
        "database/creds/ci": {"username": "v-ci-" + value, "password": value},
        "database/creds/ci2": {"password": value + "-2"},
    }
    (
        SpecBuilder()
        .fake(tmp_path, documents, lease_ttl=3600, deny=["cubbyhole2/x"])
        .secret("DB_USER", "fake:database/creds/ci#username")
        .secret("DB_PASS", "fake:database/creds/ci#password")
        .secret("DB2", "fake:database/creds/ci2#password")
        .secret("MISSING", "fake:secret/nothere#x")
        .secret("DENIED", "fake:cubbyhole2/x#y")
        .write(tmp_path, "partial.yml")
    )
    audit = tmp_path / "a.jsonl"
    args = ["export", "-c", "partial.yml", "--format", "dotenv", "-o", "out.env"]
    result = jobsecrets([*args, "--audit-log", str(audit)], cwd=tmp_path)
    assert result.returncode == 4, result.stderr  # the first failure in spec order: not found
    assert not (tmp_path / "out.env").exists()
    found = {r["variable"]: r for r in records(audit)}
    assert set(found) == {"DB_USER", "DB_PASS", "DB2", "MISSING", "DENIED"}
    leases, revoked = obtained_and_revoked(tmp_path / JOURNAL)
    by_path = {lease_id.split("/", 1)[1].rsplit("/", 1)[0]: lease_id for lease_id in leases}
    assert set(by_path) == {"database/creds/ci", "database/creds/ci2"}
    for name, path in (("DB_USER", "database/creds/ci"), ("DB_PASS", "database/creds/ci")):
        assert found[name]["outcome"] == "withheld"
        assert found[name]["error"] is None
        assert found[name]["lease"]["id_sha256"] == lease_hash(by_path[path])
    assert found["DB2"]["outcome"] == "withheld"
    assert found["DB2"]["lease"]["id_sha256"] == lease_hash(by_path["database/creds/ci2"])
    assert found["MISSING"]["outcome"] == "error"
    assert found["MISSING"]["error"] == {"kind": "SecretNotFound", "exit_code": 4}
    assert found["MISSING"]["lease"] is None
    assert found["DENIED"]["outcome"] == "error"
    assert found["DENIED"]["error"] == {"kind": "AccessDenied", "exit_code": 5}
    # What docs/audit.md promises for a withheld lease: revoked before jobsecrets exits.
    assert leases and leases <= revoked
    text = audit.read_text()
    for secret_value in (value, "v-ci-" + value, value + "-2"):
        assert no_trace(text, secret_value)
    for lease_id in leases:
        assert lease_id not in text


def test_a_dynamic_read_whose_field_is_missing_names_its_lease(tmp_path: Path) -> None:
    """The read succeeded (credentials were issued), the field did not exist: the ``error`` record
    names the lease, which was revoked, and the other variable is ``withheld``."""
    _, value, journal = write_fake(tmp_path, "")
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        spec.read_text().replace("secrets:\n", "secrets:\n  KEY: fake:kv/app#nosuchfield\n")
    )
    audit = tmp_path / "audit.jsonl"
    result = jobsecrets(["run", "--audit-log", str(audit), "--", "true"], cwd=tmp_path)
    assert result.returncode == 4
    found = {r["variable"]: r for r in records(audit)}
    leases, revoked = obtained_and_revoked(journal)
    assert found["KEY"]["outcome"] == "error"
    assert found["KEY"]["error"] == {"kind": "SecretNotFound", "exit_code": 4}
    assert found["KEY"]["field"] == "nosuchfield"
    assert found["DB_PASS"]["outcome"] == "withheld"
    named = {found[n]["lease"]["id_sha256"] for n in ("KEY", "DB_PASS")}
    assert named == {lease_hash(lease_id) for lease_id in leases}
    assert leases <= revoked
    assert no_trace(audit.read_text(), value)


@pytest.mark.parametrize("command", [["run", "--", "true"], ["export", "--format", "json"]])
def test_a_skipped_prefix_member_is_recorded_not_an_internal_error(
    tmp_path: Path, command: list[str]
) -> None:
    """An optional prefix selection whose member lacks the field is skipped under the member's
    name, which is no spec entry: looking it up was a KeyError (exit 1) after resolution."""
    (tmp_path / "store.json").write_text(
        json.dumps({"x/a": {"f": "value-aaaa-1111"}, "x/b": {"g": "value-bbbb-2222"}})
    )
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends: {fake: {type: fake, file: store.json}}\n"
        "secrets:\n  X: {ref: 'fake:x/*#f', optional: true}\n"
    )
    log = tmp_path / "audit.jsonl"
    result = jobsecrets([command[0], "--audit-log", str(log), *command[1:]], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["variable"], r["outcome"]) for r in records] == [("A", "ok"), ("B", "skipped")]
