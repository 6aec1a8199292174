"""Signing in with the job's own identity: OpenBao ``auth/jwt`` and ``auth/kubernetes``, for real.

OpenBao verifies locally signed tokens through ``jwt_validation_pubkeys``; roles bind on the
repository and the ref, so a token for another ref is refused, with a message that says which claim
and what the token had. Kubernetes auth runs against a local TokenReview endpoint (OpenBao calls
the Kubernetes API to validate the service-account token) with the token read from a file.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from support.lifecycle import VaultJob
from support.oidc import GithubTokenServer, default_claims, sign
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer

pytestmark = pytest.mark.integration

DB_SECRETS = "  DB_USER: vault:{db}/creds/ci#username\n  DB_PASS: vault:{db}/creds/ci#password\n"


@pytest.fixture
def job(
    openbao: OpenBaoServer, postgres: PostgresServer, oidc_key: rsa.RSAPrivateKey, tmp_path: Path
) -> VaultJob:
    """A role bound to acme/app on refs/heads/main."""
    return VaultJob(openbao, postgres, oidc_key, tmp_path)


def test_token_for_the_wrong_ref_is_refused_with_the_claim_named(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    job.write_spec(DB_SECRETS)
    feature = default_claims(ref="refs/heads/feature", sub="repo:acme/app:ref:refs/heads/feature")
    with GithubTokenServer(oidc_key, claims=feature) as github:
        result = job.run("run", "--", "true", env=job.env(github))
    assert result.returncode == 3, result.stderr
    assert 'claim "ref" does not match' in result.stderr
    assert "the token has ref='refs/heads/feature'" in result.stderr
    assert "plan --check" in result.stderr, "the hint should point at plan --check"
    assert not job.new_tokens() and not job.new_roles()


def test_token_for_another_repository_is_refused(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    job.write_spec(DB_SECRETS)
    fork = default_claims(repository="mallory/app")
    with GithubTokenServer(oidc_key, claims=fork) as github:
        result = job.run("export", "--format", "json", env=job.env(github))
    assert result.returncode == 3, result.stderr
    assert "the token has repository='mallory/app'" in result.stderr
    assert result.stdout == "", "a refused login exported something"


def test_wrong_audience_is_explained(job: VaultJob, github_oidc: GithubTokenServer) -> None:
    auth = f"{{method: jwt, role: {job.role}, mount: jwt-lifecycle, audience: not-vault}}"
    job.write_spec(DB_SECRETS, auth=auth)
    result = job.run("run", "--", "true", env=job.env(github_oidc))
    assert result.returncode == 3, result.stderr
    assert "not-vault" in result.stderr and "aud" in result.stderr


def test_github_job_without_id_token_permission(job: VaultJob) -> None:
    job.write_spec(DB_SECRETS)
    result = job.run("run", "--", "true", env=job.env(None, GITHUB_ACTIONS="true"))
    assert result.returncode == 3, result.stderr
    assert "id-token: write" in result.stderr


def test_jwt_login_asks_github_for_the_configured_audience(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    job.write_spec(DB_SECRETS)
    result = job.run("run", "--", "true", env=job.env(github_oidc))
    assert result.returncode == 0, result.stderr
    assert github_oidc.requests == ["vault"]
    assert not job.new_tokens(), "the jwt login token outlived the job"


# ---- kubernetes -------------------------------------------------------------------------------


class TokenReviewServer:
    """A Kubernetes API that only answers TokenReview: every token is ``ci/runner``."""

    def __init__(self) -> None:
        self.reviews = 0

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.reviews += 1
                body = json.dumps(
                    {
                        "apiVersion": "authentication.k8s.io/v1",
                        "kind": "TokenReview",
                        "status": {
                            "authenticated": True,
                            "user": {
                                "username": "system:serviceaccount:ci:runner",
                                "uid": "uid-runner",
                                "groups": ["system:serviceaccounts"],
                            },
                        },
                    }
                ).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> TokenReviewServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_review() -> Iterator[TokenReviewServer]:
    with TokenReviewServer() as server:
        yield server


def _ca_pem(key: rsa.RSAPrivateKey) -> str:
    """Any CA certificate: OpenBao insists on one, the review endpoint is plain HTTP anyway."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-k8s-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1))
        .not_valid_after(datetime.datetime(2040, 1, 1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_kubernetes_auth_with_the_service_account_token_file(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey, token_review: TokenReviewServer
) -> None:
    client = job.openbao.client()
    mount = f"k8s-{job.uid}"
    client.sys.enable_auth_method("kubernetes", path=mount)
    client.write_data(
        f"auth/{mount}/config",
        data={
            "kubernetes_host": token_review.url,
            "disable_local_ca_jwt": True,
            "kubernetes_ca_cert": _ca_pem(oidc_key),
        },
    )
    client.write_data(
        f"auth/{mount}/role/ci",
        data={
            "bound_service_account_names": ["runner"],
            "bound_service_account_namespaces": ["ci"],
            "token_policies": [job.role],
            "token_ttl": "1m",
        },
    )
    now = int(time.time())
    sa_token = sign(
        {
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:ci:runner",
            "kubernetes.io/serviceaccount/namespace": "ci",
            "kubernetes.io/serviceaccount/service-account.name": "runner",
            "kubernetes.io/serviceaccount/service-account.uid": "uid-runner",
            "iat": now,
            "exp": now + 300,
        },
        oidc_key,
    )
    token_file = job.workdir / "sa-token"
    token_file.write_text(sa_token)
    token_file.chmod(0o600)
    job.write_spec(
        DB_SECRETS,
        auth=f"{{method: kubernetes, role: ci, mount: {mount}, token_file: {token_file}}}",
    )
    script = "import os, sys; sys.exit(0 if os.environ.get('DB_USER') else 5)"
    result = job.run("-v", "run", "--", sys.executable, "-c", script, env=job.env(None))
    assert result.returncode == 0, result.stderr
    assert token_review.reviews == 1
    assert "revoked 1 lease(s) and 1 token(s)" in result.stderr
    assert job.all_ended(timeout=0), "a role, lease or token outlived the kubernetes job"
    # The spec names the token file: /dev/zero was read without end, a FIFO blocked for good.
    os.mkfifo(job.workdir / "sa-fifo")
    for odd in ("/dev/zero", str(job.workdir / "sa-fifo")):
        job.write_spec(
            DB_SECRETS, auth=f"{{method: kubernetes, role: ci, mount: {mount}, token_file: {odd}}}"
        )
        refused = job.run("run", "--", "true", env=job.env(None))
        assert refused.returncode == 3, refused.stderr
        assert "cannot read the service-account token" in refused.stderr
