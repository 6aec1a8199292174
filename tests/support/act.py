"""Running a workflow with ``act`` on this host, as the GitHub Action tests and benchmark do."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ACT = REPO_ROOT / ".venv" / "bin" / "act"


def action_checkout(dest: Path) -> Path:
    """What GitHub downloads for ``uses: acme/jobsecrets/...@v1``: the repository's files at that
    ref (this working tree: actions/, src/ and pyproject.toml), without .venv, .git or bytecode,
    which act would otherwise copy on every run."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO_ROOT / "actions", dest / "actions", ignore=ignore)
    shutil.copytree(REPO_ROOT / "src", dest / "src", ignore=ignore)
    shutil.copy2(REPO_ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def act_command(
    workspace: Path,
    workflow: str,
    action_ref: str,
    repo: Path,
    env: Mapping[str, str],
    cache_dir: Path | None = None,
    cache_port: int = 0,
    cache_external_url: str | None = None,
) -> list[str]:
    """``act push`` for ``workspace/.github/workflows/<workflow>``.

    act runs every step on this host (``-self-hosted``) and takes the action ``action_ref`` from
    ``repo`` (``--local-repository``). ``env`` becomes the job's environment through a 0600
    ``--env-file`` beside the workflow, never through act's argv (it holds the OIDC request token).

    ``cache_dir``: act runs its Actions cache server (the v1 ``_apis/artifactcache`` API, what
    ``ACTIONS_CACHE_URL`` names) on loopback, keeping its entries there, so a later run given the
    same directory finds what an earlier one saved (a later job on a fresh runner). None: no cache
    server (the job has no ``ACTIONS_CACHE_URL``), so runs never share an install through it.
    ``cache_port`` fixes the server's port and ``cache_external_url`` is the URL jobs are given
    for it (a latency proxy in front of that port, in the benchmark).
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
    # act's default address for its cache server is the host's outbound one: never used here.
    cache = ["--no-cache-server"]
    if cache_dir is not None:
        cache = ["--cache-server-addr", "127.0.0.1", "--cache-server-path", str(cache_dir)]
        cache += ["--cache-server-port", str(cache_port)]
        if cache_external_url:
            cache += ["--cache-server-external-url", cache_external_url]
    return [
        str(ACT),
        "push",
        "-P",
        "ubuntu-latest=-self-hosted",
        "--local-repository",
        f"{action_ref}={repo}",
        "--action-offline-mode",
        *cache,
        "--env-file",
        str(env_file),
        "-W",
        str(workspace / ".github" / "workflows" / workflow),
    ]
