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


VAULT_SPEC = "version: 1\nbackends:\n  vault: {type: vault}\nsecrets:\n  A: vault:secret/app#a\n"
AWS_SPEC = "version: 1\nbackends:\n  aws: {type: aws}\nsecrets:\n  A: aws:prod/app#a\n"
JWT_SPEC = (
    "version: 1\nbackends:\n  vault: {type: vault, address: 'http://127.0.0.1:1', "
    "auth: {method: jwt, role: ci}}\nsecrets:\n  A: vault:secret/app#a\n"
)
GITHUB = {"GITHUB_ACTIONS": "true", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token"}


@pytest.mark.parametrize(
    ("spec", "env", "expected"),
    [
        (VAULT_SPEC, {"VAULT_ADDR": "http://[::1", "VAULT_TOKEN": "t"}, "it is no URL"),
        (VAULT_SPEC, {"VAULT_ADDR": "http://h:99999", "VAULT_TOKEN": "t"}, "it is no URL"),
        (VAULT_SPEC, {"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "tok€"}, "HTTP header"),
        (
            VAULT_SPEC,
            {"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t", "VAULT_NAMESPACE": "ns€"},
            "HTTP header",
        ),
        # requests refuses a header value that starts with whitespace (InvalidHeader): "cannot
        # reach" the store, where the setting was what was wrong. (A token's is stripped.)
        (
            VAULT_SPEC,
            {"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t", "VAULT_NAMESPACE": " ns"},
            "the Vault namespace: it starts with a space or tab",
        ),
        (AWS_SPEC, {"AWS_REGION": "us-east-1/../x"}, "does not look like an AWS region"),
        (AWS_SPEC, {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://[::1"}, "no URL"),
        (JWT_SPEC, {**GITHUB, "ACTIONS_ID_TOKEN_REQUEST_URL": "http://[::1"}, "no URL"),
        (JWT_SPEC, {**GITHUB, "ACTIONS_ID_TOKEN_REQUEST_URL": "file:///etc/hostname"}, "http"),
        (
            JWT_SPEC,
            {
                **GITHUB,
                "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:1/token",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "tok\nen",
            },
            "HTTP header",
        ),
        (
            JWT_SPEC,
            {
                **GITHUB,
                "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:1/token",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": " request-token",
            },
            "starts with a space or tab",
        ),
        (
            JWT_SPEC,
            {
                **GITHUB,
                "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:1/token",
                "JOBSECRETS_AUDIENCE": "\udcff",
            },
            "no text a URL can carry",
        ),
    ],
)
def test_a_setting_no_client_can_use_is_named_not_an_internal_error(
    tmp_path: Path, spec: str, env: dict[str, str], expected: str
) -> None:
    """Found by a helper session: each was "internal error: ValueError/UnicodeEncodeError/
    InvalidRegionError" from inside a client library (and file:// was read as a local file)."""
    (tmp_path / "jobsecrets.yml").write_text(spec)
    result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env, timeout=60)
    assert "internal error" not in result.stderr, result.stderr[-600:]
    assert result.returncode not in (0, 1)
    assert result.stdout == ""
    assert expected in result.stderr, result.stderr[-600:]


def test_a_spec_address_that_is_no_url_is_a_spec_problem(tmp_path: Path) -> None:
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  vault: {type: vault, address: 'http://[::1'}\n"
        "  aws: {type: aws, region: eu-west-1, endpoint_url: 'https://x:port'}\n"
        "secrets:\n  A: vault:secret/app#a\n  B: aws:prod/app#b\n"
    )
    result = jobsecrets(["plan"], cwd=tmp_path)
    assert result.returncode == 2
    assert "'address': it is no URL" in result.stderr
    assert "endpoint_url: it is no URL" in result.stderr


def test_a_spec_namespace_starting_with_a_space_is_a_spec_problem(tmp_path: Path) -> None:
    """requests refuses it in the X-Vault-Namespace header: the spec check says so first."""
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  vault: {type: vault, address: 'http://127.0.0.1:1', "
        "namespace: ' team'}\nsecrets:\n  A: vault:secret/app#a\n"
    )
    result = jobsecrets(["plan"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-600:]
    assert "'namespace': it starts with a space or tab" in result.stderr, result.stderr[-600:]


def test_a_state_key_that_is_no_utf8_is_a_config_error(tmp_path: Path) -> None:
    write_fake(tmp_path, "")
    env = {"JOBSECRETS_STATE_KEY": "\udcff" + "a" * 40}
    result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "JOBSECRETS_STATE_KEY is not UTF-8 text" in result.stderr
    assert result.stdout == ""


def test_a_state_path_ending_in_a_slash_is_refused_before_fetching(tmp_path: Path) -> None:
    _, _, journal = write_fake(tmp_path, "")
    result = jobsecrets(["export", "--format", "json", "--state", "st/x.json/"], cwd=tmp_path)
    assert result.returncode == 2
    assert "names a directory, not a file" in result.stderr
    assert not journal.exists() or '"lease"' not in journal.read_text()
    assert not (tmp_path / "st" / "x.json").exists()


@pytest.mark.parametrize("output", ["no-such-dir/x.yml", ""])
def test_init_into_a_missing_directory_is_a_config_error(tmp_path: Path, output: str) -> None:
    result = jobsecrets(["init", "-o", output], cwd=tmp_path)
    assert result.returncode == 2
    assert "internal error" not in result.stderr
    assert "init: cannot write" in result.stderr


def test_a_password_in_an_address_is_never_shown(tmp_path: Path) -> None:
    """``VAULT_ADDR=http://user:pw@host`` (or AWS_ENDPOINT_URL): plan printed the password, and
    so did the error when the store could not be reached."""
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nsettings: {deadline: 4s}\n"
        "backends:\n  vault: {type: vault}\n  aws: {type: aws, region: eu-west-1}\n"
        "secrets:\n  A: vault:secret/app#a\n  B: aws:prod/app#b\n"
    )
    password = "pa55-in-the-url-8c1d"
    env = {
        "VAULT_ADDR": f"http://ci:{password}@127.0.0.1:1",
        "VAULT_TOKEN": "t",
        "AWS_ENDPOINT_URL": f"http://ci:{password}@127.0.0.1:1",
    }
    for args in (["plan"], ["export", "--format", "json", "--only", "A"]):
        result = jobsecrets(args, cwd=tmp_path, env=env, timeout=60)
        shown = result.stdout + result.stderr
        assert (password in shown) is False, f"{args} showed the password"
        assert "ci:***@127.0.0.1:1" in shown, shown[-500:]
    # An address that is no URL is shown in its error: its password is not.
    for name in ("VAULT_ADDR", "AWS_ENDPOINT_URL"):
        broken = {**env, name: f"http://ci:{password}@[::1"}
        result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=broken)
        assert result.returncode == 2
        assert (password in result.stderr) is False, f"{name}: the error showed the password"
        assert "ci:***@[::1" in result.stderr, result.stderr[-500:]


@pytest.mark.parametrize("fmt", ["github", "dotenv"])
def test_an_empty_output_path_is_refused(tmp_path: Path, fmt: str) -> None:
    """With --format github, -o '' silently meant $GITHUB_ENV."""
    write_fake(tmp_path, "")
    github_env = tmp_path / "github_env"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_ENV": str(github_env)}
    result = jobsecrets(["export", "--format", fmt, "-o", ""], cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "names no file" in result.stderr
    assert not github_env.exists()
