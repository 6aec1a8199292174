"""CLI options, environment and spec settings found to misbehave by a helper session.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and never a value it
compared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_policy import write_fake

from jobsecrets.errors import ConfigError
from jobsecrets.spec import parse_spec
from support.cli import clean_env, jobsecrets


def test_docker_format_refuses_audit_records_on_its_stdout(tmp_path: Path) -> None:
    """--format docker writes its env-file to stdout too: --audit-log - mixed JSON lines in."""
    write_fake(tmp_path, "")
    result = jobsecrets(["export", "--format", "docker", "--audit-log", "-"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "would mix audit records" in result.stderr


@pytest.mark.parametrize("replacement", ["a\\0b", "a\\rb", "\\e[31m***", "x\\ty"])
def test_a_replacement_with_control_characters_is_a_spec_problem(replacement: str) -> None:
    """``redact: {replacement: "a\\0b"}`` passed the spec check and plan; run then wrote NUL
    bytes into the log, and export --format gitlab failed only after fetching."""
    text = (
        "version: 1\nbackends:\n  store: {type: fake}\n"
        f'redact: {{replacement: "{replacement}"}}\nsecrets:\n  A: store:app#a\n'
    )
    with pytest.raises(ConfigError, match="without control characters"):
        parse_spec(text, "jobsecrets.yml")


def _filter(env: dict[str, str], feed: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "jobsecrets", "redact"],
        input=feed,
        env=clean_env(env),
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_the_filter_masks_a_file_value_over_a_mebibyte(tmp_path: Path) -> None:
    """A file: true value of 1.2 MB was not read (a 1 MiB cap) and passed the GitLab filter
    unmasked, with only an info line."""
    lines = [f"line-{i:07d}-of-a-big-keystore-{'k' * 40}" for i in range(25_000)]
    big = tmp_path / "keystore"
    big.write_text("\n".join(lines) + "\n")
    assert big.stat().st_size > 1_200_000
    env = {"JOBSECRETS_MASK_FILE_VARS": "KEYSTORE", "KEYSTORE": str(big)}
    result = _filter(env, f"dump: {lines[12_345]} end\n".encode())
    assert result.returncode == 0
    assert result.stdout == b"dump: *** end\n"


def test_the_filter_says_loudly_when_a_file_value_cannot_be_masked(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    env = {"JOBSECRETS_MASK_FILE_VARS": "KEY", "KEY": str(fifo)}
    result = _filter(env, b"hello\n")
    assert result.returncode == 0
    assert b"KEY names no regular file" in result.stderr
    assert b"NOT masked" in result.stderr
