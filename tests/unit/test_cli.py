"""The command line as the README describes it: common options, plan --check outcomes, odd input."""

from __future__ import annotations

import json
from pathlib import Path

from jobsecrets.testing.specs import SpecBuilder
from support.cli import jobsecrets


def write_spec(tmp_path: Path, secrets: str, documents: dict[str, object]) -> Path:
    """A spec with one fake backend whose store holds ``documents``."""
    return SpecBuilder().fake(tmp_path, documents).merge("secrets:\n" + secrets).write(tmp_path)


def test_plan_check_leaves_out_a_missing_optional_secret(tmp_path: Path) -> None:
    """README: an optional variable is left out when its path does not exist; not 'denied'."""
    write_spec(
        tmp_path,
        "  A: fake:app#a\n  FLAG:\n    ref: fake:maybe/missing#flag\n    optional: true\n",
        {"app": {"a": "value-of-a-1234"}},
    )
    result = jobsecrets(["plan", "--check", "--format", "json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    flag = json.loads(result.stdout)["check"]["variables"]["FLAG"]
    assert flag["missing"] is True
    assert flag["allowed"] is False
    text = jobsecrets(["plan", "--check"], cwd=tmp_path)
    assert text.returncode == 0
    assert "DENIED" not in text.stdout


def test_plan_check_missing_required_secret_exits_4_not_5(tmp_path: Path) -> None:
    """Exit codes table: 4 is 'does not exist', 5 is 'access denied'."""
    write_spec(tmp_path, "  A: fake:app#a\n  B: fake:gone#b\n", {"app": {"a": "value-of-a-1234"}})
    result = jobsecrets(["plan", "--check"], cwd=tmp_path)
    assert result.returncode == 4, result.stderr
    assert "MISSING" in result.stdout
    assert "DENIED" not in result.stdout


def test_plan_check_denied_path_still_exits_5(tmp_path: Path) -> None:
    SpecBuilder().fake(tmp_path, {"app": {"a": "value-of-a-1234"}}, deny=["app"]).secret(
        "A", "fake:app#a"
    ).write(tmp_path)
    result = jobsecrets(["plan", "--check"], cwd=tmp_path)
    assert result.returncode == 5, result.stderr


def test_verbose_is_accepted_after_the_command(tmp_path: Path) -> None:
    """README lists -v/-vv among the common options: `jobsecrets run -v -- CMD` must work."""
    write_spec(tmp_path, "  A: fake:app#a\n", {"app": {"a": "value-of-a-1234"}})
    plan = jobsecrets(["plan", "-v"], cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    run = jobsecrets(["run", "-vv", "--", "true"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "INFO: resolved 1 variable(s)" in run.stderr
    assert "value-of-a-1234" not in run.stderr
    export = jobsecrets(["export", "-v", "--format", "json"], cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    revoke = jobsecrets(["revoke", "-v", "--state", str(tmp_path / "none.json")], cwd=tmp_path)
    assert revoke.returncode == 0, revoke.stderr


def test_empty_only_is_refused_not_everything(tmp_path: Path) -> None:
    """`--only "$EMPTY"` asks for nothing: handing over every secret instead is the wrong default."""
    write_spec(tmp_path, "  A: fake:app#a\n  B: fake:app#b\n", {"app": {"a": "aaaa", "b": "bbbb"}})
    for value in ("", " , "):
        result = jobsecrets(["export", "--format", "json", "--only", value], cwd=tmp_path)
        assert result.returncode == 2
        assert "aaaa" not in result.stdout
        assert "--only" in result.stderr


def test_empty_config_path_is_named(tmp_path: Path) -> None:
    result = jobsecrets(["plan", "-c", ""], cwd=tmp_path)
    assert result.returncode == 2
    assert "-c/--config is empty" in result.stderr


def test_plan_json_says_how_each_variable_is_named_and_encoded(tmp_path: Path) -> None:
    """A prefix selection's variable names and a base64 value are visible to a JSON consumer."""
    write_spec(
        tmp_path,
        '  A: fake:app#a\n  P: {ref: "fake:pay/*", name_prefix: PAY_}\n'
        '  B: {ref: "fake:bin", encoding: base64}\n',
        {},
    )
    result = jobsecrets(["plan", "--format", "json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    variables = {v["name"]: v for v in json.loads(result.stdout)["variables"]}
    assert len({frozenset(v) for v in variables.values()}) == 1  # the same keys for every variable
    assert variables["P"]["name_prefix"] == "PAY_"
    assert variables["B"]["encoding"] == "base64"
    assert variables["A"]["encoding"] == "utf-8" and variables["A"]["name_prefix"] == ""
