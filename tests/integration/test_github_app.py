"""GitHub App tokens end to end: the CLI as a user runs it, the App's key in a real store.

The key lives in a real OpenBao KV (jobsecrets signs in to OpenBao with the job's OIDC identity, so
that login token must be revoked too) or in Secrets Manager on a moto server. The GitHub API is the
local server from ``jobsecrets.testing.github_api``, which records what it minted and what was
revoked. Assertions are booleans and counts: no token or key is ever printed.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jobsecrets.testing.github_api import GithubApiServer
from support.github_app import AppKey, server_for
from support.lifecycle import jobsecrets_cmd, wait_until
from support.moto_server import REGION, MotoServer, admin_session_kwargs
from support.oidc import GithubTokenServer, public_pem
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

# The job: uses its token against the API (what `gh` or `git` would do), prints it (to be masked),
# and leaves what it saw where only the test reads it.
CHILD = textwrap.dedent(
    """
    import json, os, sys, time, urllib.request, urllib.error
    seen = {k: os.environ[k] for k in ("GH_TOKEN", "SAME_TOKEN", "ISSUES_TOKEN") if k in os.environ}
    codes = {}
    for name, token in seen.items():
        req = urllib.request.Request(os.environ["GH_API"] + "/installation/repositories",
                                     headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                codes[name] = r.status
        except urllib.error.HTTPError as e:
            codes[name] = e.code
    with open(os.environ["SEEN_FILE"], "w") as f:
        json.dump({"tokens": seen, "codes": codes, "key": "PRIVATE KEY" in json.dumps(dict(os.environ))}, f)
    print("token is", seen.get("GH_TOKEN"))
    open(os.environ["READY_FILE"], "w").close()
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    """
)

SECRETS = """\
secrets:
  GH_TOKEN: {ref: "gh:acme/app", permissions: {contents: read, issues: write}}
  SAME_TOKEN: {ref: "gh:acme/app", permissions: {issues: write, contents: read}}
  ISSUES_TOKEN: {ref: "gh:acme/app", permissions: {issues: write}, repositories: [app, other]}
"""


@pytest.fixture(scope="module")
def app() -> AppKey:
    return AppKey()


@pytest.fixture
def github(app: AppKey) -> Iterator[GithubApiServer]:
    with server_for(app) as server:
        yield server


class KeyInVault:
    """The App's key in a KV mount of a shared OpenBao, readable by a jwt role bound to acme/app."""

    def __init__(self, openbao: OpenBaoServer, oidc_key: rsa.RSAPrivateKey, app: AppKey) -> None:
        self.openbao = openbao
        uid = uuid.uuid4().hex[:8]
        self.mount = f"ghkv-{uid}"
        self.role = f"gh-{uid}"
        openbao.enable_kv(self.mount, 2)
        openbao.client().secrets.kv.v2.create_or_update_secret(
            "ci/github-app", {"pem": app.pem, "app_id": "4242"}, mount_point=self.mount
        )
        openbao.write_policy(
            self.role, f'path "{self.mount}/data/ci/*" {{ capabilities = ["read"] }}'
        )
        openbao.enable_jwt(
            public_pem(oidc_key),
            self.role,
            bound_claims={"repository": "acme/app"},
            policies=[self.role],
            mount="jwt-gh",
        )
        self.before = self.accessors()

    def accessors(self) -> set[str]:
        reply = self.openbao.client().list("auth/token/accessors")
        return set(reply["data"]["keys"]) if reply else set()

    def backend(self) -> str:
        return (
            "  vault:\n    type: vault\n"
            f"    auth: {{method: jwt, role: {self.role}, mount: jwt-gh, audience: vault}}\n"
        )

    def key_ref(self) -> str:
        return f"vault:{self.mount}/ci/github-app#pem"


@pytest.fixture
def vault_key(openbao: OpenBaoServer, oidc_key: rsa.RSAPrivateKey, app: AppKey) -> KeyInVault:
    return KeyInVault(openbao, oidc_key, app)


def write_spec(
    tmp_path: Path,
    github: GithubApiServer,
    store_backend: str,
    key_ref: str,
    *,
    app_id: str = "4242",
    extra: str = "",
    secrets: str = SECRETS,
) -> None:
    text = (
        "version: 1\nbackends:\n"
        + store_backend
        + "  gh:\n    type: github\n"
        + f"    app_id: {app_id}\n    private_key: {key_ref}\n    api_url: {github.url}\n"
        + extra
        + secrets
    )
    (tmp_path / "jobsecrets.yml").write_text(text)


def job_env(
    tmp_path: Path, github: GithubApiServer, oidc: GithubTokenServer | None, **extra: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("VAULT_", "BAO_", "GITHUB_", "ACTIONS_", "JOBSECRETS_", "CI", "AWS_", "RUNNER_")
        )
    }
    env.update(
        HOME=str(tmp_path),
        RUNNER_TEMP=str(tmp_path / "runner-temp"),
        GH_API=github.url,
        SEEN_FILE=str(tmp_path / "seen.json"),
        READY_FILE=str(tmp_path / "ready"),
    )
    if oidc is not None:
        env.update(oidc.env())
    env.update(extra)
    return env


def run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        jobsecrets_cmd(*args),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def seen(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "seen.json").read_text())  # type: ignore[no-any-return]


def all_revoked(github: GithubApiServer) -> bool:
    return (
        bool(github.tokens) and not github.active() and len(github.revoked()) == len(github.tokens)
    )


def test_run_mints_shares_masks_and_revokes_with_the_key_in_openbao(
    tmp_path: Path,
    github: GithubApiServer,
    vault_key: KeyInVault,
    github_oidc: GithubTokenServer,
    app: AppKey,
) -> None:
    write_spec(tmp_path, github, vault_key.backend(), vault_key.key_ref())
    env = job_env(tmp_path, github, github_oidc, VAULT_ADDR=vault_key.openbao.address)
    audit = tmp_path / "audit.jsonl"
    result = run(
        tmp_path, env, "-v", "run", "--audit-log", str(audit), "--", sys.executable, "-c", CHILD
    )
    assert result.returncode == 0, result.stderr
    job = seen(tmp_path)
    tokens = job["tokens"]
    assert isinstance(tokens, dict)
    assert job["codes"] == {"GH_TOKEN": 200, "SAME_TOKEN": 200, "ISSUES_TOKEN": 200}
    assert tokens["GH_TOKEN"] == tokens["SAME_TOKEN"], "one request, two tokens"
    assert tokens["GH_TOKEN"] != tokens["ISSUES_TOKEN"]
    assert len(github.tokens) == 2
    assert job["key"] is False, "the App's key reached the job's environment"
    out = result.stdout + result.stderr
    assert "token is ***" in result.stdout
    # The audit log has each variable's lease (hashed id, TTL under the hour), no token.
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    leases = {r["variable"]: r["lease"] for r in records if r.get("backend") == "gh"}
    assert set(leases) == {"GH_TOKEN", "SAME_TOKEN", "ISSUES_TOKEN"}
    assert all(0 < lease["ttl"] <= 3600 and not lease["renewable"] for lease in leases.values())
    assert not any(t in audit.read_text() for t in tokens.values()), "a token reached the audit log"
    assert not any(t in out for t in tokens.values()), "a token reached the output"
    assert (app.pem.splitlines()[1] in out) is False, "the key reached the output"
    # Both tokens revoked at the end (the server saw DELETE /installation/token), and the
    # OpenBao login token that read the key too.
    assert all_revoked(github)
    assert "revoked 2 lease(s)" in result.stderr
    assert vault_key.accessors() == vault_key.before, "the OpenBao login token outlived the job"


def test_failing_child_keeps_its_code_and_revokes(
    tmp_path: Path, github: GithubApiServer, vault_key: KeyInVault, github_oidc: GithubTokenServer
) -> None:
    write_spec(tmp_path, github, vault_key.backend(), vault_key.key_ref())
    env = job_env(tmp_path, github, github_oidc, VAULT_ADDR=vault_key.openbao.address)
    result = run(tmp_path, env, "run", "--", sys.executable, "-c", CHILD, "0", "3")
    assert result.returncode == 3, result.stderr
    assert all_revoked(github)
    assert vault_key.accessors() == vault_key.before


def test_sigterm_revokes(
    tmp_path: Path, github: GithubApiServer, vault_key: KeyInVault, github_oidc: GithubTokenServer
) -> None:
    write_spec(tmp_path, github, vault_key.backend(), vault_key.key_ref())
    env = job_env(tmp_path, github, github_oidc, VAULT_ADDR=vault_key.openbao.address)
    proc = subprocess.Popen(
        jobsecrets_cmd("run", "--", sys.executable, "-c", CHILD, "60"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until((tmp_path / "ready").exists, timeout=30), "the child never started"
        assert len(github.active()) == 2, "no live token while the job runs"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert all_revoked(github), err
    assert vault_key.accessors() == vault_key.before


def test_export_then_revoke_in_a_later_step_with_a_sealed_state(
    tmp_path: Path, github: GithubApiServer, vault_key: KeyInVault, github_oidc: GithubTokenServer
) -> None:
    write_spec(tmp_path, github, vault_key.backend(), vault_key.key_ref())
    env = job_env(
        tmp_path,
        github,
        github_oidc,
        VAULT_ADDR=vault_key.openbao.address,
        JOBSECRETS_STATE_KEY=os.urandom(32).hex(),
    )
    state = tmp_path / "state.json"
    out = tmp_path / "values.json"
    exported = run(
        tmp_path, env, "export", "--format", "json", "-o", str(out), "--state", str(state)
    )
    assert exported.returncode == 0, exported.stderr
    values = json.loads(out.read_text())
    assert len(github.active()) == 2
    text = state.read_text()
    assert not any(v in text for v in values.values()), "a token is in clear in the state file"
    assert all("token_sealed" in t for t in json.loads(text)["tokens"])
    # The later step: only the state file, and no Vault needed to end the GitHub tokens.
    revoked = run(tmp_path, env, "revoke", "--state", str(state))
    assert revoked.returncode == 0, revoked.stderr
    assert all_revoked(github)
    assert not state.exists()
    assert vault_key.accessors() == vault_key.before
    again = run(tmp_path, env, "revoke", "--state", str(state))
    assert again.returncode == 0 and "nothing to revoke" in again.stderr


def test_max_ttl_under_the_tokens_hour_revokes_and_fails(
    tmp_path: Path, github: GithubApiServer, vault_key: KeyInVault, github_oidc: GithubTokenServer
) -> None:
    write_spec(
        tmp_path, github, vault_key.backend(), vault_key.key_ref(), extra="policy: {max_ttl: 30m}\n"
    )
    env = job_env(tmp_path, github, github_oidc, VAULT_ADDR=vault_key.openbao.address)
    marker = tmp_path / "child-ran"
    result = run(tmp_path, env, "run", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert result.returncode == 8, result.stderr
    assert "max_ttl" in result.stderr
    assert not marker.exists()
    assert all_revoked(github)


def test_plan_and_plan_check_mint_nothing(
    tmp_path: Path, github: GithubApiServer, vault_key: KeyInVault, github_oidc: GithubTokenServer
) -> None:
    write_spec(
        tmp_path, github, vault_key.backend(), vault_key.key_ref(), extra="    job_timeout: 2h\n"
    )
    env = job_env(tmp_path, github, github_oidc, VAULT_ADDR=vault_key.openbao.address)
    planned = run(tmp_path, env, "plan")
    assert planned.returncode == 0, planned.stderr
    assert "GitHub App 4242" in planned.stdout
    assert "warning: the job may run 2h" in planned.stdout
    assert not github.requests, "plan talked to GitHub"
    checked = run(tmp_path, env, "plan", "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "may mint contents: read, issues: write" in checked.stdout
    assert not github.tokens, "plan --check minted a token"
    assert vault_key.accessors() == vault_key.before, "plan --check left the OpenBao token alive"


def test_app_id_from_the_store_and_not_installed_is_clear(
    tmp_path: Path, github: GithubApiServer, vault_key: KeyInVault, github_oidc: GithubTokenServer
) -> None:
    write_spec(
        tmp_path,
        github,
        vault_key.backend(),
        vault_key.key_ref(),
        app_id=f"vault:{vault_key.mount}/ci/github-app#app_id",
        secrets='secrets:\n  GH_TOKEN: {ref: "gh:acme/elsewhere", permissions: {contents: read}}\n',
    )
    env = job_env(tmp_path, github, github_oidc, VAULT_ADDR=vault_key.openbao.address)
    result = run(tmp_path, env, "run", "--", "true")
    assert result.returncode == 4, result.stderr
    assert "jobsecrets-test" in result.stderr and "not installed on acme/elsewhere" in result.stderr
    assert vault_key.accessors() == vault_key.before


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def test_key_in_aws_secrets_manager(
    tmp_path: Path, github: GithubApiServer, moto: MotoServer, app: AppKey
) -> None:
    name = f"ci/github-app-{uuid.uuid4().hex[:6]}"
    moto.client("secretsmanager").create_secret(
        Name=name, SecretString=json.dumps({"pem": app.pem})
    )
    kwargs = admin_session_kwargs()
    write_spec(tmp_path, github, "  aws: {type: aws}\n", f"aws:{name}#pem")
    env = job_env(
        tmp_path,
        github,
        None,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=moto.endpoint,
        AWS_ACCESS_KEY_ID=kwargs["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=kwargs["aws_secret_access_key"],
    )
    result = run(tmp_path, env, "run", "--", sys.executable, "-c", CHILD)
    assert result.returncode == 0, result.stderr
    assert seen(tmp_path)["codes"] == {"GH_TOKEN": 200, "SAME_TOKEN": 200, "ISSUES_TOKEN": 200}
    assert all_revoked(github)
