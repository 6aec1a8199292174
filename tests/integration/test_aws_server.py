"""The AWS backend against a real moto server over HTTP: the backend class, then the CLI as a subprocess.

Denials are moto's IAM simulation enforced on signed requests (see ``support.moto_server``): the
identity's policy denies an action and moto answers 403 over the wire. Values are compared as
booleans or hashes so that a failing test prints no value either.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from jobsecrets.backends import BackendContext, Document, ReadRequest
from jobsecrets.backends.aws import AwsBackend
from jobsecrets.errors import AccessDenied, SecretNotFound
from support.moto_server import (
    REGION,
    MotoServer,
    allow,
    create_user,
    create_web_identity_role,
    deny,
    policy,
    seed_secrets,
)

pytestmark = pytest.mark.integration

JOBSECRETS = [sys.executable, "-m", "jobsecrets"]
ADMIN_ENV = {"AWS_ACCESS_KEY_ID": "AKIAADMINADMINADMIN1", "AWS_SECRET_ACCESS_KEY": "admin-key"}
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm8vcjpyZWYifQ.c2lnbmF0dXJl"


def backend_for(moto: MotoServer, env: dict[str, str] | None = None, **options: Any) -> AwsBackend:
    context = BackendContext(
        env={"AWS_REGION": REGION, "AWS_ENDPOINT_URL": moto.endpoint, **(env or ADMIN_ENV)},
        identity=lambda _audience: TOKEN,
        timeout=10.0,
    )
    backend = AwsBackend("aws", options, context)
    backend.login()
    return backend


def req(path: str, var: str = "VAR", **options: Any) -> ReadRequest:
    return ReadRequest(path=path, options=options, variables=(var,), ref=f"aws:{path}")


def data(results: list[Any]) -> list[Any]:
    return [r.data if isinstance(r, Document) else type(r).__name__ for r in results]


# ---- the backend class over HTTP ----------------------------------------------------------------


def test_values_versions_and_binary_over_http(moto: MotoServer) -> None:
    sm = moto.client("secretsmanager")
    blob = bytes(range(256))
    seed_secrets(sm, {"app/json": '{"k": "v"}', "app/blob": blob, "app/rot": "first"})
    old_version = next(iter(sm.describe_secret(SecretId="app/rot")["VersionIdsToStages"]))
    sm.put_secret_value(SecretId="app/rot", SecretString="second")
    backend = backend_for(moto)
    results = backend.read_many(
        [
            req("app/json"),
            req("app/blob"),
            req("app/rot"),
            req("app/rot", version_stage="AWSPREVIOUS"),
            req("app/rot", version_id=old_version),
        ]
    )
    ok = data(results) == ['{"k": "v"}', blob, "second", "first", "first"]
    assert ok, "values differ"
    assert backend.api_calls["BatchGetSecretValue"] == 1
    assert backend.api_calls["GetSecretValue"] == 2  # the two pinned versions


def test_45_secrets_in_three_batch_calls(moto: MotoServer) -> None:
    secrets = {f"many/s{i:02d}": f"value-{i}" for i in range(45)}
    seed_secrets(moto.client("secretsmanager"), secrets)
    backend = backend_for(moto)
    results = backend.read_many([req(name) for name in secrets])
    assert data(results) == list(secrets.values()), "values differ"
    assert backend.api_calls == {"BatchGetSecretValue": 3}


def test_batch_denied_by_iam_falls_back(moto: MotoServer) -> None:
    secrets = {f"fb/s{i}": f"v{i}" for i in range(4)}
    seed_secrets(moto.client("secretsmanager"), secrets)
    creds = create_user(
        moto.client("iam"),
        "no-batch",
        policy(allow("secretsmanager:*"), deny("secretsmanager:BatchGetSecretValue")),
    )
    with moto.enforce_iam():
        backend = backend_for(moto, creds)
        results = backend.read_many([req(name) for name in secrets])
    assert data(results) == list(secrets.values()), "values differ"
    assert backend.batch_fallback == "AccessDenied"
    assert backend.api_calls == {"BatchGetSecretValue": 1, "GetSecretValue": 4}


def test_missing_and_denied(moto: MotoServer) -> None:
    seed_secrets(moto.client("secretsmanager"), {"here": "present-value"})
    creds = create_user(
        moto.client("iam"),
        "reader-denied",
        policy(
            allow("secretsmanager:*"),
            deny("secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"),
        ),
    )
    missing = backend_for(moto).read_many([req("here"), req("gone/away", "GONE")])
    assert isinstance(missing[0], Document)
    assert isinstance(missing[1], SecretNotFound)
    assert "GONE" in str(missing[1]) and "gone/away" in str(missing[1])
    with moto.enforce_iam():
        denied = backend_for(moto, creds).read_many([req("here", "HERE"), req("gone/away")])
    assert all(isinstance(r, AccessDenied) for r in denied)
    assert "HERE (aws:here)" in str(denied[0])
    assert not any("present-value" in str(r) for r in [*missing, *denied]), "value leaked"


def test_prefix_paging_over_150(moto: MotoServer) -> None:
    wanted = {f"prod/payments/k{i:03d}": "v" for i in range(150)}
    seed_secrets(
        moto.client("secretsmanager"), {**wanted, "prod/paymentsx": "v", "x/prod/payments/a": "v"}
    )
    backend = backend_for(moto)
    assert backend.list_prefix("prod/payments/") == sorted(wanted)
    assert backend.api_calls["ListSecrets"] >= 2


def test_web_identity_role_and_exported_credentials(moto: MotoServer) -> None:
    seed_secrets(moto.client("secretsmanager"), {"r/a": "ra", "r/b": "rb"})
    role_arn = create_web_identity_role(
        moto.client("iam"),
        "ci-deploy",
        policy(allow("secretsmanager:*"), deny("secretsmanager:BatchGetSecretValue")),
    )
    # First request (the unsigned AssumeRoleWithWebIdentity) passes; the rest are IAM-checked.
    with moto.enforce_iam(free_requests=1):
        backend = backend_for(
            moto, {"GITHUB_RUN_ID": "99"}, role_arn=role_arn, credentials=True, duration="20m"
        )
        results = backend.read_many([req("r/a"), req("r/b")])
        exported = backend.exported_variables()
        # The exported credentials are real STS credentials that moto's IAM recognises.
        sm = boto3.client(
            "secretsmanager",
            region_name=REGION,
            endpoint_url=moto.endpoint,
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=exported["AWS_SESSION_TOKEN"],
        )
        direct_ok = sm.get_secret_value(SecretId="r/a")["SecretString"] == "ra"
    assert data(results) == ["ra", "rb"], "values differ"
    assert backend.batch_fallback == "AccessDenied"  # the role's policy was enforced
    assert direct_ok
    info = backend.identity_info()
    assert info["assumed_role_arn"].endswith("assumed-role/ci-deploy/jobsecrets-gh-99-1")


# ---- the CLI as a subprocess -----------------------------------------------------------------


def cli(
    moto: MotoServer, spec: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``jobsecrets COMMAND -c SPEC ARGS...`` in a clean environment pointed at the moto server."""
    spec_path = tmp_path / "jobsecrets.yml"
    spec_path.write_text(spec)
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "GITHUB_", "ACTIONS_", "GITLAB_", "CI", "VAULT_", "BAO_"))
        and not k.startswith("JOBSECRETS_")
    }
    full_env.update(
        {"AWS_REGION": REGION, "AWS_ENDPOINT_URL": moto.endpoint, "HOME": str(tmp_path)}
    )
    full_env.update(env if env is not None else ADMIN_ENV)
    command, *rest = args
    return subprocess.run(
        [*JOBSECRETS, command, "-c", str(spec_path), *rest],
        env=full_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def export_json(moto: MotoServer, spec: str, tmp_path: Path, **kw: Any) -> Any:
    result = cli(
        moto, spec, tmp_path, "export", "--format", "json", "--state", str(tmp_path / "s"), **kw
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


CLI_SPEC = """\
version: 1
backends:
  aws:
    type: aws
secrets:
  STRIPE_KEY: aws:prod/payments#stripe_key
  DEEP: aws:prod/payments#nested.inner
  WHOLE: ref+awssecrets://prod/payments
  BLOB:
    ref: aws:prod/blob
    encoding: base64
  OLD_TOKEN:
    ref: aws:prod/token
    version_stage: AWSPREVIOUS
  TEAM:
    ref: aws:prod/team/*
"""


def test_cli_export_json(moto: MotoServer, tmp_path: Path) -> None:
    import base64

    sm = moto.client("secretsmanager")
    payments = {"stripe_key": "sk_live_abc123", "nested": {"inner": "deep-value"}}
    blob = bytes(range(256))
    team = {f"prod/team/member-{i:03d}": f"member-value-{i}" for i in range(150)}
    seed_secrets(sm, {"prod/payments": json.dumps(payments), "prod/blob": blob, **team})
    seed_secrets(sm, {"prod/token": "token-v1"})
    sm.put_secret_value(SecretId="prod/token", SecretString="token-v2")
    out = export_json(moto, CLI_SPEC, tmp_path)
    expected = {
        "STRIPE_KEY": "sk_live_abc123",
        "DEEP": "deep-value",
        "WHOLE": json.dumps(payments),
        "BLOB": base64.b64encode(blob).decode(),
        "OLD_TOKEN": "token-v1",
        **{f"MEMBER_{i:03d}": f"member-value-{i}" for i in range(150)},
    }
    assert set(out) == set(expected), sorted(set(out) ^ set(expected))
    wrong = sorted(k for k in expected if out[k] != expected[k])
    assert not wrong, f"wrong values for {wrong}"


def test_cli_missing_secret_exits_4(moto: MotoServer, tmp_path: Path) -> None:
    seed_secrets(moto.client("secretsmanager"), {"prod/payments": '{"stripe_key": "sk-zzz"}'})
    spec = (
        "version: 1\nbackends:\n  aws: {type: aws}\nsecrets:\n"
        "  STRIPE_KEY: aws:prod/payments#stripe_key\n  NOPE: aws:prod/absent\n"
    )
    result = cli(moto, spec, tmp_path, "export", "--format", "json", "--state", str(tmp_path / "s"))
    assert result.returncode == 4
    assert "NOPE" in result.stderr and "prod/absent" in result.stderr
    assert "sk-zzz" not in result.stdout + result.stderr, "value leaked"


def test_cli_denied_exits_5(moto: MotoServer, tmp_path: Path) -> None:
    seed_secrets(moto.client("secretsmanager"), {"prod/a": "aaa-value", "prod/b": "bbb-value"})
    creds = create_user(
        moto.client("iam"),
        "denied-cli",
        policy(allow("secretsmanager:*"), deny("secretsmanager:GetSecretValue")),
    )
    spec = "version: 1\nbackends:\n  aws: {type: aws}\nsecrets:\n  A: aws:prod/a\n  B: aws:prod/b\n"
    with moto.enforce_iam():
        # batch: false sends each read through GetSecretValue, which this user's policy denies.
        result = cli(
            moto,
            spec.replace("type: aws}", "type: aws, batch: false}"),
            tmp_path,
            "export",
            "--format",
            "json",
            "--state",
            str(tmp_path / "s"),
            env=creds,
        )
    assert result.returncode == 5, result.stderr
    assert "prod/a" in result.stderr or "prod/b" in result.stderr
    assert "-value" not in result.stdout + result.stderr, "value leaked"


def test_cli_web_identity_from_github_oidc(
    moto: MotoServer, tmp_path: Path, github_oidc: Any
) -> None:
    seed_secrets(moto.client("secretsmanager"), {"prod/db": '{"password": "pw-from-role"}'})
    role_arn = create_web_identity_role(
        moto.client("iam"), "gh-deploy", policy(allow("secretsmanager:GetSecretValue"))
    )
    spec = (
        "version: 1\nbackends:\n  aws:\n    type: aws\n"
        f"    role_arn: {role_arn}\n    credentials: true\n"
        "secrets:\n  DB_PASSWORD: aws:prod/db#password\n"
    )
    with moto.enforce_iam(free_requests=1):
        out = export_json(moto, spec, tmp_path, env={**github_oidc.env(), "GITHUB_RUN_ID": "5"})
    assert out["DB_PASSWORD"] == "pw-from-role", "value differs"
    assert out["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert out["AWS_SECRET_ACCESS_KEY"] and out["AWS_SESSION_TOKEN"]
    assert github_oidc.requests == ["sts.amazonaws.com"]


def test_cli_run_mixes_vault_and_aws(moto: MotoServer, tmp_path: Path, openbao: Any) -> None:
    seed_secrets(moto.client("secretsmanager"), {"mix/aws": '{"key": "aws-mixed-value"}'})
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path="mix-aws-test", secret={"password": "vault-mixed-value"}, mount_point="secret"
    )
    spec = (
        "version: 1\nbackends:\n"
        "  vault:\n    type: vault\n    auth: {method: token}\n"
        "  aws: {type: aws}\n"
        "secrets:\n  FROM_VAULT: vault:secret/mix-aws-test#password\n  FROM_AWS: aws:mix/aws#key\n"
    )

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    check = (
        "import hashlib, os, sys\n"
        "h = lambda n: hashlib.sha256(os.environ[n].encode()).hexdigest()\n"
        "sys.exit(0 if (h('FROM_VAULT'), h('FROM_AWS')) == (sys.argv[1], sys.argv[2]) else 9)\n"
    )
    env = {**ADMIN_ENV, **openbao.env(), "VAULT_TOKEN": openbao.root_token}
    expected = (digest("vault-mixed-value"), digest("aws-mixed-value"))
    result = cli(moto, spec, tmp_path, "run", "--", sys.executable, "-c", check, *expected, env=env)
    assert result.returncode == 0, result.stderr


PROFILE_SPEC = "version: 1\nbackends:\n  aws: {type: aws}\nsecrets:\n  DB: aws:prod/db#password\n"


def test_cli_reads_as_a_named_profile_and_says_when_it_does_not_exist(
    moto: MotoServer, tmp_path: Path
) -> None:
    """AWS_PROFILE picks the profile of the shared credentials file; IAM is enforced, so the read
    works only if the profile's key, and no other, signed it."""
    seed_secrets(moto.client("secretsmanager"), {"prod/db": '{"password": "pw-of-profile"}'})
    creds = create_user(
        moto.client("iam"), "profile-user", policy(allow("secretsmanager:GetSecretValue"))
    )
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        "[ci]\n"
        f"aws_access_key_id = {creds['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {creds['AWS_SECRET_ACCESS_KEY']}\n"
    )
    with moto.enforce_iam():
        out = export_json(moto, PROFILE_SPEC, tmp_path, env={"AWS_PROFILE": "ci"})
        assert out["DB"] == "pw-of-profile", "value differs"
        result = cli(
            moto, PROFILE_SPEC, tmp_path, "export", "--format", "json", env={"AWS_PROFILE": "nope"}
        )
    assert result.returncode == 2, result.stderr
    assert "AWS profile 'nope' does not exist" in result.stderr
    assert "pw-of-profile" not in result.stdout + result.stderr, "value leaked"


def test_cli_reads_with_temporary_credentials_and_their_session_token(
    moto: MotoServer, tmp_path: Path
) -> None:
    """AWS_SESSION_TOKEN goes with the key it belongs to: without it moto's IAM refuses the key.
    The temporary credentials are an assumed role's (moto's IAM knows those; see support.moto_server)."""
    seed_secrets(moto.client("secretsmanager"), {"prod/db": '{"password": "pw-of-session"}'})
    role_arn = create_web_identity_role(
        moto.client("iam"), "session-role", policy(allow("secretsmanager:GetSecretValue"))
    )
    temporary = moto.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="session-test")[
        "Credentials"
    ]
    env = {
        "AWS_ACCESS_KEY_ID": temporary["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": temporary["SecretAccessKey"],
        "AWS_SESSION_TOKEN": temporary["SessionToken"],
    }
    with moto.enforce_iam():
        out = export_json(moto, PROFILE_SPEC, tmp_path, env=env)
        assert out["DB"] == "pw-of-session", "value differs"
        without_token = {k: v for k, v in env.items() if k != "AWS_SESSION_TOKEN"}
        result = cli(moto, PROFILE_SPEC, tmp_path, "export", "--format", "json", env=without_token)
    assert result.returncode != 0
    assert "pw-of-session" not in result.stdout + result.stderr, "value leaked"
