"""The action's main and post steps (``actions/inject/main.js``, ``post.js``) under node with a
job's environment, against a workspace and a runner that work against them: modules in the
workspace named like the ones the CLI and its installer import, a tool cache holding a half-gone
install, a state directory swapped for a link between the two steps.

The spec uses the ``fake`` backend (a JSON file): the install is the core one, no store needed.
Values are compared as booleans only.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and never a value it
compared.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.cli import clean_env

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ACTION = REPO_ROOT / "actions" / "inject"

SPEC = """\
version: 1
backends:
  store:
    type: fake
    file: store.json
secrets:
  TOKEN: store:app#token
"""

# Modules a Python started in the workspace would import from there instead of the real ones:
# the CLI itself, its dependencies (yaml, click), and the installer's (venv, pip). Each leaves a
# marker named after itself when imported.
PLANTED = ("jobsecrets", "yaml", "click", "venv", "pip")
PLANT = """\
import os, pathlib
pathlib.Path({marks!r}, {name!r}).write_text("ran")
"""


def plant(directory: Path, marks: Path) -> None:
    """Put a module or package of each PLANTED name in ``directory``."""
    for i, name in enumerate(PLANTED):
        code = PLANT.format(marks=str(marks), name=name)
        if i % 2 == 0:
            (directory / name).mkdir()
            (directory / name / "__init__.py").write_text(code)
            (directory / name / "__main__.py").write_text(code)
        else:
            (directory / f"{name}.py").write_text(code)


def workspace(path: Path, canary: str) -> Path:
    path.mkdir(parents=True)
    (path / "jobsecrets.yml").write_text(SPEC)
    (path / "store.json").write_text(json.dumps({"app": {"token": canary}}))
    return path


@dataclass
class Job:
    """One job's runner files and variables; main() and post() start the steps as the runner does."""

    root: Path
    ws: Path
    tool_cache: Path
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.temp = self.root / "runner-temp"
        self.temp.mkdir(parents=True)
        names = ("env", "output", "state", "summary", "path")
        self.files = {n: self.temp / f"_{n}.txt" for n in names}
        for file in self.files.values():
            file.write_text("")
        self.env = {
            **clean_env(),
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.ws),
            "RUNNER_TEMP": str(self.temp),
            "RUNNER_ENVIRONMENT": "github-hosted",
            "JOBSECRETS_TOOL_CACHE": str(self.tool_cache),
            "JOBSECRETS_INSTALLER": "pip",
            "ACTIONS_RUNTIME_TOKEN": "dummy-runtime-token",
            "GITHUB_ENV": str(self.files["env"]),
            "GITHUB_OUTPUT": str(self.files["output"]),
            "GITHUB_STATE": str(self.files["state"]),
            "GITHUB_STEP_SUMMARY": str(self.files["summary"]),
            "GITHUB_PATH": str(self.files["path"]),
            **self.extra,
        }

    def state(self) -> dict[str, str]:
        text = self.files["state"].read_text()
        pattern = r"^(\w+)<<(ghadelimiter_[\w-]+)\n(.*?)\n\2$"
        return {m[1]: m[3] for m in re.finditer(pattern, text, re.S | re.M)}

    def step(self, script: str, env: dict[str, str]) -> tuple[int, str]:
        result = subprocess.run(
            ["node", str(ACTION / script)],
            cwd=self.ws,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        return result.returncode, result.stdout

    def main(self) -> tuple[int, str]:
        return self.step("main.js", self.env)

    def post(self) -> tuple[int, str]:
        states = {f"STATE_{k}": v for k, v in self.state().items()}
        return self.step("post.js", {**self.env, **states})


def empty_state(ws: Path) -> str:
    """A jobsecrets state file that lists nothing (what revoke reads, then deletes)."""
    return json.dumps(
        {
            "version": 1,
            "created": time.time(),
            "spec_dir": str(ws),
            "timeout": None,
            "backends": {},
            "tokens": [],
            "leases": [],
        }
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tool cache holding this ref's core install (made once by main.js in a clean workspace)."""
    root = tmp_path_factory.mktemp("installed")
    job = Job(root / "job", workspace(root / "ws", "canary"), root / "tool-cache")
    code, log = job.main()
    assert code == 0, log[-4000:]
    return root / "tool-cache"


def test_modules_in_the_workspace_are_never_imported_by_main_post_or_the_path_shim(
    tmp_path: Path,
) -> None:
    """``python -m`` puts the working directory first on sys.path: a repository's jobsecrets/,
    yaml.py or pip/ would run with the job's tokens in its environment, and a planted
    ``jobsecrets`` could fake the post step's revoke (exit 0) so post deletes the state file
    that lists live leases. Planted in the workspace and in the working-directory; a fresh
    install (venv and pip run there too), the export, the post step's revoke and the PATH shim."""
    canary = "canary-" + secrets.token_urlsafe(18)
    ws = workspace(tmp_path / "ws", canary)
    sub = ws / "sub"
    sub.mkdir()
    shutil.copy(ws / "jobsecrets.yml", sub)
    shutil.copy(ws / "store.json", sub)
    marks = tmp_path / "marks"
    marks.mkdir()
    plant(ws, marks)
    plant(sub, marks)
    job = Job(tmp_path / "job", ws, tmp_path / "tool-cache", {"INPUT_WORKING-DIRECTORY": "sub"})

    code, log = job.main()
    assert sorted(os.listdir(marks)) == [], "a planted module ran in the main step"
    assert code == 0, log[-4000:]
    assert (canary in job.files["env"].read_text()) is True

    state = job.state()
    Path(state["state_path"]).write_text(empty_state(sub))
    code, log = job.post()
    assert sorted(os.listdir(marks)) == [], "a planted module ran in the post step"
    assert code == 0, log[-4000:]
    # The real revoke read the state file and ended the step's state directory with it.
    assert not Path(state["state_path"]).parent.exists()

    (shim_dir,) = job.files["path"].read_text().split()
    for cwd in (ws, sub):
        shim = subprocess.run(
            [str(Path(shim_dir) / "jobsecrets"), "--version"],
            cwd=cwd,
            env={**job.env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shim.returncode == 0 and "jobsecrets" in shim.stdout, shim.stdout + shim.stderr
    assert sorted(os.listdir(marks)) == [], "a planted module ran from the PATH shim"


def install_dirs(tool_cache: Path) -> list[Path]:
    return sorted(p for p in tool_cache.iterdir() if p.name.endswith("-core"))


def test_an_install_without_its_marker_is_replaced_not_fatal(
    tmp_path: Path, installed: Path
) -> None:
    """An install directory at its final name without ``.jobsecrets-complete`` (a tmp cleaner
    took the marker, a partial rm -rf): the next job reinstalls and then failed to rename over
    it (ENOTEMPTY), and so did every job after it on that runner."""
    (source,) = install_dirs(installed)
    tool_cache = tmp_path / "tool-cache"
    stale = tool_cache / source.name
    shutil.copytree(source, stale, symlinks=True)
    (stale / ".jobsecrets-complete").unlink()
    ws = workspace(tmp_path / "ws", "canary-" + secrets.token_urlsafe(18))
    for i in (1, 2):
        code, log = Job(tmp_path / f"job{i}", ws, tool_cache).main()
        assert code == 0, log[-4000:]
        expected = (
            "jobsecrets: installed into" if i == 1 else "jobsecrets: using the cached install"
        )
        assert expected in log, log[-4000:]
    assert (stale / ".jobsecrets-complete").is_file()
    # Nothing left beside it: the incomplete one is gone, not kept under another name.
    assert install_dirs(tool_cache) == [stale]
    assert [p.name for p in tool_cache.iterdir() if ".tmp-" in p.name] == []


def test_a_link_at_the_install_name_is_not_followed(tmp_path: Path, installed: Path) -> None:
    """A symlink where the install goes is not the action's to empty: the step fails, and what
    it points to is left as it was."""
    (source,) = install_dirs(installed)
    tool_cache = tmp_path / "tool-cache"
    tool_cache.mkdir()
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "keep.txt").write_text("keep me")
    (tool_cache / source.name).symlink_to(victim)
    ws = workspace(tmp_path / "ws", "canary-" + secrets.token_urlsafe(18))
    code, log = Job(tmp_path / "job", ws, tool_cache).main()
    assert code != 0, log[-4000:]
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt", "sub"]
    assert (tool_cache / source.name).is_symlink()


@pytest.mark.parametrize("kind", ["link", "file"])
def test_post_never_empties_what_replaced_the_state_directory(
    tmp_path: Path, installed: Path, kind: str
) -> None:
    """Between main and post the step's state directory (in RUNNER_TEMP) is replaced by a link
    to another directory: post listed and deleted every entry of the link's target."""
    ws = workspace(tmp_path / "ws", "canary-" + secrets.token_urlsafe(18))
    tool_cache = tmp_path / "tool-cache"
    shutil.copytree(installed, tool_cache, symlinks=True)
    job = Job(tmp_path / "job", ws, tool_cache)
    code, log = job.main()
    assert code == 0, log[-4000:]
    state_dir = Path(job.state()["state_path"]).parent
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "keep.txt").write_text("keep me")
    (victim / "state.json").write_text(empty_state(ws))
    shutil.rmtree(state_dir)
    if kind == "link":
        state_dir.symlink_to(victim)
    else:
        state_dir.write_text("not a directory")
    code, log = job.post()
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt", "state.json", "sub"]
    assert "::warning" in log and "nothing revoked or deleted through it" in log, log
    assert state_dir.is_symlink() == (kind == "link")
    assert code == 0, log[-4000:]
