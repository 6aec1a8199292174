"""An AWS backend signing in and reading in a process of its own (backends/forked.py), from outside.

The CLI runs as a subprocess against a real OpenBao and a real moto server, with Vault + AWS in one
spec (the case that forks), and again with ``JOBSECRETS_FORK=0``: the same variables (compared by
digest, never shown), the same errors, the CI identity token the child fetched masked, and no
process of ours left behind, whether the CLI ends normally, is cancelled, or is killed outright.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from support.faults import FaultProxy
from support.moto_server import (
    REGION,
    MotoServer,
    allow,
    create_web_identity_role,
    policy,
    seed_secrets,
)

pytestmark = pytest.mark.integration

ADMIN_ENV = {"AWS_ACCESS_KEY_ID": "AKIAADMINADMINADMIN1", "AWS_SECRET_ACCESS_KEY": "admin-key"}
JOBSECRETS_RUN = [sys.executable, "-m", "jobsecrets", "-vv", "run", "-c", "jobsecrets.yml"]
FORKED = re.compile(r"backend 'aws': signs in and reads in process (\d+)")


def digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def spec_text(aws: str = "{type: aws}", extra: str = "") -> str:
    return (
        "version: 1\nbackends:\n"
        "  vault:\n    type: vault\n    auth: {method: token}\n"
        f"  aws: {aws}\n"
        "secrets:\n"
        "  V_PASSWORD: vault:secret/forked/db#password\n"
        "  A_KEY: aws:forked/app#key\n"
        "  A_BLOB:\n    ref: aws:forked/blob\n    encoding: base64\n"
        "  A_TEAM:\n    ref: aws:forked/team/*\n"
        "  A_MAYBE:\n    ref: aws:forked/absent\n    optional: true\n" + extra
    )


def seed(moto: MotoServer, openbao: Any) -> None:
    seed_secrets(
        moto.client("secretsmanager"),
        {
            "forked/app": json.dumps({"key": "aws-forked-value"}),
            "forked/blob": bytes(range(256)),
            **{f"forked/team/m{i}": f"team-value-{i}" for i in range(30)},
        },
    )
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path="forked/db", secret={"password": "vault-forked-value"}, mount_point="secret"
    )


def environment(moto: MotoServer, openbao: Any, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "GITHUB_", "ACTIONS_", "GITLAB_", "CI", "VAULT_", "BAO_"))
        and not k.startswith("JOBSECRETS_")
    }
    env.update(ADMIN_ENV)
    env.update(openbao.env())
    env.update(
        {
            "VAULT_TOKEN": openbao.root_token,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": moto.endpoint,
            "HOME": str(tmp_path),
        }
    )
    env.update(extra)
    return env


def cli(
    tmp_path: Path, spec: str, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "jobsecrets.yml"
    path.write_text(spec)
    return subprocess.run(
        [sys.executable, "-m", "jobsecrets", "-vv", args[0], "-c", str(path), *args[1:]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def export_both_ways(
    moto: MotoServer, openbao: Any, tmp_path: Path, spec: str
) -> dict[str, subprocess.CompletedProcess[str]]:
    """``export --format json`` of ``spec`` with the fork (key "1") and without it ("0")."""
    results = {}
    for fork in ("1", "0"):
        env = environment(moto, openbao, tmp_path, JOBSECRETS_FORK=fork)
        state = str(tmp_path / f"state-{fork}")
        results[fork] = cli(tmp_path, spec, env, "export", "--format", "json", "--state", state)
    return results


def end_all(proc: subprocess.Popen[str], *pids: int | None) -> None:
    """Kill whatever a test left running: these processes, then the CLI (and reap it)."""
    for pid in pids:
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def blackholed_moto(moto: MotoServer) -> FaultProxy:
    """A proxy in front of moto that takes every request and never answers."""
    return FaultProxy(int(moto.endpoint.rsplit(":", 1)[1]), "blackhole")


def alive(pid: int) -> bool:
    """A live process (not a zombie) with this pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_same_variables_with_and_without_the_fork(
    moto: MotoServer, openbao: Any, tmp_path: Path
) -> None:
    seed(moto, openbao)
    outputs = {}
    for fork, result in export_both_ways(moto, openbao, tmp_path, spec_text()).items():
        assert result.returncode == 0, result.stderr
        forked = FORKED.search(result.stderr)
        assert (forked is not None) == (fork == "1"), "forked when it should not, or not at all"
        if forked:
            assert wait_gone(int(forked.group(1))), "the AWS process outlived the CLI"
        outputs[fork] = json.loads(result.stdout)
    assert len(outputs["1"]) == 33  # 1 Vault + key + blob + 30 team members; A_MAYBE skipped
    assert digest(outputs["1"]) == digest(outputs["0"]), "the fork changed the variables"
    blob = hashlib.sha256(base64.b64decode(outputs["1"]["A_BLOB"])).hexdigest()
    assert blob == hashlib.sha256(bytes(range(256))).hexdigest()


def test_an_error_in_the_child_is_the_same_error(
    moto: MotoServer, openbao: Any, tmp_path: Path
) -> None:
    seed(moto, openbao)
    spec = spec_text(extra="  A_GONE: aws:forked/never-created#key\n")
    results = export_both_ways(moto, openbao, tmp_path, spec)
    assert results["1"].returncode == results["0"].returncode == 4, results["1"].stderr
    assert FORKED.search(results["1"].stderr)

    def message(stderr: str) -> list[str]:
        return [line for line in stderr.splitlines() if line.startswith("jobsecrets: error")]

    assert message(results["1"].stderr) == message(results["0"].stderr)
    assert "A_GONE" in message(results["1"].stderr)[0]
    for result in results.values():
        assert "forked-value" not in result.stdout + result.stderr, "value leaked"


def test_the_identity_token_the_child_fetched_is_masked(
    moto: MotoServer, openbao: Any, tmp_path: Path, github_oidc: Any
) -> None:
    seed(moto, openbao)
    role_arn = create_web_identity_role(moto.client("iam"), "forked", policy(allow("*")))
    env = environment(moto, openbao, tmp_path, **github_oidc.env(), GITHUB_RUN_ID="7")
    env["GITHUB_ENV"] = str(tmp_path / "github_env")
    Path(env["GITHUB_ENV"]).write_text("")
    spec = spec_text(aws=f"{{type: aws, role_arn: '{role_arn}', credentials: true}}")
    result = cli(
        tmp_path, spec, env, "export", "--format", "github", "--state", str(tmp_path / "s")
    )
    assert result.returncode == 0, result.stderr
    assert FORKED.search(result.stderr), "the AWS backend did not run apart"
    # The role's credentials (exported_variables, asked of the AWS process) reached the job.
    exported = Path(env["GITHUB_ENV"]).read_text()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "A_KEY"):
        assert name in exported, f"{name} not exported"
    assert github_oidc.requests == ["sts.amazonaws.com"]  # fetched once, by the child
    masked = [
        line.removeprefix("::add-mask::")
        for line in result.stdout.splitlines()
        if line.startswith("::add-mask::")
    ]

    def audience(value: str) -> str | None:
        parts = value.split(".")
        if len(parts) != 3:
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            return None
        return claims.get("aud") if isinstance(claims, dict) else None

    assert any(audience(value) == "sts.amazonaws.com" for value in masked), (
        "the CI identity token fetched in the AWS process is not masked"
    )


def test_a_max_age_rule_asks_the_aws_process(
    moto: MotoServer, openbao: Any, tmp_path: Path
) -> None:
    """``max_age`` needs DescribeSecret (AwsBackend.dated), asked after resolution of the backend
    in its own process: the same violation, named the same way, with and without the fork."""
    seed(moto, openbao)
    # Ages are whole seconds and a violation is an age over the limit: 1.5 s made an age of 1,
    # no violation, whenever the first export was done within 2 s of the seeding (CI, once).
    time.sleep(2.2)
    spec = "policy: {max_age: 1s}\n" + spec_text()
    results = export_both_ways(moto, openbao, tmp_path, spec)
    assert results["1"].returncode == results["0"].returncode == 8, results["1"].stderr
    assert FORKED.search(results["1"].stderr)

    def violations(stderr: str) -> list[str]:
        return sorted(re.findall(r"(A_\w+): max_age", stderr))

    assert violations(results["1"].stderr) == violations(results["0"].stderr)
    assert "A_KEY" in violations(results["1"].stderr)
    relaxed = cli(
        tmp_path,
        "policy: {max_age: 1d}\n" + spec_text(),
        environment(moto, openbao, tmp_path),
        *("export", "--format", "json", "--state", str(tmp_path / "state-relaxed")),
    )
    assert relaxed.returncode == 0, relaxed.stderr


def start_run(
    tmp_path: Path, env: dict[str, str], *job: str
) -> tuple[subprocess.Popen[str], int | None]:
    """``run -- JOB`` started; returns the CLI and the AWS process's pid from ``-vv`` (or None
    if the CLI said nothing of one before its stderr ended)."""
    (tmp_path / "jobsecrets.yml").write_text(spec_text())
    proc = subprocess.Popen(
        [*JOBSECRETS_RUN, "--", *job],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        found = FORKED.search(line)
        if found:
            return proc, int(found.group(1))
    return proc, None


def _start_sleeping_job(
    tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[str], int, int]:
    """``run`` of a job that writes its pid and sleeps; returns the CLI, the AWS process, the job."""
    pidfile = tmp_path / "job.pid"
    job = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    proc, aws = start_run(tmp_path, env, sys.executable, "-c", job)
    if aws is None:
        end_all(proc)
        raise AssertionError("the AWS backend did not run apart")
    end = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        if time.monotonic() > end or proc.poll() is not None:
            end_all(proc, aws)
            raise AssertionError("the job never started")
        time.sleep(0.05)
    return proc, aws, int(pidfile.read_text())


def test_a_cancelled_run_leaves_no_aws_process(
    moto: MotoServer, openbao: Any, tmp_path: Path
) -> None:
    seed(moto, openbao)
    proc, aws, job = _start_sleeping_job(tmp_path, environment(moto, openbao, tmp_path))
    try:
        assert alive(aws), "the AWS process ended before the job did"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert wait_gone(aws), "the AWS process outlived a cancelled run"
    finally:
        end_all(proc, job, aws)


def test_the_aws_process_dies_with_a_killed_cli(
    moto: MotoServer, openbao: Any, tmp_path: Path
) -> None:
    """Killed outright while the child waits on a store that never answers (its request has
    seconds to go): only the kernel's death signal can end it at once."""
    seed(moto, openbao)
    with blackholed_moto(moto) as proxy:
        env = environment(moto, openbao, tmp_path, AWS_ENDPOINT_URL=proxy.url)
        proc, aws = start_run(tmp_path, env, "true")
        try:
            assert aws is not None, "the AWS backend did not run apart"
            end = time.monotonic() + 10
            while proxy.requests == 0:  # the child is now waiting on the store
                assert time.monotonic() < end, "the AWS process never asked the store"
                time.sleep(0.02)
            proc.kill()  # SIGKILL: no handler of ours runs
            proc.wait(timeout=10)
            assert wait_gone(aws, 2.0), "the AWS process outlived a killed CLI"
        finally:
            end_all(proc, aws)


def test_a_store_that_never_answers_ends_at_the_deadline(
    moto: MotoServer, openbao: Any, tmp_path: Path
) -> None:
    seed(moto, openbao)
    with blackholed_moto(moto) as proxy:
        env = environment(moto, openbao, tmp_path, AWS_ENDPOINT_URL=proxy.url)
        spec = "settings:\n  deadline: 3s\n" + spec_text()
        started = time.monotonic()
        result = cli(tmp_path, spec, env, "export", "--format", "json", "--state", "s")
        took = time.monotonic() - started
    assert result.returncode == 6, result.stderr
    assert took < 15, f"took {took:.1f} s against a 3 s deadline"
    assert "aws" in result.stderr and "forked-value" not in result.stdout + result.stderr
    forked = FORKED.search(result.stderr)
    assert forked, "the AWS backend did not run apart"
    assert wait_gone(int(forked.group(1))), "the AWS process outlived the deadline"
