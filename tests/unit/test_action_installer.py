"""How the GitHub Action installs (actions/inject/lib.js): uv when the runner has it, and .pyc
files only for an install that outlives the job. Run under node against the real lib.js; the
installs themselves are tested under act (tests/integration/test_github_action.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "actions" / "inject" / "lib.js"

DRIVER = """
const lib = require(process.argv[1]);
const [fn, env, ...rest] = JSON.parse(process.argv[2]);
const result = fn === 'keepsBytecode' ? lib.keepsBytecode(rest[0], env) : lib[fn](env);
process.stdout.write(JSON.stringify(result ?? null));
"""


def call(fn: str, env: dict[str, str], *rest: object) -> object:
    result = subprocess.run(
        ["node", "-e", DRIVER, str(LIB), json.dumps([fn, env, *rest])],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_uv_is_found_on_path_only_as_an_executable_file(tmp_path: Path) -> None:
    empty, dirs, plain, tool = (tmp_path / n for n in ("empty", "dirs", "plain", "tool"))
    for d in (empty, dirs, plain, tool):
        d.mkdir()
    (dirs / "uv").mkdir()  # a directory named uv
    (plain / "uv").write_text("")  # not executable
    (tool / "uv").write_text("#!/bin/sh\n")
    (tool / "uv").chmod(0o755)
    path = os.pathsep.join(str(d) for d in (empty, dirs, plain, tool))
    assert call("findUv", {"PATH": path}) == str(tool / "uv")
    assert call("findUv", {"PATH": os.pathsep.join(str(d) for d in (empty, plain))}) is None
    # Never from a relative PATH entry (it would be the workspace, a pull request's files).
    assert call("findUv", {"PATH": "tool"}) is None
    assert call("findUv", {"PATH": path, "JOBSECRETS_INSTALLER": "pip"}) is None


def test_uv_gets_the_index_pip_is_given_through_the_environment() -> None:
    env = {"PIP_INDEX_URL": "https://mirror/simple", "PIP_EXTRA_INDEX_URL": "https://extra/simple"}
    got = call("uvEnv", env)
    assert isinstance(got, dict)
    assert got["UV_INDEX_URL"] == "https://mirror/simple"
    assert got["UV_EXTRA_INDEX_URL"] == "https://extra/simple"
    # uv's own setting wins.
    got = call("uvEnv", {**env, "UV_DEFAULT_INDEX": "https://uv/simple"})
    assert isinstance(got, dict)
    assert "UV_INDEX_URL" not in got


@pytest.mark.parametrize(
    ("env", "saved_by_cache", "expected"),
    [
        ({}, False, True),  # self-hosted: the tool cache stays
        ({"RUNNER_ENVIRONMENT": "self-hosted"}, False, True),
        ({"RUNNER_ENVIRONMENT": "github-hosted"}, False, False),  # a fresh machine per job
        ({"RUNNER_ENVIRONMENT": "github-hosted"}, True, True),  # the Actions cache saves it
        ({"RUNNER_ENVIRONMENT": "github-hosted", "JOBSECRETS_TOOL_CACHE": "/t"}, False, True),
        ({"JOBSECRETS_BYTECODE": "false"}, False, False),  # an ephemeral self-hosted runner
        ({"RUNNER_ENVIRONMENT": "github-hosted", "JOBSECRETS_BYTECODE": "true"}, False, True),
    ],
)
def test_bytecode_only_for_an_install_that_outlives_the_job(
    env: dict[str, str], saved_by_cache: bool, expected: bool
) -> None:
    assert call("keepsBytecode", env, saved_by_cache) is expected
