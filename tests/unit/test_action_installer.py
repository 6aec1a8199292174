"""How the GitHub Action installs (actions/inject/lib.js): uv when the runner has it, and .pyc
files only for an install that outlives the job. Run under node against the real lib.js; the
installs themselves are tested under act (tests/integration/test_github_action.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "actions" / "inject" / "lib.js"

DRIVER = """
const lib = require(process.argv[1]);
const [fn, env, ...rest] = JSON.parse(process.argv[2]);
const result =
  fn === 'keepsBytecode'
    ? lib.keepsBytecode(rest[0], env, rest[1])
    : fn === 'onTmpfs'
      ? lib.onTmpfs(rest[0])
      : lib[fn](env, ...rest);
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
    ("env", "expected"),
    [
        # A hosted runner's uv cache starts empty and goes with the machine: beside the install.
        ({"RUNNER_ENVIRONMENT": "github-hosted"}, "/t/scratch/uv-cache"),
        # One the user (or setup-uv) named is kept, as is a self-hosted runner's own.
        ({"RUNNER_ENVIRONMENT": "github-hosted", "UV_CACHE_DIR": "/mine"}, "/mine"),
        ({"RUNNER_ENVIRONMENT": "github-hosted", "UV_NO_CACHE": "1"}, None),
        ({"RUNNER_ENVIRONMENT": "self-hosted"}, None),
        ({}, None),
    ],
)
def test_uv_cache_beside_the_install_only_on_a_hosted_runner(
    env: dict[str, str], expected: str | None
) -> None:
    got = call("uvEnv", env, "/t/scratch")
    assert isinstance(got, dict)
    assert got.get("UV_CACHE_DIR") == expected
    # Without a scratch directory (nothing being installed), nothing is added.
    plain = call("uvEnv", env)
    assert isinstance(plain, dict)
    assert plain.get("UV_CACHE_DIR") == env.get("UV_CACHE_DIR")


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
    assert call("keepsBytecode", env, saved_by_cache, False) is expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RUNNER_ENVIRONMENT": "github-hosted"}, True),  # thrown away, but free to write
        ({"RUNNER_ENVIRONMENT": "github-hosted", "JOBSECRETS_BYTECODE": "false"}, False),
    ],
)
def test_an_install_in_memory_gets_its_bytecode(env: dict[str, str], expected: bool) -> None:
    """On a tmpfs the .pyc files cost nothing to write and spare the post step's compiling."""
    assert call("keepsBytecode", env, False, True) is expected


def test_on_tmpfs_tells_memory_from_the_disk(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    assert shm.is_dir(), "this test needs /dev/shm (a tmpfs on Linux)"
    assert call("onTmpfs", {}, str(shm)) is True
    # A directory that is not on a tmpfs (the test's own temporary one is on the disk here).
    disk = next((d for d in (tmp_path, Path.home(), Path("/var/tmp")) if not _on_tmpfs(d)), None)
    assert disk is not None, "no directory on a disk to compare with"
    assert call("onTmpfs", {}, str(disk)) is False
    assert call("onTmpfs", {}, str(tmp_path / "missing")) is False


def _on_tmpfs(path: Path) -> bool:
    """Whether ``path`` is on a tmpfs, by /proc/mounts (independent of lib.js)."""
    best, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, fstype = line.split()[:3]
        inside = str(path.resolve()).startswith(mount.rstrip("/") + "/") or str(path) == mount
        if inside and len(mount) >= len(best):
            best, kind = mount, fstype
    return kind == "tmpfs"


MEMO_DRIVER = """
const lib = require(process.argv[1]);
const [cacheRoot, envs] = JSON.parse(process.argv[2]);
const out = envs.map((env) => lib.findPythonMemo(cacheRoot, env));
process.stdout.write(JSON.stringify(out));
"""


def probe_counting_python(tmp_path: Path) -> tuple[Path, Path]:
    """A JOBSECRETS_PYTHON that counts how often it is run, then is the real interpreter."""
    count = tmp_path / "probes"
    wrapper = tmp_path / "counting-python"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{count}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, count


def memo_calls(cache_root: Path, envs: list[dict[str, str]]) -> list[dict[str, str]]:
    result = subprocess.run(
        ["node", "-e", MEMO_DRIVER, str(LIB), json.dumps([str(cache_root), envs])],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found = json.loads(result.stdout)
    assert isinstance(found, list)
    return found


def probes(count: Path) -> int:
    return len(count.read_text().splitlines()) if count.exists() else 0


def test_the_python_probe_is_remembered_in_the_tool_cache(tmp_path: Path) -> None:
    wrapper, count = probe_counting_python(tmp_path)
    root = tmp_path / "tool-cache"
    env = {"JOBSECRETS_PYTHON": str(wrapper), "PATH": os.environ["PATH"]}
    first, second = memo_calls(root, [env, env])
    assert probes(count) == 1  # the second step of the runner runs no probe
    assert first == second
    assert first["executable"] == sys.executable
    assert first["short"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    memo = root / "python.json"
    assert memo.stat().st_mode & 0o777 == 0o644  # names an interpreter, holds nothing secret
    # A later step (another process) uses it too.
    memo_calls(root, [env])
    assert probes(count) == 1


def test_the_memo_is_not_used_when_what_chose_the_python_changed(tmp_path: Path) -> None:
    wrapper, count = probe_counting_python(tmp_path)
    root = tmp_path / "tool-cache"
    env = {"JOBSECRETS_PYTHON": str(wrapper), "PATH": os.environ["PATH"]}
    memo_calls(root, [env, {**env, "PATH": "/usr/bin:/bin"}, {**env, "PYENV_VERSION": "3.12"}])
    assert probes(count) == 3
    # The last probe's memo is the one kept.
    memo_calls(root, [{**env, "PYENV_VERSION": "3.12"}])
    assert probes(count) == 3


@pytest.mark.parametrize(
    "damage",
    [
        lambda memo: {**memo, "signature": "1:2:3:4"},  # the interpreter was replaced
        lambda memo: {**memo, "python": {**memo["python"], "command": "python3"}},  # not absolute
        lambda memo: {**memo, "python": {**memo["python"], "short": "2.7"}},
        lambda memo: {**memo, "python": {**memo["python"], "executable": "/nonexistent/python"}},
        lambda memo: {**memo, "python": None},
        lambda memo: [],
    ],
)
def test_a_stale_or_damaged_memo_means_a_new_probe(tmp_path: Path, damage: object) -> None:
    wrapper, count = probe_counting_python(tmp_path)
    root = tmp_path / "tool-cache"
    env = {"JOBSECRETS_PYTHON": str(wrapper), "PATH": os.environ["PATH"]}
    (good,) = memo_calls(root, [env])
    memo_file = root / "python.json"
    assert callable(damage)
    memo_file.write_text(json.dumps(damage(json.loads(memo_file.read_text()))))
    (again,) = memo_calls(root, [env])
    assert probes(count) == 2
    assert again == good
    assert json.loads(memo_file.read_text())["python"] == good  # rewritten


def test_a_memo_that_is_not_json_or_cannot_be_written_costs_only_a_probe(tmp_path: Path) -> None:
    wrapper, count = probe_counting_python(tmp_path)
    env = {"JOBSECRETS_PYTHON": str(wrapper), "PATH": os.environ["PATH"]}
    root = tmp_path / "tool-cache"
    root.mkdir()
    (root / "python.json").write_bytes(b"\xff{not json")
    (found,) = memo_calls(root, [env])
    assert found["executable"] == sys.executable
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # the tool cache's path is a file: nothing can be written under it
    assert memo_calls(blocked, [env, env])[1]["executable"] == sys.executable
    assert probes(count) == 3
    assert blocked.read_text() == ""


@pytest.mark.parametrize("kind", ["symlink", "fifo", "huge", "directory"])
def test_a_memo_that_is_not_a_small_regular_file_is_not_read(tmp_path: Path, kind: str) -> None:
    """A self-hosted runner's tool cache outlives its jobs: what a job left at python.json is
    not followed (symlink), not waited on (FIFO) and not read whole (huge); the step probes."""
    wrapper, count = probe_counting_python(tmp_path)
    env = {"JOBSECRETS_PYTHON": str(wrapper), "PATH": os.environ["PATH"]}
    root = tmp_path / "tool-cache"
    (good,) = memo_calls(tmp_path / "elsewhere", [env])  # a valid memo, to point a symlink at
    assert probes(count) == 1
    memo = root / "python.json"
    root.mkdir()
    if kind == "symlink":
        memo.symlink_to(tmp_path / "elsewhere" / "python.json")
    elif kind == "fifo":
        os.mkfifo(memo)
    elif kind == "huge":
        valid = json.loads((tmp_path / "elsewhere" / "python.json").read_text())
        memo.write_text(json.dumps({**valid, "padding": "x" * 100_000}))
    else:
        memo.mkdir()
    (found,) = memo_calls(root, [env])  # returns (a FIFO read would block: the timeout fails)
    assert found == good
    assert probes(count) == 2
    if kind != "directory":
        # Replaced by a regular memo of its own (rename does not follow the symlink).
        assert memo.is_file() and not memo.is_symlink()
        assert (tmp_path / "elsewhere" / "python.json").is_file()
        assert not list(root.glob("python.json.tmp-*"))


KEY_DRIVER = """
const lib = require(process.argv[1]);
const [root, python] = JSON.parse(process.argv[2]);
process.stdout.write(JSON.stringify(lib.installKey(root, python)));
"""


def test_the_install_key_covers_the_package_the_locks_the_installer_and_the_python(
    tmp_path: Path,
) -> None:
    """What an install is made of and how: any of it changed is another key (never a stale
    install reused); the action's other files (post.js) are not part of it."""
    repo = tmp_path / "repo"
    files = {
        "pyproject.toml": "[project]\nname = 'jobsecrets'\n",
        "src/jobsecrets/cli.py": "print('cli')\n",
        "actions/inject/locks/core.lock": "click==8.1.7 --hash=sha256:00\n",
        "actions/inject/lib.js": "// installer\n",
        "actions/inject/post.js": "// post step\n",
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    python = {"full": "3.11.7", "executable": "/usr/bin/python3.11"}

    def key(py: dict[str, str] = python) -> str:
        out = subprocess.run(
            ["node", "-e", KEY_DRIVER, str(LIB), json.dumps([str(repo), py])],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        found = json.loads(out)
        assert isinstance(found, str) and len(found) == 20
        return found

    first = key()
    assert key() == first  # the same files, the same key
    seen = {first}
    for rel in ("src/jobsecrets/cli.py", "actions/inject/locks/core.lock", "actions/inject/lib.js"):
        (repo / rel).write_text((repo / rel).read_text() + "# changed\n")
        changed = key()
        assert changed not in seen, f"{rel} is not part of the key"
        seen.add(changed)
    assert key({**python, "full": "3.11.8"}) not in seen
    before = key()
    (repo / "actions/inject/post.js").write_text("// another post step\n")
    assert key() == before
