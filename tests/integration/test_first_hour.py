"""The first hour of a new user (issue 17): a CI spec runs locally unchanged, errors say what to do.

Real OpenBao and moto; the CLI as a subprocess with a clean environment and its own HOME.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from support.cli import jobsecrets
from support.moto_server import REGION, MotoServer, admin_session_kwargs
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

CI_SPEC = """\
version: 1
backends:
  vault:
    type: vault
    auth: {method: jwt, role: ci-deploy, audience: vault}
secrets:
  PASSWORD: vault:secret/app#password
"""

AWS_SPEC = """\
version: 1
backends:
  aws:
    type: aws
    region: us-east-1
    role_arn: arn:aws:iam::123456789012:role/ci-deploy
secrets:
  STRIPE: aws:prod/payments#stripe_key
"""


class Vault:
    """One OpenBao with a KV v2 secret holding a canary."""

    def __init__(self, server: OpenBaoServer) -> None:
        self.server = server
        self.password = "canary-" + secrets.token_urlsafe(18)
        self.server.client().secrets.kv.v2.create_or_update_secret(
            "app", {"password": self.password, "user": "u"}, mount_point="secret"
        )


@pytest.fixture(scope="module")
def vault() -> Iterator[Vault]:
    with OpenBaoServer() as server:
        yield Vault(server)


def _spec(tmp_path: Path, text: str = CI_SPEC) -> Path:
    (tmp_path / "jobsecrets.yml").write_text(text)
    return tmp_path


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return home


def test_ci_spec_runs_locally_with_vault_token(vault: Vault, tmp_path: Path) -> None:
    cwd = _spec(tmp_path)
    result_file = tmp_path / "same"
    env = {
        "VAULT_ADDR": vault.server.address,
        "VAULT_TOKEN": vault.server.root_token,
        "HOME": str(_home(tmp_path)),
    }
    # The child compares with the canary read from a file (never argv) and writes a boolean.
    (tmp_path / "expected").write_text(vault.password)
    check_script = tmp_path / "check2.py"
    check_script.write_text(
        "import os, sys\n"
        "want = open(sys.argv[2]).read()\n"
        "open(sys.argv[1], 'w').write(str(os.environ.get('PASSWORD') == want))\n"
    )
    done = jobsecrets(
        ["run", "--", "python3", str(check_script), str(result_file), str(tmp_path / "expected")],
        cwd=cwd,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert result_file.read_text() == "True"
    notes = [line for line in done.stderr.splitlines() if "instead of jwt login" in line]
    assert len(notes) == 1, done.stderr
    assert "$VAULT_TOKEN" in notes[0]


def test_bao_variables_and_plan_names_sources(vault: Vault, tmp_path: Path) -> None:
    cwd = _spec(tmp_path)
    env = {
        "BAO_ADDR": vault.server.address,
        "BAO_TOKEN": vault.server.root_token,
        "HOME": str(_home(tmp_path)),
    }
    plan = jobsecrets(["plan"], cwd=cwd, env=env)
    assert plan.returncode == 0, plan.stderr
    assert f"address {vault.server.address} ($BAO_ADDR)" in plan.stdout
    assert "credentials: token from $BAO_TOKEN instead of jwt login" in plan.stdout
    checked = jobsecrets(["plan", "--check", "--format", "json"], cwd=cwd, env=env)
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["backends"][0]["credentials"].startswith("token from $BAO_TOKEN")
    assert report["check"]["variables"]["PASSWORD"]["allowed"] is True


def test_token_helper_file_locally_and_not_in_ci(vault: Vault, tmp_path: Path) -> None:
    home = _home(tmp_path)
    (home / ".vault-token").write_text(vault.server.root_token + "\n")
    cwd = _spec(tmp_path, CI_SPEC.replace("{method: jwt, role: ci-deploy, audience: vault}", "{}"))
    env = {"VAULT_ADDR": vault.server.address, "HOME": str(home)}
    plan = jobsecrets(["plan"], cwd=cwd, env=env)
    assert "credentials: token from ~/.vault-token" in plan.stdout, plan.stdout
    local = jobsecrets(
        ["export", "--format", "json", "-o", str(tmp_path / "o.json")], cwd=cwd, env=env
    )
    assert local.returncode == 0, local.stderr
    in_ci = {**env, "GITLAB_CI": "true", "CI_JOB_ID": "7", "CI_PROJECT_DIR": str(tmp_path)}
    plan_ci = jobsecrets(["plan"], cwd=cwd, env=in_ci)
    assert "~/.vault-token" not in plan_ci.stdout.split("credentials:")[1].splitlines()[0]
    refused = jobsecrets(
        ["export", "--format", "json", "-o", str(tmp_path / "c.json")], cwd=cwd, env=in_ci
    )
    assert refused.returncode == 3, refused.stderr
    assert "is not read inside CI" in refused.stderr


def test_no_fallback_inside_ci(vault: Vault, tmp_path: Path) -> None:
    cwd = _spec(tmp_path)
    env = {
        "VAULT_ADDR": vault.server.address,
        "VAULT_TOKEN": vault.server.root_token,
        "HOME": str(_home(tmp_path)),
        "GITLAB_CI": "true",
        "CI_JOB_ID": "8",
        "CI_PROJECT_DIR": str(tmp_path),
    }
    done = jobsecrets(["run", "--", "true"], cwd=cwd, env=env)
    assert done.returncode == 3, done.stderr
    assert "instead of jwt login" not in done.stderr


def test_invalid_token_is_exit_3_naming_its_source(vault: Vault, tmp_path: Path) -> None:
    cwd = _spec(tmp_path, CI_SPEC.replace("{method: jwt, role: ci-deploy, audience: vault}", "{}"))
    env = {
        "VAULT_ADDR": vault.server.address,
        "VAULT_TOKEN": "s.not-a-real-token",
        "HOME": str(_home(tmp_path)),
    }
    done = jobsecrets(["run", "--", "true"], cwd=cwd, env=env)
    assert done.returncode == 3, done.stderr
    assert "the token from $VAULT_TOKEN is invalid or expired" in done.stderr
    assert "check the policies" not in done.stderr
    checked = jobsecrets(["plan", "--check"], cwd=cwd, env=env)
    assert checked.returncode == 3, checked.stderr
    assert "the token from $VAULT_TOKEN is invalid or expired" in checked.stdout


def test_vault_addr_without_scheme(vault: Vault, tmp_path: Path) -> None:
    cwd = _spec(tmp_path, CI_SPEC.replace("{method: jwt, role: ci-deploy, audience: vault}", "{}"))
    address = vault.server.address.split("://", 1)[1]
    env = {"VAULT_ADDR": address, "VAULT_TOKEN": "x", "HOME": str(_home(tmp_path))}
    done = jobsecrets(["run", "--", "true"], cwd=cwd, env=env)
    assert done.returncode == 2, done.stderr
    assert "from $VAULT_ADDR: it must start with http:// or https://" in done.stderr


def test_debug_log_shows_decisions_never_values(vault: Vault, tmp_path: Path) -> None:
    cwd = _spec(tmp_path)
    env = {
        "VAULT_ADDR": vault.server.address,
        "VAULT_TOKEN": vault.server.root_token,
        "HOME": str(_home(tmp_path)),
    }
    done = jobsecrets(["-vv", "run", "--", "true"], cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert (vault.password in err) is False, "a value in the -vv log"
    assert (vault.server.root_token in err) is False, "the token in the -vv log"
    assert "under mount 'secret/' (KV v2)" in err
    assert "GET /v1/secret/data/app" in err
    assert "token from $VAULT_TOKEN" in err
    assert "read(s) in" in err


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def test_aws_role_arn_falls_back_to_default_chain_locally(moto: MotoServer, tmp_path: Path) -> None:
    value = "sk-" + secrets.token_hex(12)
    client = boto3.client("secretsmanager", **admin_session_kwargs(moto.endpoint))
    client.create_secret(Name="prod/payments", SecretString=json.dumps({"stripe_key": value}))
    cwd = _spec(tmp_path, AWS_SPEC)
    env = {
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_ACCESS_KEY_ID": "AKIALOCALLOCALLOCAL1",
        "AWS_SECRET_ACCESS_KEY": "local-key",
        "HOME": str(_home(tmp_path)),
    }
    plan = jobsecrets(["plan"], cwd=cwd, env=env)
    assert f"region {REGION}, endpoint {moto.endpoint}" in plan.stdout
    assert "$AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY instead of role_arn" in plan.stdout
    out = tmp_path / "values.json"
    done = jobsecrets(["export", "--format", "json", "-o", str(out)], cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["STRIPE"] == value
    assert sum("instead of role_arn" in line for line in done.stderr.splitlines()) == 1
    in_ci = {**env, "GITLAB_CI": "true", "CI_JOB_ID": "9", "CI_PROJECT_DIR": str(tmp_path)}
    refused = jobsecrets(
        ["export", "--format", "json", "-o", str(tmp_path / "x.json")], cwd=cwd, env=in_ci
    )
    assert refused.returncode == 3, refused.stderr


CHECK_SPEC = """\
version: 1
backends:
  vault: {type: vault}
secrets:
  V2_OK: vault:secret/app#password
  V2_MISSING: vault:secret/nothing-here#password
  V2_DELETED: vault:secret/gone#password
  V1_OK: vault:kv1/there#token
  V1_MISSING: vault:kv1/nothing-here#token
  DENIED: vault:private/x#y
"""


def test_plan_check_tells_existing_missing_and_denied_apart(vault: Vault, tmp_path: Path) -> None:
    server = vault.server
    client = server.client()
    client.secrets.kv.v2.create_or_update_secret("gone", {"password": "x"}, mount_point="secret")
    client.secrets.kv.v2.delete_latest_version_of_secret("gone", mount_point="secret")
    server.enable_kv("kv1", 1)
    client.secrets.kv.v1.create_or_update_secret("there", {"token": "t"}, mount_point="kv1")
    server.enable_kv("private", 2)
    server.write_policy(
        "first-hour",
        'path "secret/*" { capabilities = ["read", "list"] }\n'
        'path "kv1/*" { capabilities = ["read", "list"] }\n',
    )
    token = client.auth.token.create(policies=["first-hour"], ttl="10m")["auth"]["client_token"]
    cwd = _spec(tmp_path, CHECK_SPEC)
    env = {"VAULT_ADDR": server.address, "VAULT_TOKEN": token, "HOME": str(_home(tmp_path))}
    done = jobsecrets(["plan", "--check", "--format", "json"], cwd=cwd, env=env)
    checks = json.loads(done.stdout)["check"]["variables"]
    verdict = {
        name: "ok" if c["allowed"] else ("missing" if c["missing"] else "denied")
        for name, c in checks.items()
    }
    assert verdict == {
        "V2_OK": "ok",
        "V2_MISSING": "missing",
        "V2_DELETED": "missing",
        "V1_OK": "ok",
        "V1_MISSING": "missing",
        "DENIED": "denied",
    }
    assert done.returncode == 5, done.stderr


def test_missing_field_lists_the_field_names(vault: Vault, tmp_path: Path) -> None:
    cwd = _spec(tmp_path, "version: 1\nsecrets:\n  P: vault:secret/app#pasword\n")
    env = {
        "VAULT_ADDR": vault.server.address,
        "VAULT_TOKEN": vault.server.root_token,
        "HOME": str(_home(tmp_path)),
    }
    done = jobsecrets(["run", "--", "true"], cwd=cwd, env=env)
    assert done.returncode == 4, done.stderr
    assert "field 'pasword' not found; the fields are 'password', 'user'" in done.stderr
    assert (vault.password in done.stderr) is False, "a value in the error"
    # Said once, not twice.
    assert done.stderr.count("field 'pasword' not found") == 1, done.stderr


def test_output_into_a_missing_directory(tmp_path: Path) -> None:
    cwd = _spec(tmp_path, "version: 1\nsecrets:\n  P: vault:secret/app#p\n")
    done = jobsecrets(["export", "--format", "json", "-o", "/nonexistent/x"], cwd=cwd)
    assert done.returncode == 2, done.stderr
    assert "the directory /nonexistent does not exist" in done.stderr
    assert "internal error" not in done.stderr
