"""Faults from outside: real OpenBao, PostgreSQL and moto behind fault-injecting proxies.

Every scenario runs the CLI as a user would and checks the same contract (issue 14):

- the exit code of the README's table (6: a store failed or could not be reached, sign-in
  included; 3: the store refused the sign-in; 4: missing);
- one readable paragraph on stderr: one ``error:`` line (plus at most a few cause lines and a
  hint), no traceback;
- nothing exported: no output file content, the command of ``run`` never started;
- nothing left alive: no lease, no token, no PostgreSQL role obtained for the job;
- where the issue demands it (the overall deadline), the time bound: ``deadline + 1.5 s``, a
  correctness property of the product, not a speed measurement.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support.faults import FaultProxy, free_port
from support.lifecycle import JWT_MOUNT, VaultJob, wait_until
from support.moto_server import REGION, MotoServer, seed_secrets
from support.oidc import default_claims, sign
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer

pytestmark = pytest.mark.integration

DEADLINE = 4
TIMEOUT = 2
#: The issue's bound: the process exits within the deadline plus one second; 0.5 s of margin
#: for a loaded machine (interpreter start-up alone is ~0.3 s).
BOUND = DEADLINE + 1.5
PATHS = 20


class Outcome:
    """One CLI run: its result, how long it took, and where it would have exported."""

    def __init__(self, result: subprocess.CompletedProcess[str], elapsed: float, out: Path) -> None:
        self.result = result
        self.elapsed = elapsed
        self.out = out

    @property
    def code(self) -> int:
        return self.result.returncode

    @property
    def stderr(self) -> str:
        return self.result.stderr


def run_cli(
    job_dir: Path, spec: Path, env: dict[str, str], command: str = "export", timeout: float = 90
) -> Outcome:
    """``export --format shell -o OUT`` (or ``run -- sh -c 'touch started'``) with ``spec``."""
    out = job_dir / "exported.sh"
    state = job_dir / "state.json"
    if command == "export":
        args = [
            "export",
            "--format",
            "shell",
            "-o",
            str(out),
            "--state",
            str(state),
            "-c",
            str(spec),
        ]
    elif command == "plan":
        args = ["plan", "--check", "-c", str(spec)]
    else:
        out = job_dir / "started"
        args = ["run", "-c", str(spec), "--", "sh", "-c", f"touch '{out}'"]
    started = time.monotonic()
    result = subprocess.run(
        [os.environ.get("JOBSECRETS_PYTHON", "") or _python(), "-m", "jobsecrets", *args],
        env=env,
        cwd=job_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Outcome(result, time.monotonic() - started, out)


def _python() -> str:
    import sys

    return sys.executable


def assert_clean_failure(outcome: Outcome, code: int, *, bounded: bool = False) -> None:
    """The shared contract of a failure (see the module docstring)."""
    err = outcome.stderr
    assert outcome.code == code, f"exit {outcome.code}, expected {code}:\n{err}"
    assert "Traceback" not in err, err
    assert "jobsecrets: internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("jobsecrets: error:")]
    assert len(errors) == 1, f"not one error line:\n{err}"
    # One paragraph: the error, at most a few cause lines, the hint; warnings aside.
    paragraph = [line for line in lines if "warning" not in line.lower()]
    assert len(paragraph) <= 8, f"{len(paragraph)} lines:\n{err}"
    assert len(err) < 1500, f"{len(err)} characters:\n{err}"
    assert not (outcome.out.exists() and outcome.out.stat().st_size), "something was exported"
    if bounded:
        assert outcome.elapsed < BOUND, (
            f"exited after {outcome.elapsed:.1f}s (deadline {DEADLINE}s)"
        )


def kv_secrets(job: VaultJob, count: int = PATHS) -> str:
    client = job.openbao.client()
    for index in range(count):
        client.secrets.kv.v2.create_or_update_secret(
            f"p{index}", {"k": f"value-{index}-{job.uid}"}, mount_point=job.kv_mount
        )
    return "".join(f"  V{index}: vault:{job.kv_mount}/p{index}#k\n" for index in range(count))


def write_spec(
    job: VaultJob,
    secrets: str,
    *,
    address: str | None = None,
    auth: str | None = None,
    deadline: int = DEADLINE,
    extra_backends: str = "",
    identity: str = "",
) -> Path:
    auth = auth or f"{{method: jwt, role: {job.role}, mount: {JWT_MOUNT}, audience: vault}}"
    text = (
        "version: 1\n"
        f"settings: {{timeout: {TIMEOUT}s, deadline: {deadline}s}}\n" + identity + "backends:\n"
        "  vault:\n"
        "    type: vault\n"
        + (f"    address: {address}\n" if address else "")
        + f"    auth: {auth}\n"
        + extra_backends
        + "secrets:\n"
        + secrets
    )
    path = job.workdir / "jobsecrets.yml"
    path.write_text(text)
    return path


@pytest.fixture
def job(
    openbao: OpenBaoServer, postgres: PostgresServer, oidc_key: rsa.RSAPrivateKey, tmp_path: Path
) -> VaultJob:
    return VaultJob(openbao, postgres, oidc_key, tmp_path)


def job_env(job: VaultJob, oidc_key: rsa.RSAPrivateKey, **extra: str) -> dict[str, str]:
    """A job's environment with its OIDC token in ``ID_TOKEN`` (``identity: {variable: ...}``)."""
    token = sign(default_claims(audience="vault"), oidc_key)
    return job.env(None, ID_TOKEN=token, **extra)


IDENTITY = "identity: {variable: ID_TOKEN}\n"


def assert_nothing_alive(job: VaultJob) -> None:
    ended = job.all_ended(timeout=10)
    left = (len(job.leases()), len(job.new_tokens()), len(job.new_roles()))
    assert ended, f"(leases, tokens, roles) outlived the job: {left}"


# ---- Vault: the store does not answer properly -----------------------------------------------


def test_nothing_listening_at_sign_in_is_exit_6(job: VaultJob, oidc_key: rsa.RSAPrivateKey) -> None:
    spec = write_spec(
        job, kv_secrets(job, 3), address=f"http://127.0.0.1:{free_port()}", identity=IDENTITY
    )
    outcome = run_cli(job.workdir, spec, job_env(job, oidc_key))
    assert_clean_failure(outcome, 6, bounded=True)
    assert "connection refused" in outcome.stderr
    assert "bound_claims" not in outcome.stderr, "a network failure is not a refused sign-in"
    assert_nothing_alive(job)


@pytest.mark.parametrize("command", ["export", "run", "plan"])
def test_no_answer_holds_the_deadline(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey, command: str
) -> None:
    secrets = kv_secrets(job)
    with FaultProxy(job.openbao.port, "blackhole") as proxy:
        spec = write_spec(job, secrets, address=proxy.url, identity=IDENTITY)
        outcome = run_cli(job.workdir, spec, job_env(job, oidc_key), command)
    assert_clean_failure(outcome, 6, bounded=True)
    # plan --check signs in first: its login times out within the deadline (exit 6 too).
    # The summary on stderr names the cause: the deadline, or the store not reached.
    assert any(why in outcome.stderr for why in ("deadline", "cannot reach", "could not reach"))
    assert_nothing_alive(job)


def _revoke_later(job: VaultJob, env: dict[str, str]) -> None:
    """What after_script does: ``jobsecrets revoke`` with the state file ``export`` left."""
    revoked = subprocess.run(
        [_python(), "-m", "jobsecrets", "revoke", "--state", str(job.workdir / "state.json")],
        env=env,
        cwd=job.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert revoked.returncode == 0, revoked.stderr


@pytest.mark.parametrize("mode", ["blackhole", "drip"])
def test_store_stalling_after_sign_in_holds_the_deadline(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey, mode: str
) -> None:
    # Sign-in answered, then the reads (20 of them waiting on one mount lookup) never are, or
    # one byte every half second; the revocation may not get through either: the token then
    # stays in the state file and `revoke` (after_script) ends it once the store is back.
    secrets = kv_secrets(job)
    with FaultProxy(job.openbao.port, "http", drip_interval=0.5) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, identity=IDENTITY)
        env = job_env(job, oidc_key)
        proxy.switch_on("/v1/sys/internal/ui/mounts/", mode)
        outcome = run_cli(job.workdir, spec, env)
        assert_clean_failure(outcome, 6, bounded=True)
        assert "deadline" in outcome.stderr
        proxy.mode = "http"
        _revoke_later(job, env)
    assert_nothing_alive(job)


@pytest.mark.parametrize("command", ["export", "run"])
def test_a_lease_read_beside_a_stalled_read_is_revoked_at_the_deadline(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey, command: str
) -> None:
    """The database lease was recorded only once every read of the wave had answered: with
    one read stalled past the deadline, it was in no ledger and no state file, and outlived
    the job. It is recorded as its read returns now, and revoked with the rest."""
    secrets = kv_secrets(job, 1) + f"  DB_USER: vault:{job.db_mount}/creds/ci#username\n"
    with FaultProxy(job.openbao.port, "http") as proxy:
        proxy.stall_on("/data/p0 ")
        spec = write_spec(job, secrets, address=proxy.url, identity=IDENTITY)
        outcome = run_cli(job.workdir, spec, job_env(job, oidc_key), command)
        assert_clean_failure(outcome, 6, bounded=True)
        assert "reading 1 path(s)" in outcome.stderr and "(V0)" in outcome.stderr
        lines = b"\n".join(proxy.request_lines)
        assert b"/creds/ci " in lines, "the database lease was never read: nothing was tested"
        assert b"/sys/leases/revoke" in lines, "the run revoked no lease"
    assert_nothing_alive(job)


def test_slow_drip_from_the_start_holds_the_deadline(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    secrets = kv_secrets(job)
    with FaultProxy(job.openbao.port, "drip", drip_interval=0.5) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, identity=IDENTITY)
        outcome = run_cli(job.workdir, spec, job_env(job, oidc_key))
    assert_clean_failure(outcome, 6, bounded=True)
    assert "deadline" in outcome.stderr
    # The login's answer never arrived: the store made a token the job never learnt (its TTL
    # ends it; nothing of ours can). No lease, no database role.
    assert not job.leases() and not job.new_roles()


def test_reset_mid_response_at_sign_in_is_exit_6(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    secrets = kv_secrets(job, 3)
    with FaultProxy(job.openbao.port, "reset", reset_after=30) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, identity=IDENTITY)
        outcome = run_cli(job.workdir, spec, job_env(job, oidc_key))
    assert_clean_failure(outcome, 6, bounded=True)
    # A login is not repeated after a reset: the first may have created a token, which the
    # job never learnt (its TTL ends it; a second login would only make a second one).
    assert proxy.requests == 1
    assert not job.leases() and not job.new_roles()


def test_reset_mid_response_of_reads_is_retried_then_reported_once(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    secrets = kv_secrets(job)
    with FaultProxy(job.openbao.port, "reset", reset_after=30) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, auth="{method: token}")
        outcome = run_cli(job.workdir, spec, job.env(None, VAULT_TOKEN="root"))
    assert_clean_failure(outcome, 6, bounded=True)
    assert "connection reset" in outcome.stderr or "cut off" in outcome.stderr, outcome.stderr
    # KV reads are safe to repeat: retried, and one cause line for the 20 variables.
    assert proxy.requests > 1
    assert outcome.stderr.count(proxy.url) <= 2, outcome.stderr


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_at_sign_in_is_exit_6(job: VaultJob, oidc_key: rsa.RSAPrivateKey, status: int) -> None:
    secrets = kv_secrets(job, 3)
    with FaultProxy(job.openbao.port, "status", status=status) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, identity=IDENTITY)
        outcome = run_cli(job.workdir, spec, job_env(job, oidc_key))
    assert_clean_failure(outcome, 6, bounded=True)
    # Retried (503: always; 500/502: not for a login), then said: as the cause, or as the
    # store's last answer when the retries ran into the deadline.
    assert f"answered {status}" in outcome.stderr or f"last answer: {status}" in outcome.stderr
    assert "bound_claims" not in outcome.stderr
    assert_nothing_alive(job)


def test_transient_5xx_on_reads_is_retried(job: VaultJob, oidc_key: rsa.RSAPrivateKey) -> None:
    secrets = kv_secrets(job, 5)
    with FaultProxy(job.openbao.port, "status", status=500, count=3) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, auth="{method: token}")
        outcome = run_cli(job.workdir, spec, job.env(None, VAULT_TOKEN="root"))
    assert outcome.code == 0, outcome.stderr
    assert outcome.out.read_text().count("export V") == 5


def test_429_without_retry_after_is_retried_then_one_paragraph(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    secrets = kv_secrets(job)
    with FaultProxy(job.openbao.port, "status", status=429) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, auth="{method: token}")
        outcome = run_cli(job.workdir, spec, job.env(None, VAULT_TOKEN="root"))
    assert_clean_failure(outcome, 6, bounded=True)
    assert "429" in outcome.stderr
    assert proxy.requests > 1, "a 429 was not retried"


@contextlib.contextmanager
def rate_limited(job: VaultJob, rate: int, interval: str) -> Iterator[None]:
    """A real OpenBao rate-limit quota on the job's KV mount (``sys/quotas/rate-limit``)."""
    client = job.openbao.client()
    client.write_data("sys/quotas/config", data={"enable_rate_limit_response_headers": True})
    name = f"q-{job.uid}"
    quota = {"path": f"{job.kv_mount}/", "rate": rate, "interval": interval}
    client.write_data(f"sys/quotas/rate-limit/{name}", data=quota)
    try:
        yield
    finally:
        client.delete(f"sys/quotas/rate-limit/{name}")


def test_real_rate_limit_quota_is_retried_within_the_deadline(job: VaultJob) -> None:
    secrets = kv_secrets(job, 12)
    spec = write_spec(job, secrets, auth="{method: token}", deadline=30)
    with rate_limited(job, 4, "1s"):
        outcome = run_cli(job.workdir, spec, job.env(None, VAULT_TOKEN="root"))
    # 12 reads at 4 a second: the 429s are waited out (Retry-After) and every value arrives.
    assert outcome.code == 0, outcome.stderr
    assert outcome.out.read_text().count("export V") == 12


def test_real_rate_limit_quota_past_the_deadline_is_one_paragraph(job: VaultJob) -> None:
    secrets = kv_secrets(job, PATHS)
    spec = write_spec(job, secrets, auth="{method: token}")
    with rate_limited(job, 1, "60s"):
        outcome = run_cli(job.workdir, spec, job.env(None, VAULT_TOKEN="root"))
    assert_clean_failure(outcome, 6, bounded=True)
    assert "429" in outcome.stderr


def test_sealed_store_is_exit_6(
    fresh_openbao: OpenBaoServer, tmp_path: Path, oidc_key: rsa.RSAPrivateKey
) -> None:
    fresh_openbao.client().secrets.kv.v2.create_or_update_secret(
        "app", {"k": "sealed-value"}, mount_point="secret"
    )
    env = {**fresh_openbao.env(), "BAO_ADDR": fresh_openbao.address, "BAO_TOKEN": "root"}
    sealed = subprocess.run(
        [fresh_openbao.binary, "operator", "seal"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert sealed.returncode == 0, sealed.stderr
    for auth, extra in (
        ("{method: token}", {"VAULT_TOKEN": "root"}),
        (
            "{method: jwt, role: ci, audience: vault}",
            {"ID_TOKEN": sign(default_claims(audience="vault"), oidc_key)},
        ),
    ):
        spec = tmp_path / "jobsecrets.yml"
        spec.write_text(
            "version: 1\n"
            f"settings: {{timeout: {TIMEOUT}s, deadline: {DEADLINE}s}}\n"
            + IDENTITY
            + f"backends:\n  vault: {{type: vault, address: '{fresh_openbao.address}', auth: {auth}}}\n"
            "secrets:\n  A: vault:secret/app#k\n"
        )
        outcome = run_cli(tmp_path, spec, {**_base_env(tmp_path), **extra})
        assert_clean_failure(outcome, 6, bounded=True)
        assert "sealed" in outcome.stderr, outcome.stderr


def _base_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VAULT_", "BAO_", "AWS_", "GITHUB_", "ACTIONS_", "JOBSECRETS_", "CI"))
    }
    env["HOME"] = str(home)
    return env


def test_dns_failure_is_exit_6(job: VaultJob, oidc_key: rsa.RSAPrivateKey) -> None:
    spec = write_spec(
        job, kv_secrets(job, 3), address="http://vault.jobsecrets.invalid:8200", identity=IDENTITY
    )
    outcome = run_cli(job.workdir, spec, job_env(job, oidc_key))
    assert_clean_failure(outcome, 6, bounded=True)
    assert "host name not found" in outcome.stderr
    assert_nothing_alive(job)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, id="expired"),
        pytest.param(
            {
                "nbf": int(time.time()) + 600,
                "iat": int(time.time()) + 600,
                "exp": int(time.time()) + 1200,
            },
            id="not-yet-valid",
        ),
    ],
)
def test_unusable_oidc_token_is_a_refused_sign_in(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey, claims: dict[str, int]
) -> None:
    spec = write_spec(job, kv_secrets(job, 3), identity=IDENTITY)
    token = sign(default_claims(audience="vault", **claims), oidc_key)
    outcome = run_cli(job.workdir, spec, job.env(None, ID_TOKEN=token))
    assert_clean_failure(outcome, 3, bounded=True)
    assert_nothing_alive(job)


# ---- half-failed resolutions with leases obtained --------------------------------------------


def test_half_failed_resolution_revokes_its_leases(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    secrets = (
        f"  DB_USER: vault:{job.db_mount}/creds/ci#username\n"
        f"  DB_PASS: vault:{job.db_mount}/creds/ci#password\n"
        f"  GONE: vault:{job.kv_mount}/missing#k\n"
    )
    spec = write_spec(job, secrets, identity=IDENTITY)
    outcome = run_cli(job.workdir, spec, job_env(job, oidc_key), "run")
    assert_clean_failure(outcome, 4)
    assert not outcome.out.exists(), "the command ran"
    assert_nothing_alive(job)


def test_deadline_with_leases_obtained_revokes_them(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    # One store answers (a database credential: a lease and a PostgreSQL role), the other never.
    with FaultProxy(job.openbao.port, "blackhole") as proxy:
        spec = write_spec(
            job,
            f"  DB_USER: vault:{job.db_mount}/creds/ci#username\n  STUCK: slow:secret/x#k\n",
            identity=IDENTITY,
            extra_backends=(
                f"  slow: {{type: vault, address: '{proxy.url}', auth: {{method: token}}}}\n"
            ),
        )
        outcome = run_cli(job.workdir, spec, job_env(job, oidc_key, VAULT_TOKEN="root"))
    assert_clean_failure(outcome, 6, bounded=True)
    assert "deadline" in outcome.stderr
    assert_nothing_alive(job)


# ---- AWS (moto) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def aws_job(
    moto: MotoServer, tmp_path: Path, endpoint: str, count: int = 5
) -> tuple[Path, dict[str, str]]:
    client = boto3.client(
        "secretsmanager",
        region_name=REGION,
        endpoint_url=moto.endpoint,
        aws_access_key_id="AKIAADMINADMINADMIN1",
        aws_secret_access_key="admin-key",
    )
    tag = tmp_path.name[-12:]
    seed_secrets(client, {f"f-{tag}-{i}": f"aws-value-{i}-{tag}" for i in range(count)})
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        "version: 1\n"
        f"settings: {{timeout: {TIMEOUT}s, deadline: {DEADLINE}s}}\n"
        f"backends:\n  aws: {{type: aws, region: {REGION}, endpoint_url: '{endpoint}'}}\n"
        "secrets:\n" + "".join(f"  A{i}: aws:f-{tag}-{i}\n" for i in range(count))
    )
    env = {
        **_base_env(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIAADMINADMINADMIN1",
        "AWS_SECRET_ACCESS_KEY": "admin-key",
    }
    return spec, env


@pytest.mark.parametrize(
    "mode", ["blackhole", "drip", "nothing-listening", "status-500", "status-429"]
)
def test_aws_faults(moto: MotoServer, tmp_path: Path, mode: str) -> None:
    port = int(moto.endpoint.rsplit(":", 1)[1])
    if mode == "nothing-listening":
        spec, env = aws_job(moto, tmp_path, f"http://127.0.0.1:{free_port()}")
        outcome = run_cli(tmp_path, spec, env)
    else:
        kind, _, status = mode.partition("-")
        options: dict[str, Any] = {"status": int(status)} if status else {}
        with FaultProxy(port, kind, **options) as proxy:
            spec, env = aws_job(moto, tmp_path, proxy.url)
            outcome = run_cli(tmp_path, spec, env)
        if kind == "status":
            assert proxy.requests > 1, "a transient failure was not retried"
    assert_clean_failure(outcome, 6, bounded=True)


def test_aws_transient_500_is_retried(moto: MotoServer, tmp_path: Path) -> None:
    port = int(moto.endpoint.rsplit(":", 1)[1])
    with FaultProxy(port, "status", status=500, count=2) as proxy:
        spec, env = aws_job(moto, tmp_path, proxy.url)
        outcome = run_cli(tmp_path, spec, env)
    assert outcome.code == 0, outcome.stderr
    assert outcome.out.read_text().count("export A") == 5


def test_aws_sign_in_that_cannot_reach_sts_is_exit_6(
    tmp_path: Path, oidc_key: rsa.RSAPrivateKey
) -> None:
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        "version: 1\n"
        f"settings: {{timeout: {TIMEOUT}s, deadline: {DEADLINE}s}}\n"
        + IDENTITY
        + f"backends:\n  aws: {{type: aws, region: {REGION}, "
        f"endpoint_url: 'http://127.0.0.1:{free_port()}', "
        "role_arn: 'arn:aws:iam::123456789012:role/ci'}\n"
        "secrets:\n  A: aws:app\n"
    )
    token = sign(default_claims(audience="sts.amazonaws.com"), oidc_key)
    env = {**_base_env(tmp_path), "ID_TOKEN": token}
    outcome = run_cli(tmp_path, spec, env)
    assert_clean_failure(outcome, 6, bounded=True)
    assert "trust policy" not in outcome.stderr, "a network failure is not a refused sign-in"


def test_a_failed_mount_lookup_is_shared_by_its_waiters(job: VaultJob) -> None:
    # 20 variables under one mount wait for one lookup; when it fails (after its retries),
    # they share its failure instead of each redoing it (20 x the retries, past the deadline).
    secrets = kv_secrets(job)
    with FaultProxy(job.openbao.port, "status", status=500) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, auth="{method: token}")
        outcome = run_cli(job.workdir, spec, job.env(None, VAULT_TOKEN="root"))
    assert_clean_failure(outcome, 6, bounded=True)
    assert 1 < proxy.requests <= 10, f"{proxy.requests} requests for one lookup"


def test_a_signal_during_sign_in_still_revokes_the_token_it_then_obtains(
    job: VaultJob, oidc_key: rsa.RSAPrivateKey
) -> None:
    """SIGTERM while the login was on the wire: the process ended 0.25 s later, the login's
    answer came after, and its token (known to that thread only) outlived the job."""
    secrets = kv_secrets(job, 1)
    with FaultProxy(job.openbao.port, "drip", drip_interval=0.003) as proxy:
        spec = write_spec(job, secrets, address=proxy.url, identity=IDENTITY, deadline=30)
        proc = subprocess.Popen(
            [_python(), "-m", "jobsecrets", "export", "--format", "shell", "-c", str(spec),
             "-o", str(job.workdir / "out.sh"), "--state", str(job.workdir / "state.json")],
            env=job_env(job, oidc_key),
            cwd=job.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            on_the_wire = wait_until(
                lambda: any(b"/login " in line for line in proxy.request_lines), timeout=30
            )
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert on_the_wire, "the login never went out: nothing was tested"
    assert proc.returncode == 143, err
    lines = b"\n".join(proxy.request_lines)
    assert b"revoke-self" in lines, "the late token was never revoked"
    assert_nothing_alive(job)
