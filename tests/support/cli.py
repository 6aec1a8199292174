"""Drive the jobsecrets CLI as a user would: a subprocess with its own environment."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# Variables of the machine running the tests that would change how jobsecrets behaves.
_SCRUB_PREFIXES = (
    "VAULT_",
    "BAO_",
    "AWS_",
    "GITHUB_",
    "GITLAB_",
    "CI_",
    "ACTIONS_",
    "JOBSECRETS_",
    "RUNNER_",
)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without CI/Vault/AWS variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SCRUB_PREFIXES) and k not in ("CI", "GITLAB_CI")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def jobsecrets(
    args: Sequence[str],
    *,
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    input: str | None = None,
    memory_limit: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jobsecrets ARGS`` and capture its output as text.

    ``memory_limit`` (bytes of address space) turns a read without end into a MemoryError in
    the child instead of the machine's out-of-memory killer.
    """

    def limit_memory() -> None:
        assert memory_limit is not None
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run(
        [sys.executable, "-m", "jobsecrets", *args],
        cwd=str(cwd),
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
        preexec_fn=limit_memory if memory_limit is not None else None,
    )


def jobsecrets_peak(
    args: Sequence[str],
    *,
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    memory_limit: int | None = None,
) -> tuple[subprocess.CompletedProcess[str], int]:
    """As :func:`jobsecrets` (no input), and the peak resident memory in bytes of the CLI and
    of every process it waited for (a backend's forked child): the kernel's own accounting
    (``wait4``), so a test can tell a bounded read from one that grew.
    """

    def limit_memory() -> None:
        assert memory_limit is not None
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    command = [sys.executable, "-m", "jobsecrets", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command,
            cwd=str(cwd),
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=limit_memory if memory_limit is not None else None,
        )
        ends = time.monotonic() + timeout
        while True:
            # Waited for here, not by Popen: its wait() drops the child's resource usage.
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > ends:
                process.kill()
                os.wait4(process.pid, 0)
                process.returncode = -9
                raise subprocess.TimeoutExpired(command, timeout)
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(
            command,
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    return done, usage.ru_maxrss * 1024  # Linux counts it in KiB
