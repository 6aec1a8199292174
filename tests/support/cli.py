"""Drive the jobsecrets CLI as a user would: a subprocess with its own environment."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
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
