"""Running a workflow with ``act`` on this host, as the GitHub Action tests and benchmark do."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ACT = REPO_ROOT / ".venv" / "bin" / "act"


def act_command(
    workspace: Path, workflow: str, action_ref: str, repo: Path, env: Mapping[str, str]
) -> list[str]:
    """``act push`` for ``workspace/.github/workflows/<workflow>``.

    act runs every step on this host (``-self-hosted``) and takes the action ``action_ref`` from
    ``repo`` (``--local-repository``). ``env`` becomes the job's environment through a 0600
    ``--env-file`` beside the workflow, never through act's argv (it holds the OIDC request token).
    """
    if not (workspace / ".git").exists():
        # act reads the event's sha and ref from git.
        subprocess.run(["git", "init", "-q", str(workspace)], check=True)
        subprocess.run(
            [
                *("git", "-C", str(workspace), "-c", "user.email=t@example.com"),
                *("-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "init"),
            ],
            check=True,
        )
    env_file = workspace / ".act.env"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        for key, value in env.items():
            if "\n" in value:
                raise ValueError(f"act env files take one line per variable: {key}")
            handle.write(f"{key}={value}\n")
    return [
        str(ACT),
        "push",
        "-P",
        "ubuntu-latest=-self-hosted",
        "--local-repository",
        f"{action_ref}={repo}",
        "--action-offline-mode",
        "--env-file",
        str(env_file),
        "-W",
        str(workspace / ".github" / "workflows" / workflow),
    ]
