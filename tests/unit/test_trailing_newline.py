"""A valid name plus one trailing line break is no valid name.

The validators were ``re.match`` of ``^...$`` patterns, and ``$`` also matches before a final
``\\n``: ``check_name('DB_PASS\\n')`` passed, so a spec key ``"DB_PASS\\n"`` went to
``$GITHUB_ENV`` as a line ``DB_PASS`` followed by ``<<DELIM`` on a line of its own, and to
``export --format shell`` as ``export DB_PASS`` then ``='<the value>'``, which a shell runs as a
command and whose "command not found" error prints the value. AWS region, role ARN, session
name and secret id, GitHub owner, repository and permission names, and backend names in
references passed the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobsecrets.backends.aws.support import validate_backend_options, validate_secret_options
from jobsecrets.backends.github.backend import GithubBackend
from jobsecrets.names import check_name, is_identifier
from jobsecrets.refs import parse_reference
from support.cli import jobsecrets

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)


@given(NAMES)
def test_a_name_with_a_line_break_after_it_is_not_an_identifier(name: str) -> None:
    assert is_identifier(name) is True
    assert is_identifier(name + "\n") is False
    assert check_name(name + "\n") is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("region", "eu-west-1"),
        ("role_arn", "arn:aws:iam::123456789012:role/ci"),
        ("session_name", "ci-session"),
    ],
)
def test_aws_options_with_a_trailing_line_break_are_refused(key: str, value: str) -> None:
    # session_name is only meaningful with a role.
    options = {"role_arn": "arn:aws:iam::123456789012:role/ci", key: value}
    assert validate_backend_options(options) == []
    broken = {**options, key: value + "\n"}
    assert any(problem.startswith(key) for problem in validate_backend_options(broken))


def test_an_aws_secret_id_with_a_trailing_line_break_is_refused() -> None:
    assert validate_secret_options("prod/db", {}) == []
    assert validate_secret_options("prod/db\n", {}) != []


@pytest.mark.parametrize("path", ["acme/shop", "acme"])
def test_github_owner_and_repository_with_a_trailing_line_break_are_refused(path: str) -> None:
    options: dict[str, object] = {"permissions": {"contents": "read"}}
    if "/" not in path:
        options["repositories"] = ["shop"]  # an owner alone must name its repositories
    assert GithubBackend.validate_secret(path, options) == []
    assert GithubBackend.validate_secret(path + "\n", options) != []
    bad_permission = {**options, "permissions": {"contents\n": "read"}}
    assert GithubBackend.validate_secret(path, bad_permission) != []


def test_a_backend_name_with_a_trailing_line_break_is_refused_in_a_reference() -> None:
    assert parse_reference("vault:secret/app#pw").backend == "vault"
    with pytest.raises(ValueError, match="not a valid backend name"):
        parse_reference("vault\n:secret/app#pw")


def test_export_refuses_a_spec_name_with_a_trailing_line_break(tmp_path: Path) -> None:
    (tmp_path / "store.json").write_text(json.dumps({"app": {"a": "s3cr3t-value-trailing"}}))
    (tmp_path / "store.json").chmod(0o600)
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  store: {type: fake, file: store.json}\n"
        'secrets:\n  "A\\n": store:app#a\n'
    )
    github_env = tmp_path / "github_env"
    for fmt, env in (("shell", {}), ("github", {"GITHUB_ENV": str(github_env)})):
        result = jobsecrets(["export", "--format", fmt], cwd=tmp_path, env=env)
        assert result.returncode == 2
        assert result.stdout == ""
        assert "is not a valid environment variable name" in result.stderr
    assert not github_env.exists()
