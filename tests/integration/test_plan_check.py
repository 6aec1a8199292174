"""``plan --check``: signs in with the CI identity, shows its claims, checks access, reads no value.

This is what a user runs to debug a 403: the token's public claims (the ones Vault roles bind on)
next to the store's answer for every variable. It must leave nothing behind: the token it obtained
is revoked, and no lease is created (no dynamic secret is read).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support.lifecycle import VaultJob
from support.oidc import GithubTokenServer, default_claims
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer

pytestmark = pytest.mark.integration

SECRETS = (
    "  DB_USER: vault:{db}/creds/ci#username\n"
    "  APP_KEY: vault:{kv}/app#key\n"
    "  FORBIDDEN: vault:{kv}-other/app#key\n"
)


@pytest.fixture
def job(
    openbao: OpenBaoServer, postgres: PostgresServer, oidc_key: rsa.RSAPrivateKey, tmp_path: Path
) -> VaultJob:
    job = VaultJob(openbao, postgres, oidc_key, tmp_path)
    client = openbao.client()
    client.secrets.kv.v2.create_or_update_secret(
        "app", secret={"key": "kv-canary-value-8d1f"}, mount_point=job.kv_mount
    )
    openbao.enable_kv(f"{job.kv_mount}-other", version=2)
    client.secrets.kv.v2.create_or_update_secret(
        "app", secret={"key": "other-canary-value-77c2"}, mount_point=f"{job.kv_mount}-other"
    )
    job.write_spec(SECRETS)
    return job


CANARIES = ["kv-canary-value-8d1f", "other-canary-value-77c2"]


def test_check_reports_claims_and_access_per_variable(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    result = job.run("plan", "--check", "--format", "json", env=job.env(github_oidc))
    # One variable is denied: exit 5, as `run` would fail.
    assert result.returncode == 5, result.stderr
    report = json.loads(result.stdout)
    token = report["identity"]["tokens"][0]
    assert token["audience"] == "vault"
    claims = token["claims"]
    assert claims["repository"] == "acme/app" and claims["ref"] == "refs/heads/main"
    assert claims["iss"] == "https://token.actions.githubusercontent.com"
    assert claims["aud"] == "vault" and token["expires_in"] > 0
    assert "jti" not in claims, "a claim outside the public list was shown"
    checked = report["check"]["variables"]
    assert checked["DB_USER"]["allowed"] and checked["APP_KEY"]["allowed"]
    assert not checked["FORBIDDEN"]["allowed"]
    assert "data/app" in checked["APP_KEY"]["detail"], "KV v2 access checked on the wrong path"
    assert report["check"]["backends"]["vault"]["signed_in"]
    assert job.role in report["check"]["backends"]["vault"]["identity"]["policies"]
    assert "FORBIDDEN" in result.stderr
    assert not any(c in result.stdout + result.stderr for c in CANARIES), "plan printed a value"
    # Nothing read, nothing left: no database role, no lease, the login token revoked.
    assert not job.new_roles() and not job.leases()
    assert not job.new_tokens(), "plan --check left its token alive"


def test_check_text_output_shows_the_claims(job: VaultJob, github_oidc: GithubTokenServer) -> None:
    result = job.run("plan", "--check", "--only", "DB_USER,APP_KEY", env=job.env(github_oidc))
    assert result.returncode == 0, result.stderr
    assert "token for audience 'vault':" in result.stdout
    assert "    ref: refs/heads/main" in result.stdout
    assert "    repository: acme/app" in result.stdout
    assert "ok - read on" in result.stdout
    assert not any(c in result.stdout + result.stderr for c in CANARIES)


def test_bound_claims_mismatch_is_readable(job: VaultJob, oidc_key: rsa.RSAPrivateKey) -> None:
    claims = default_claims(environment="staging", ref="refs/heads/feature")
    with GithubTokenServer(oidc_key, claims=claims) as github:
        result = job.run("plan", "--check", env=job.env(github))
    assert result.returncode == 3, result.stderr
    out = result.stdout
    # The claims the token really has, next to the refusal that names the claim and its value.
    assert "    ref: refs/heads/feature" in out and "    environment: staging" in out
    assert "sign-in FAILED" in out and 'claim "ref" does not match' in out
    assert "the token has ref='refs/heads/feature'" in out
    assert "bound claims" in out, "no hint on what to compare"
    assert "could not sign in (vault)" in result.stderr
    assert not job.new_tokens()


def test_plan_without_check_touches_no_server(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    env = job.env(github_oidc, VAULT_ADDR="http://127.0.0.1:9")
    result = job.run("plan", env=env)
    assert result.returncode == 0, result.stderr
    assert github_oidc.requests == [], "plan without --check asked for an identity token"
    assert "GitHub Actions OIDC token endpoint" in result.stdout
