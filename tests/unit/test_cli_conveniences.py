"""What users expect of a command line (issue 17): spec discovery, -c anywhere, a default export
format, ``init``, ``--only`` completion, whole command summaries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobsecrets.testing.specs import SpecBuilder
from support.cli import jobsecrets

DOCS = {"app": {"a": "value-of-a-1234", "b": "value-of-b-5678"}}


def _spec(directory: Path, name: str = "jobsecrets.yml") -> Path:
    return (
        SpecBuilder()
        .fake(directory, DOCS)
        .merge("secrets:\n  ALPHA: fake:app#a\n  BETA: fake:app#b\n")
        .write(directory, name)
    )


def test_spec_found_as_yaml_from_a_subdirectory_of_the_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _spec(tmp_path, "jobsecrets.yaml")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    result = jobsecrets(["plan"], cwd=deep)
    assert result.returncode == 0, result.stderr
    assert f"spec: {tmp_path / 'jobsecrets.yaml'}" in result.stdout


def test_no_walking_up_outside_a_repository(tmp_path: Path) -> None:
    _spec(tmp_path)
    sub = tmp_path / "sub"
    sub.mkdir()
    result = jobsecrets(["plan"], cwd=sub)
    assert result.returncode == 2
    assert "jobsecrets.yml" in result.stderr


def test_config_before_or_after_the_command(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "ci.yml")
    for args in (
        ["-c", str(spec), "plan"],
        ["plan", "-c", str(spec)],
        ["-v", "-c", str(spec), "plan", "-v"],
    ):
        result = jobsecrets(args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        assert "ALPHA" in result.stdout
    # An explicit -c before the command wins over $JOBSECRETS_CONFIG.
    result = jobsecrets(
        ["-c", str(spec), "plan"], cwd=tmp_path, env={"JOBSECRETS_CONFIG": "nope.yml"}
    )
    assert result.returncode == 0, result.stderr


def test_default_export_format(tmp_path: Path) -> None:
    _spec(tmp_path)
    to_stdout = jobsecrets(
        ["export", "--only", "ALPHA", "--state", str(tmp_path / "s1")], cwd=tmp_path
    )
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.startswith("export ALPHA="), "shell format on stdout"
    out = tmp_path / "values.env"
    to_file = jobsecrets(
        ["export", "--only", "ALPHA", "-o", str(out), "--state", str(tmp_path / "s2")], cwd=tmp_path
    )
    assert to_file.returncode == 0, to_file.stderr
    assert out.read_text().startswith("ALPHA="), "dotenv format in a file"
    assert (os.stat(out).st_mode & 0o777) == 0o600


@pytest.mark.parametrize("target", ["github", "gitlab", "local"])
def test_init_scaffolds_a_spec_plan_accepts(tmp_path: Path, target: str) -> None:
    made = jobsecrets(["init", "--for", target], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "jobsecrets.yml").read_text()
    if target == "local":
        assert "role_arn:" not in text and "method: jwt" not in text
    else:
        assert "vault write auth/jwt/role/ci-deploy" in text
        assert "sts:AssumeRoleWithWebIdentity" in text
    plan = jobsecrets(["plan"], cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    again = jobsecrets(["init", "--for", target], cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_init_detects_the_ci_system(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("job: {script: [true]}\n")
    made = jobsecrets(["init", "-o", "-"], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "jobsecrets spec (gitlab)" in made.stdout


def test_init_force_replaces_only_a_regular_file(tmp_path: Path) -> None:
    """A FIFO at -o blocked `init --force` for good; a link would have had its target written."""
    os.mkfifo(tmp_path / "spec.fifo")
    (tmp_path / "target.txt").write_text("keep")
    (tmp_path / "link.yml").symlink_to(tmp_path / "target.txt")
    for odd in ("spec.fifo", "link.yml"):
        refused = jobsecrets(["init", "-o", odd, "--force"], cwd=tmp_path, timeout=30)
        assert refused.returncode == 2 and "not a regular file" in refused.stderr
    assert (tmp_path / "target.txt").read_text() == "keep"
    (tmp_path / "old.yml").write_text("old\n")
    replaced = jobsecrets(["init", "-o", "old.yml", "--force"], cwd=tmp_path)
    assert replaced.returncode == 0 and "version: 1" in (tmp_path / "old.yml").read_text()


def test_only_completes_the_spec_names(tmp_path: Path) -> None:
    _spec(tmp_path)
    env = {
        "_JOBSECRETS_COMPLETE": "bash_complete",
        "COMP_WORDS": "jobsecrets run --only AL",
        "COMP_CWORD": "3",
    }
    result = jobsecrets([], cwd=tmp_path, env=env)
    assert "ALPHA" in result.stdout and "BETA" not in result.stdout, result.stdout
    env["COMP_WORDS"] = "jobsecrets plan --only ALPHA,B"
    result = jobsecrets([], cwd=tmp_path, env=env)
    assert "ALPHA,BETA" in result.stdout, result.stdout


def test_help_lists_whole_summaries(tmp_path: Path) -> None:
    result = jobsecrets(["--help"], cwd=tmp_path, env={"COLUMNS": "80"})
    assert result.returncode == 0
    commands = result.stdout.split("Commands:")[1]
    assert "..." not in commands
