"""A GitHub App token through the GitHub Action, end to end under ``act``.

The workflow uses ``acme/jobsecrets/actions/inject@v1`` with ``extras: github``: the main step signs in
to a real OpenBao with the job's (test-signed) OIDC token, reads the App's key there, mints an
installation token on the local GitHub API server and hands it to later steps through $GITHUB_ENV; a
later step uses it; the post step revokes it, and the server saw the ``DELETE /installation/token``.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jobsecrets.testing.github_api import GithubApiServer
from support.act import act_command, action_checkout
from support.cli import clean_env
from support.github_app import AppKey, server_for
from support.oidc import GithubTokenServer, public_pem
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

ACTION_REF = "acme/jobsecrets@v1"

WORKFLOW = """\
on: push
permissions:
  id-token: write
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - name: checkout (a copy of the test workspace)
        run: cp -R "$TEST_SRC/." .
      - name: inject
        uses: acme/jobsecrets/actions/inject@v1
        with:
          audience: vault
          extras: github
      - name: use the token
        run: |
          curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $GH_TOKEN" \\
            -H "X-GitHub-Api-Version: 2022-11-28" "$GH_API/installation/repositories" \\
            > "$TEST_OUT/code"
          printf %s "$GH_TOKEN" > "$TEST_OUT/token"
          echo "token: $GH_TOKEN"
"""


@pytest.fixture
def github() -> Iterator[tuple[GithubApiServer, AppKey]]:
    app = AppKey()
    with server_for(app) as server:
        yield server, app


def test_later_step_uses_the_token_and_the_post_step_revokes_it(
    tmp_path: Path,
    github: tuple[GithubApiServer, AppKey],
    openbao: OpenBaoServer,
    oidc_key: rsa.RSAPrivateKey,
    github_oidc: GithubTokenServer,
) -> None:
    server, app = github
    uid = uuid.uuid4().hex[:8]
    mount, role = f"gha-app-{uid}", f"gha-app-{uid}"
    openbao.enable_kv(mount, 2)
    openbao.client().secrets.kv.v2.create_or_update_secret(
        "ci/github-app", {"pem": app.pem}, mount_point=mount
    )
    openbao.write_policy(role, f'path "{mount}/data/ci/*" {{ capabilities = ["read"] }}')
    openbao.enable_jwt(
        public_pem(oidc_key),
        role,
        bound_claims={"repository": "acme/app"},
        policies=[role],
        mount="jwt-gha-app",
    )
    reply = openbao.client().list("auth/token/accessors")
    accessors_before = set(reply["data"]["keys"]) if reply else set()

    workspace = tmp_path / "ws"
    (workspace / ".github" / "workflows").mkdir(parents=True)
    (workspace / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    (workspace / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n"
        f"  vault: {{type: vault, auth: {{method: jwt, role: {role}, mount: jwt-gha-app}}}}\n"
        f"  gh: {{type: github, app_id: 4242, private_key: 'vault:{mount}/ci/github-app#pem', "
        f"api_url: '{server.url}'}}\n"
        "secrets:\n"
        "  GH_TOKEN: {ref: 'gh:acme/app', permissions: {contents: read, pull_requests: write}}\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **github_oidc.env(),
        "TEST_SRC": str(workspace),
        "TEST_OUT": str(out),
        "VAULT_ADDR": openbao.address,
        "GH_API": server.url,
        "JOBSECRETS_TOOL_CACHE": str(tmp_path / "tool-cache"),
    }
    repo = action_checkout(tmp_path / "action-repo")
    result = subprocess.run(
        act_command(workspace, "ci.yml", ACTION_REF, repo, env),
        cwd=workspace,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    token = (out / "token").read_text() if (out / "token").exists() else ""
    log = result.stdout.replace(token, "<TOKEN>") if token else result.stdout
    assert result.returncode == 0, log[-6000:]
    # The later step had a token the server minted, with what the spec asked, and it worked.
    assert token in server.tokens, "the step's GH_TOKEN is not a token the server minted"
    issued = server.tokens[token]
    assert issued.permissions == {"contents": "read", "pull_requests": "write", "metadata": "read"}
    assert (out / "code").read_text() == "200"
    assert (token in result.stdout) is False, "the token reached the log"
    assert "token: ***" in log
    # The post step revoked it, and the server saw the DELETE.
    assert "Run Post inject" in log
    assert issued.revoked_at is not None, "the token outlived the job"
    assert len(server.tokens) == 1 and not server.active()
    reply = openbao.client().list("auth/token/accessors")
    after = set(reply["data"]["keys"]) if reply else set()
    assert after <= accessors_before, "the OpenBao login token outlived the job"
