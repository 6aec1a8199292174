"""Every lease and token a job obtains ends when the job ends: real OpenBao, real PostgreSQL.

The CLI runs as a subprocess with a GitHub-style environment (``GITHUB_ACTIONS=true`` and the
``ACTIONS_ID_TOKEN_REQUEST_*`` pair pointing at a local token endpoint), signs in to OpenBao with
``auth/jwt`` and reads ``database/creds``, which creates a real PostgreSQL role. After the job:
the role is gone from PostgreSQL, ``sys/leases/lookup`` knows no lease and the login token is
revoked, for every way a job can end. Assertions are booleans: no value is ever printed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support.faults import FaultProxy
from support.lifecycle import VaultJob, jobsecrets_cmd, wait_until
from support.oidc import GithubTokenServer
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer

pytestmark = pytest.mark.integration

DB_SECRETS = "  DB_USER: vault:{db}/creds/ci#username\n  DB_PASS: vault:{db}/creds/ci#password\n"

# The child proves the credentials work by signing in to PostgreSQL with them, and records the
# values (for the leak checks) in a file only the test reads.
CONNECT = textwrap.dedent(
    """
    import json, os, sys, time
    import psycopg
    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0
    time.sleep(delay)
    with open(os.environ["SEEN_FILE"], "w") as seen:
        json.dump({"user": os.environ["DB_USER"], "password": os.environ["DB_PASS"]}, seen)
    with psycopg.connect(os.environ["PG_DSN"], user=os.environ["DB_USER"],
                         password=os.environ["DB_PASS"], connect_timeout=5) as conn:
        ok = conn.execute("SELECT current_user").fetchone()[0] == os.environ["DB_USER"]
    print("connected" if ok else "wrong user", "as", os.environ["DB_USER"])
    print("password is", os.environ["DB_PASS"], file=sys.stderr)
    sys.exit(0 if ok else 9)
    """
)


@pytest.fixture
def job(
    openbao: OpenBaoServer, postgres: PostgresServer, oidc_key: rsa.RSAPrivateKey, tmp_path: Path
) -> Iterator[VaultJob]:
    """A job whose policy may revoke its own database leases."""
    yield VaultJob(openbao, postgres, oidc_key, tmp_path)


def job_env(job: VaultJob, github: GithubTokenServer, **extra: str) -> dict[str, str]:
    pg = job.postgres
    dsn = f"host={pg.host} port={pg.port} dbname={pg.database}"
    return job.env(github, PG_DSN=dsn, SEEN_FILE=str(job.workdir / "seen.json"), **extra)


def seen_values(job: VaultJob) -> list[str]:
    path = job.workdir / "seen.json"
    return list(json.loads(path.read_text()).values()) if path.exists() else []


def leaked(text: str, values: list[str]) -> bool:
    return any(value and value in text for value in values)


def test_run_normal_exit_revokes_lease_role_and_token(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    job.write_spec(DB_SECRETS)
    result = job.run(
        "-v", "run", "--", sys.executable, "-c", CONNECT, env=job_env(job, github_oidc)
    )
    assert result.returncode == 0, result.stderr
    assert "connected as ***" in result.stdout
    assert "password is ***" in result.stderr
    values = seen_values(job)
    assert len(values) == 2, "the child did not get both variables"
    assert not leaked(result.stdout + result.stderr, values), "a value reached the output"
    # One read for both fields: one lease, one role; revoked one by one (the policy allows it).
    assert "revoked 1 lease(s) and 1 token(s)" in result.stderr
    assert github_oidc.issued == 1
    assert not job.new_roles(), "the database role outlived the job"
    assert not job.leases(), "OpenBao still knows the lease"
    assert not job.new_tokens(), "the login token outlived the job"


def test_failing_child_keeps_its_code_and_revokes(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    job.write_spec(DB_SECRETS)
    script = "import os, sys; sys.exit(3 if os.environ.get('DB_PASS') else 99)"
    result = job.run("run", "--", sys.executable, "-c", script, env=job_env(job, github_oidc))
    assert result.returncode == 3, result.stderr
    assert job.all_ended(timeout=0), "a role, lease or token outlived the failed job"


def test_sigterm_to_jobsecrets_reaches_the_child_and_revokes(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    job.write_spec(DB_SECRETS)
    ready = job.workdir / "ready"
    stopped = job.workdir / "stopped"
    script = textwrap.dedent(
        f"""
        import signal, sys, time, pathlib
        def bye(signum, frame):
            pathlib.Path({str(stopped)!r}).write_text(str(signum))
            sys.exit(143)
        signal.signal(signal.SIGTERM, bye)
        pathlib.Path({str(ready)!r}).write_text("up")
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        jobsecrets_cmd("-v", "run", "--", sys.executable, "-c", script),
        env=job_env(job, github_oidc),
        cwd=job.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(ready.exists, timeout=20), "the child never started"
        assert len(job.new_roles()) == 1 and len(job.leases()) == 1, "no lease while running"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stopped.read_text() == str(int(signal.SIGTERM)), "the child did not get SIGTERM"
    assert proc.returncode == 143, err
    assert "revoked 1 lease(s) and 1 token(s)" in err
    assert job.all_ended(timeout=0), "a role, lease or token outlived SIGTERM"


def test_resolution_error_after_the_first_lease_revokes_and_runs_nothing(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    job.write_spec(DB_SECRETS + "  MISSING: vault:{kv}/no/such/secret#key\n")
    marker = job.workdir / "child-ran"
    result = job.run(
        "-v",
        "run",
        "--",
        sys.executable,
        "-c",
        f"open({str(marker)!r}, 'w').close()",
        env=job_env(job, github_oidc),
    )
    assert result.returncode == 4, result.stderr
    assert "MISSING" in result.stderr
    assert not marker.exists(), "the child ran without all its secrets"
    # The database lease was obtained (concurrently with the failed read) and revoked.
    assert "revoked 1 lease(s) and 1 token(s)" in result.stderr
    assert job.all_ended(timeout=0), "a role, lease or token outlived the failed resolution"


def test_a_partial_failure_audits_the_issued_credentials_and_each_cause(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    """A real database lease issued, then a path missing and a path denied: the audit log says
    the issued credentials were withheld (with the lease's hash), each failure by its own kind,
    and every role, lease and token is gone afterwards."""
    job.write_spec(
        DB_SECRETS
        + "  MISSING: vault:{kv}/nothere#x\n"
        # The job's policy does not cover this path: permission denied, not "not found".
        + "  DENIED: vault:{db}/creds/other#password\n",
        name="partial.yml",
    )
    audit = job.workdir / "a.jsonl"
    result = job.run(
        "-v",
        "export",
        "-c",
        "partial.yml",
        "--format",
        "dotenv",
        "-o",
        "out.env",
        "--audit-log",
        str(audit),
        env=job_env(job, github_oidc),
    )
    assert result.returncode == 4, result.stderr
    assert not (job.workdir / "out.env").exists()
    found = {r["variable"]: r for r in map(json.loads, audit.read_text().splitlines())}
    assert {found[n]["outcome"] for n in ("DB_USER", "DB_PASS")} == {"withheld"}
    leases = {found[n]["lease"]["id_sha256"] for n in ("DB_USER", "DB_PASS")}
    assert len(leases) == 1 and leases.pop().startswith("sha256:"), "one read, one lease, named"
    assert found["MISSING"]["outcome"] == "error"
    assert found["MISSING"]["error"]["kind"] == "SecretNotFound"
    assert found["DENIED"]["outcome"] == "error"
    assert found["DENIED"]["error"]["kind"] == "AccessDenied"
    assert "revoked 1 lease(s) and 1 token(s)" in result.stderr
    assert job.all_ended(timeout=0), "a role, lease or token outlived the failed resolution"


def test_export_then_revoke_twice(job: VaultJob, github_oidc: GithubTokenServer) -> None:
    job.write_spec(DB_SECRETS)
    env = job_env(job, github_oidc)
    state = job.workdir / "steps" / "state.json"
    out = job.workdir / "values.json"
    exported = job.run("export", "--format", "json", "-o", str(out), "--state", str(state), env=env)
    assert exported.returncode == 0, exported.stderr
    values = list(json.loads(out.read_text()).values())
    assert len(job.new_roles()) == 1 and len(job.leases()) == 1 and len(job.new_tokens()) == 1
    text = state.read_text()
    assert not leaked(text, values), "a value reached the state file"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    assert json.loads(text)["leases"][0]["lease_id"] == job.leases()[0]

    # A later step: a new process with only the state file.
    revoked = job.run("revoke", "--state", str(state), env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked 1 lease(s) and 1 token(s)" in revoked.stderr
    assert not state.exists(), "revoke left the state file behind"
    assert job.all_ended(timeout=0), "a role, lease or token outlived revoke"
    again = job.run("revoke", "--state", str(state), env=env)
    assert again.returncode == 0, again.stderr
    assert "nothing to revoke" in again.stderr


def test_export_with_state_key_encrypts_the_token(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    job.write_spec(DB_SECRETS)
    key = os.urandom(32).hex()
    env = job_env(job, github_oidc, JOBSECRETS_STATE_KEY=key)
    exported = job.run("export", "--format", "dotenv", env=env)
    assert exported.returncode == 0, exported.stderr
    # The default state path: $RUNNER_TEMP/jobsecrets-UID/state.json.
    state = Path(env["RUNNER_TEMP"]) / f"jobsecrets-{os.getuid()}" / "state.json"
    entry = json.loads(state.read_text())["tokens"][0]
    assert "token" not in entry and "token_sealed" in entry

    no_key = {k: v for k, v in env.items() if k != "JOBSECRETS_STATE_KEY"}
    refused = job.run("revoke", env=no_key)
    assert refused.returncode == 7, refused.stderr
    assert "JOBSECRETS_STATE_KEY" in refused.stderr and state.exists()
    assert len(job.new_tokens()) == 1, "the token was revoked without its key"

    done = job.run("revoke", env=env)
    assert done.returncode == 0, done.stderr
    assert not state.exists()
    assert job.all_ended(timeout=0)


def test_revoke_succeeds_when_leases_already_expired(
    openbao: OpenBaoServer,
    postgres: PostgresServer,
    oidc_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    github_oidc: GithubTokenServer,
) -> None:
    job = VaultJob(openbao, postgres, oidc_key, tmp_path, default_ttl="2s", max_ttl="2s")
    job.write_spec(DB_SECRETS)
    env = job_env(job, github_oidc)
    assert job.run("export", "--format", "json", env=env).returncode == 0
    assert wait_until(lambda: not job.leases(), timeout=10), "the lease did not expire"
    result = job.run("revoke", env=env)
    assert result.returncode == 0, result.stderr
    assert job.all_ended(timeout=0)


def test_long_child_outlives_a_short_ttl_thanks_to_renewal(
    openbao: OpenBaoServer,
    postgres: PostgresServer,
    oidc_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    github_oidc: GithubTokenServer,
) -> None:
    # Without renewal the role stops working after 3s (VALID UNTIL) and is dropped (lease expiry).
    job = VaultJob(openbao, postgres, oidc_key, tmp_path, default_ttl="3s", max_ttl="1m")
    job.write_spec(DB_SECRETS)
    started = time.monotonic()
    # -vv: each renewal's line says how much of the TTL was left when it went out, so a failure
    # here shows whether the renewer woke late (a loaded machine) or the store refused.
    env = job_env(job, github_oidc)
    result = job.run("-vv", "run", "--", sys.executable, "-c", CONNECT, "6", env=env)
    assert time.monotonic() - started >= 6
    assert result.returncode == 0, result.stderr
    assert "connected as ***" in result.stdout
    renewals = [line for line in result.stderr.splitlines() if "renewed lease" in line]
    # Due at half of each 3 s TTL: about four in 6 s; two at the very least.
    assert len(renewals) >= 2, result.stderr
    problems = ("cannot renew", "maximum TTL")
    assert not any(p in result.stderr for p in problems), result.stderr
    assert job.all_ended(timeout=0)


def test_without_lease_revoke_policy_the_token_ends_the_leases(
    openbao: OpenBaoServer,
    postgres: PostgresServer,
    oidc_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    github_oidc: GithubTokenServer,
) -> None:
    # Vault's default policy cannot call sys/leases/revoke: revoking the token ends its leases.
    job = VaultJob(openbao, postgres, oidc_key, tmp_path, allow_revoke=False)
    job.write_spec(DB_SECRETS)
    result = job.run("-v", "run", "--", "true", env=job_env(job, github_oidc))
    assert result.returncode == 0, result.stderr
    assert "1 more lease(s) ended with their token" in result.stderr
    assert job.all_ended(timeout=10), "the token's leases outlived it"


def test_user_supplied_token_is_never_revoked(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    client = job.openbao.client()
    user = client.auth.token.create(policies=[job.role], ttl="5m")["auth"]
    job.write_spec(DB_SECRETS, auth="{method: token}")
    env = job_env(job, github_oidc, VAULT_TOKEN=user["client_token"])
    result = job.run("-v", "run", "--", "true", env=env)
    assert result.returncode == 0, result.stderr
    assert "revoked 1 lease(s) and 0 token(s)" in result.stderr
    assert job.openbao.token_valid(user["client_token"]), "the user's own token was revoked"
    assert not job.new_roles() and not job.leases()
    assert github_oidc.issued == 0, "token auth asked for a CI identity"


def test_a_failed_second_export_keeps_what_the_first_one_recorded(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    env = job_env(job, github_oidc)
    state = job.workdir / "state.json"
    job.write_spec(DB_SECRETS)
    first = job.run("export", "--format", "json", "--state", str(state), env=env)
    assert first.returncode == 0, first.stderr
    recorded = state.read_bytes()
    job.write_spec(DB_SECRETS + "  MISSING: vault:{kv}/nothing#here\n", name="second.yml")
    second = job.run(
        "export", "-c", "second.yml", "--format", "json", "--state", str(state), env=env
    )
    assert second.returncode == 4, second.stderr
    assert second.stdout == "", "a failed export wrote values"
    assert state.read_bytes() == recorded, "the failed export changed the state file"
    # Only the first export's lease and token are still alive, and revoke ends them.
    assert len(job.leases()) == 1 and len(job.new_tokens()) == 1
    assert job.run("revoke", "--state", str(state), env=env).returncode == 0
    assert job.all_ended(timeout=0)


@pytest.mark.parametrize("later_addr", ["elsewhere", "unset"])
def test_revoke_goes_to_the_server_that_issued_whatever_vault_addr_says_later(
    job: VaultJob, github_oidc: GithubTokenServer, later_addr: str
) -> None:
    """The state file recorded the spec's options only: `revoke` took the address from its own
    environment, which in a later step may name another server (our token sent there, its
    refusal taken as done) or none (a GitLab after_script that lost what the script exported)."""
    job.write_spec(DB_SECRETS)
    env = job_env(job, github_oidc)
    state = job.workdir / "state.json"
    out = job.workdir / "values.json"
    exported = job.run("export", "--format", "json", "-o", str(out), "--state", str(state), env=env)
    assert exported.returncode == 0, exported.stderr
    later = {k: v for k, v in env.items() if not k.startswith(("VAULT_", "BAO_"))}
    if later_addr == "elsewhere":
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            later["VAULT_ADDR"] = f"http://127.0.0.1:{unused.getsockname()[1]}"
    revoked = job.run("revoke", "--state", str(state), env=later)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked 1 lease(s) and 1 token(s)" in revoked.stderr
    assert job.all_ended(timeout=0), "a role, lease or token outlived revoke"


def test_parallel_exports_into_one_state_file_lose_no_record(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    """16 `export` steps writing one state file at once: each read the file, merged and replaced
    it, and the last replace dropped what the others had recorded (1-5 leases and tokens outlived
    `revoke`). The read-merge-write is locked now: revoke finds every one."""
    job.write_spec(DB_SECRETS)
    env = job_env(job, github_oidc)
    state = job.workdir / "st" / "d.json"
    count = 16
    procs = [
        subprocess.Popen(
            jobsecrets_cmd(
                "export", "--format", "dotenv", "--state", str(state), "-o", f"o{n}.env"
            ),
            env=env,
            cwd=job.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    codes = [proc.wait(timeout=120) for proc in procs]
    for proc in procs:
        assert proc.stderr is not None
        proc.stderr.close()
    assert codes == [0] * count
    assert len(job.leases()) == count and len(job.new_tokens()) == count
    recorded = json.loads(state.read_text())
    assert len(recorded["leases"]) == count, "the state file lost leases"
    assert len(recorded["tokens"]) == count, "the state file lost tokens"
    revoked = job.run("revoke", "--state", str(state), env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert job.all_ended(timeout=5), "a lease or token of a parallel export outlived revoke"
    lock = state.parent / "d.json.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600 and not lock.is_symlink()


@pytest.mark.parametrize("planted", ["directory", "symlink"])
def test_revoke_revokes_when_the_lock_file_cannot_be_used(
    job: VaultJob, github_oidc: GithubTokenServer, planted: str
) -> None:
    """`revoke` stopped with exit 2 when the lock beside the state file could not be opened (a
    directory or a symlink planted there, a read-only directory): the lease and the token
    outlived the job. The lock is advisory; ending what the job obtained comes first."""
    job.write_spec(DB_SECRETS)
    env = job_env(job, github_oidc)
    state = job.workdir / "state.json"
    exported = job.run("export", "--format", "json", "--state", str(state), env=env)
    assert exported.returncode == 0, exported.stderr
    lock = job.workdir / "state.json.lock"
    lock.unlink()
    target = job.workdir / "elsewhere"
    target.write_text("")
    if planted == "directory":
        lock.mkdir()
    else:
        lock.symlink_to(target)
    revoked = job.run("revoke", "--state", str(state), env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoking without the lock" in revoked.stderr, revoked.stderr
    assert job.all_ended(timeout=0), "a lease or token outlived revoke"
    assert not state.exists(), "the state file of a job revoked in full was kept"
    assert target.read_text() == "" and (lock.is_dir() or lock.is_symlink()), "touched the plant"


def test_export_refuses_an_unusable_lock_before_it_signs_in(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    """A directory planted as the state file's lock failed `export` at its first write, after
    it had signed in and read: now it stops (exit 2) before it obtains anything."""
    job.write_spec(DB_SECRETS)
    env = job_env(job, github_oidc)
    state = job.workdir / "state.json"
    (job.workdir / "state.json.lock").mkdir()
    asked = len(github_oidc.requests)
    exported = job.run("export", "--format", "json", "--state", str(state), env=env)
    assert exported.returncode == 2, exported.stderr
    assert "state.json.lock" in exported.stderr, exported.stderr
    assert len(github_oidc.requests) == asked, "export asked for the job's identity first"
    assert not job.new_tokens() and not job.leases(), "export left something alive"
    assert exported.stdout == "" and not state.exists()


def test_export_killed_mid_fetch_leaves_its_token_and_lease_recorded(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    """SIGKILL (a CI hard cancel) while a read hangs: the state file was written only once every
    value was in, so `revoke` found "nothing to revoke" while the database lease and the login
    token lived on. It is written as they are obtained now."""
    job.openbao.client().secrets.kv.v2.create_or_update_secret(
        "slow", {"k": "v-" + job.uid}, mount_point=job.kv_mount
    )
    job.write_spec(DB_SECRETS + "  SLOW: vault:{kv}/slow#k\n")
    state = job.workdir / "st" / "k.json"
    with FaultProxy(job.openbao.port, "http") as proxy:
        proxy.stall_on("/data/slow ")  # the KV read never answers: export waits on it
        env = job_env(job, github_oidc, VAULT_ADDR=proxy.url, BAO_ADDR=proxy.url)
        args = ["export", "--format", "dotenv", "--state", str(state), "-o", "o.env"]
        proc = subprocess.Popen(
            jobsecrets_cmd(*args),
            env=env,
            cwd=job.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            stalled = lambda: any(b"/data/slow " in line for line in proxy.request_lines)  # noqa: E731
            assert wait_until(stalled, timeout=20), "the KV read never went out"
            assert wait_until(lambda: len(job.leases()) == 1, timeout=20), "no database lease"
            time.sleep(1)  # well past the state file's coalescing interval (0.2 s)
            assert proc.poll() is None, "export ended on its own: nothing was tested"
            proc.kill()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        assert len(job.new_tokens()) == 1 and len(job.leases()) == 1
        assert not (job.workdir / "o.env").exists(), "the killed export wrote values"
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        # The post step, through the same address (the state file records it): a later step
        # whose environment names no server, or another, still reaches this one.
        revoked = job.run("revoke", "--state", str(state), env=job_env(job, github_oidc))
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked 1 lease(s) and 1 token(s)" in revoked.stderr
    assert job.all_ended(timeout=5), "the killed export's lease or token outlived revoke"


def test_a_damaged_ttl_or_time_does_not_stop_revoke(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    """A lease's ttl "60" and a token's obtained_at "yesterday" made both unusable: revoke
    exited 7, rewrote the file without them, and the next revoke exited 0 while they lived.
    Revocation needs neither field: they are taken as unknown now."""
    job.write_spec(DB_SECRETS)
    env = job_env(job, github_oidc)
    state = job.workdir / "st" / "s.json"
    assert job.run("export", "--format", "json", "--state", str(state), env=env).returncode == 0
    doc = json.loads(state.read_text())
    doc["leases"][0]["ttl"] = "60"
    doc["tokens"][0]["obtained_at"] = "yesterday"
    state.write_text(json.dumps(doc))
    revoked = job.run("revoke", "--state", str(state), env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked 1 lease(s) and 1 token(s)" in revoked.stderr
    assert job.all_ended(timeout=0), "a lease or token with a damaged field outlived revoke"


def test_a_damaged_backend_stays_in_the_state_file_until_it_is_revoked(
    job: VaultJob, github_oidc: GithubTokenServer
) -> None:
    """A backend whose type is damaged cannot revoke its lease and token: revoke said so, then
    rewrote the file without the backend, and the second revoke failed on "no backend" and,
    the third, exited 0 with them alive. The entry is kept as it was now: every revoke says
    so until it is mended, and then revoke ends everything."""
    job.write_spec(DB_SECRETS)
    env = job_env(job, github_oidc)
    state = job.workdir / "st" / "b.json"
    assert job.run("export", "--format", "json", "--state", str(state), env=env).returncode == 0
    doc = json.loads(state.read_text())
    doc["backends"]["vault"]["type"] = "vault?"
    state.write_text(json.dumps(doc))
    for _attempt in range(3):
        failed = job.run("revoke", "--state", str(state), env=env)
        assert failed.returncode == 7, failed.stderr
        assert "unusable state entry" in failed.stderr
        kept = json.loads(state.read_text())
        assert kept["backends"]["vault"]["type"] == "vault?"
        assert len(kept["leases"]) == 1 and len(kept["tokens"]) == 1
    assert len(job.leases()) == 1 and len(job.new_tokens()) == 1
    kept["backends"]["vault"]["type"] = "vault"  # a human mends it
    state.write_text(json.dumps(kept))
    mended = job.run("revoke", "--state", str(state), env=env)
    assert mended.returncode == 0, mended.stderr
    assert not state.exists()
    assert job.all_ended(timeout=0)
