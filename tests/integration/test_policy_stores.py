"""policy and audit against real stores: OpenBao KV v2 version times and custom_metadata, database
leases from a real PostgreSQL with a long default_ttl, and AWS rotation dates from a moto server.

Every case runs the CLI as a user would and checks fail (exit 8, lease revoked) and warn (the job runs),
and that no value reaches the audit log or the output.
"""

from __future__ import annotations

import json
import secrets
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import jobsecrets
from support.moto_server import REGION, MotoServer
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer

pytestmark = pytest.mark.integration

ADMIN_ENV = {"AWS_ACCESS_KEY_ID": "AKIAADMINADMINADMIN1", "AWS_SECRET_ACCESS_KEY": "admin-key"}


class Bao:
    """One OpenBao with KV v2 secrets of known ages and a database role with a 1h default TTL."""

    def __init__(self, server: OpenBaoServer, postgres: PostgresServer) -> None:
        self.server = server
        self.postgres = postgres
        self.client = server.client()
        self.values: list[str] = []
        server.enable_database(postgres, role_name="long", default_ttl="1h", max_ttl="2h")

    def put(self, path: str, **custom: str) -> None:
        value = "canary-" + secrets.token_hex(12)
        self.values.append(value)
        self.client.secrets.kv.v2.create_or_update_secret(path, {"v": value}, mount_point="secret")
        if custom:
            self.client.secrets.kv.v2.update_metadata(
                path, custom_metadata=custom, mount_point="secret"
            )

    def env(self, token: str | None = None) -> dict[str, str]:
        return {"VAULT_ADDR": self.server.address, "VAULT_TOKEN": token or self.server.root_token}

    def clean(self, text: str) -> bool:
        return not any(value in text for value in self.values)


@pytest.fixture(scope="module")
def bao(postgres: PostgresServer) -> Iterator[Bao]:
    with OpenBaoServer() as server:
        yield Bao(server, postgres)


def write_spec(tmp_path: Path, secrets_block: str, policy: str = "") -> None:
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  vault: {type: vault}\n  aws: {type: aws}\n"
        + textwrap.dedent(policy)
        + "secrets:\n"
        + textwrap.indent(textwrap.dedent(secrets_block), "  ")
    )


def audit_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_kv_max_age_from_version_times(bao: Bao, tmp_path: Path) -> None:
    bao.put("aged")
    time.sleep(3)
    write_spec(tmp_path, "OLD: vault:secret/aged#v\n", "policy: {max_age: 2s}\n")
    audit = tmp_path / "audit.jsonl"
    failed = jobsecrets(
        ["run", "--audit-log", str(audit), "--", "sh", "-c", "echo ran"],
        cwd=tmp_path,
        env=bao.env(),
    )
    assert failed.returncode == 8
    assert "ran" not in failed.stdout
    assert "max_age" in failed.stderr
    (record,) = audit_records(audit)
    assert record["outcome"] == "policy_violation"
    assert record["version"] == "1"

    write_spec(
        tmp_path, "OLD: vault:secret/aged#v\n", "policy: {max_age: 2s, on_violation: warn}\n"
    )
    warned = jobsecrets(
        ["run", "--audit-log", str(audit), "--", "sh", "-c", "echo ran"],
        cwd=tmp_path,
        env=bao.env(),
    )
    assert warned.returncode == 0
    assert "ran" in warned.stdout
    assert "policy (warn)" in warned.stderr

    bao.put("aged")  # a new version: rotated just now
    write_spec(tmp_path, "OLD: vault:secret/aged#v\n", "policy: {max_age: 2s}\n")
    fresh = jobsecrets(
        ["run", "--audit-log", str(audit), "--", "true"], cwd=tmp_path, env=bao.env()
    )
    assert fresh.returncode == 0, fresh.stderr
    assert audit_records(audit)[-1]["version"] == "2"
    assert bao.clean(audit.read_text() + failed.stderr + warned.stderr + fresh.stderr)


def test_kv_custom_metadata_dates_a_secret_back_and_plan_check_sees_it_without_data(
    bao: Bao, tmp_path: Path
) -> None:
    bao.put("migrated", rotated_at="2021-03-01T00:00:00Z")
    bao.put("current")
    write_spec(
        tmp_path,
        "OLD: vault:secret/migrated#v\nNEW: vault:secret/current#v\n",
        "policy: {max_age: 30d}\n",
    )
    # A token that may read metadata but no value at all: plan --check needs nothing more.
    bao.server.write_policy("meta-only", 'path "secret/metadata/*" { capabilities = ["read"] }\n')
    token = bao.client.auth.token.create(policies=["meta-only"], ttl="5m")["auth"]["client_token"]
    check = jobsecrets(["plan", "--check", "--format", "json"], cwd=tmp_path, env=bao.env(token))
    # Denied data/ (exit 5 wins over 8), yet the policy is judged from metadata alone.
    assert check.returncode == 5, check.stderr
    report = json.loads(check.stdout)
    variables = report["check"]["variables"]
    assert variables["OLD"]["policy"]["result"] == "fail"
    assert "custom_metadata.rotated_at" in variables["OLD"]["policy"]["findings"][0]["message"]
    assert variables["NEW"]["policy"]["result"] == "pass"
    assert bao.clean(check.stdout + check.stderr)

    text = jobsecrets(["plan", "--check"], cwd=tmp_path, env=bao.env())
    assert text.returncode == 8
    assert "OLD: max_age VIOLATION (fail)" in text.stdout

    run = jobsecrets(["run", "--", "true"], cwd=tmp_path, env=bao.env())
    assert run.returncode == 8
    assert "OLD: max_age" in run.stderr
    assert "NEW:" not in run.stderr


def test_database_lease_over_max_ttl_is_revoked_at_once(bao: Bao, tmp_path: Path) -> None:
    write_spec(
        tmp_path,
        "DB_USER: vault:database/creds/long#username\nDB_PASS: vault:database/creds/long#password\n",
        "policy: {max_ttl: 10m}\n",
    )
    roles_before = bao.postgres.roles()
    audit = tmp_path / "audit.jsonl"
    failed = jobsecrets(
        ["run", "--audit-log", str(audit), "--", "sh", "-c", "echo ran"],
        cwd=tmp_path,
        env=bao.env(),
    )
    assert failed.returncode == 8
    assert "ran" not in failed.stdout
    assert "lease TTL 1h is over max_ttl 10m" in failed.stderr
    records = audit_records(audit)
    assert {r["outcome"] for r in records} == {"revoked"}
    lease = records[0]["lease"]
    assert isinstance(lease, dict)
    assert lease["ttl"] == 3600
    # The PostgreSQL login the lease created is gone: the lease was revoked, not left to expire.
    assert bao.postgres.roles() == roles_before

    write_spec(
        tmp_path,
        "DB_PASS: vault:database/creds/long#password\n",
        "policy: {max_ttl: {value: 10m, on_violation: warn}, require_dynamic: true}\n",
    )
    warned = jobsecrets(
        [
            "run",
            "--audit-log",
            str(audit),
            "--",
            "sh",
            "-c",
            'printf %s "$DB_PASS" > value.txt && echo ran',
        ],
        cwd=tmp_path,
        env=bao.env(),
    )
    assert warned.returncode == 0, warned.stderr
    assert "ran" in warned.stdout
    last = audit_records(audit)[-1]
    assert last["outcome"] == "ok"
    assert last["policy"] == {
        "result": "warn",
        "findings": last["policy"]["findings"],  # type: ignore[index]
    }
    assert bao.postgres.roles() == roles_before
    # Canary: the password the job really got is nowhere in the audit log.
    password = (tmp_path / "value.txt").read_text()
    leaked = bool(password) and password in audit.read_text()
    assert password
    assert not leaked


def test_require_dynamic_refuses_a_static_secret(bao: Bao, tmp_path: Path) -> None:
    bao.put("static")
    write_spec(tmp_path, "S: {ref: 'vault:secret/static#v', policy: {require_dynamic: true}}\n")
    result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=bao.env())
    assert result.returncode == 8
    assert result.stdout == ""
    assert bao.clean(result.stdout + result.stderr)


# ---- AWS Secrets Manager (moto) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def test_aws_rotation_dates(moto: MotoServer, tmp_path: Path) -> None:
    sm = moto.client("secretsmanager")
    value = "canary-" + secrets.token_hex(12)
    sm.create_secret(Name="prod/rotating", SecretString=json.dumps({"key": value}))
    env = {"AWS_REGION": REGION, "AWS_ENDPOINT_URL": moto.endpoint, **ADMIN_ENV}
    time.sleep(3)
    write_spec(tmp_path, "KEY: aws:prod/rotating#key\n", "policy: {max_age: 2s}\n")
    audit = tmp_path / "audit.jsonl"
    failed = jobsecrets(["run", "--audit-log", str(audit), "--", "true"], cwd=tmp_path, env=env)
    assert failed.returncode == 8
    assert "(CreatedDate)" in failed.stderr or "(LastChangedDate)" in failed.stderr

    check = jobsecrets(["plan", "--check", "--format", "json"], cwd=tmp_path, env=env)
    assert check.returncode == 8
    assert json.loads(check.stdout)["check"]["variables"]["KEY"]["policy"]["result"] == "fail"

    write_spec(
        tmp_path,
        "KEY: aws:prod/rotating#key\n",
        "policy: {max_age: {value: 2s, on_violation: warn}}\n",
    )
    warned = jobsecrets(["run", "--audit-log", str(audit), "--", "true"], cwd=tmp_path, env=env)
    assert warned.returncode == 0
    assert "policy (warn)" in warned.stderr

    sm.rotate_secret(SecretId="prod/rotating", RotationRules={"AutomaticallyAfterDays": 1})
    # moto rotates without a Lambda by staging an empty version; give it the rotated value.
    sm.put_secret_value(
        SecretId="prod/rotating",
        SecretString=json.dumps({"key": value}),
        VersionStages=["AWSCURRENT"],
    )
    write_spec(tmp_path, "KEY: aws:prod/rotating#key\n", "policy: {max_age: 2s}\n")
    rotated = jobsecrets(["run", "--audit-log", str(audit), "--", "true"], cwd=tmp_path, env=env)
    assert rotated.returncode == 0, rotated.stderr
    last = audit_records(audit)[-1]
    findings = last["policy"]["findings"]  # type: ignore[index]
    assert "LastRotatedDate" in findings[0]["message"]
    everything = audit.read_text() + failed.stderr + check.stdout + warned.stderr + rotated.stderr
    assert value not in everything
