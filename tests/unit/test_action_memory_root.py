"""Where the GitHub Action puts its install (actions/inject/lib.js, ``toolCacheRoot``): memory on a
GitHub-hosted runner, the user's directory or the runner's tool cache otherwise.

``/dev/shm`` is shared by every user of a machine, so the directory there must be this user's
alone, and one that is not is left exactly as it is found. Run under node against the real lib.js
on this machine's own tmpfs; the install itself landing there is tested under act
(tests/integration/test_github_action_cache.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "actions" / "inject" / "lib.js"
SHM = Path("/dev/shm")

DRIVER = """
const lib = require(process.argv[1]);
const [fn, arg, memory] = JSON.parse(process.argv[2]);
const result = fn === 'memoryRoot' ? lib.memoryRoot(arg) : lib.toolCacheRoot(arg, () => memory);
process.stdout.write(JSON.stringify(result ?? null));
"""


def call(fn: str, arg: object, memory: str | None = None) -> str | None:
    result = subprocess.run(
        ["node", "-e", DRIVER, str(LIB), json.dumps([fn, arg, memory])],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found = json.loads(result.stdout)
    assert found is None or isinstance(found, str)
    return found


@pytest.fixture
def shm_base() -> Iterator[Path]:
    """A fresh directory on this machine's tmpfs, standing for /dev/shm."""
    assert SHM.is_dir(), "this machine has no /dev/shm (the tests need a tmpfs)"
    base = Path(tempfile.mkdtemp(prefix="jobsecrets-test-", dir=SHM))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def own_dir(base: Path) -> Path:
    return base / f"jobsecrets-{os.getuid()}"


def test_a_tmpfs_gives_a_directory_of_this_user_alone(shm_base: Path) -> None:
    found = call("memoryRoot", str(shm_base))
    assert found == str(own_dir(shm_base))
    info = os.lstat(found)
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    assert stat.S_IMODE(info.st_mode) & 0o077 == 0
    # The next step of the job finds the same one (and its install).
    (own_dir(shm_base) / "marker").write_text("")
    assert call("memoryRoot", str(shm_base)) == found
    assert (own_dir(shm_base) / "marker").exists()


def test_not_a_tmpfs_or_not_there_means_the_disk(tmp_path: Path) -> None:
    kind = subprocess.run(
        ["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert kind != "tmpfs", "this test needs a temporary directory on a disk, not on a tmpfs"
    assert call("memoryRoot", str(tmp_path)) is None
    assert not own_dir(tmp_path).exists()  # nothing made on the disk
    assert call("memoryRoot", str(tmp_path / "missing")) is None
    (tmp_path / "file").write_text("")
    assert call("memoryRoot", str(tmp_path / "file")) is None


def test_a_directory_others_can_write_is_left_as_it_is(shm_base: Path) -> None:
    planted = own_dir(shm_base)
    planted.mkdir()
    planted.chmod(0o777)
    assert call("memoryRoot", str(shm_base)) is None
    assert stat.S_IMODE(planted.stat().st_mode) == 0o777  # never our mode to change


def test_a_link_is_not_followed(shm_base: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    own_dir(shm_base).symlink_to(target)
    assert call("memoryRoot", str(shm_base)) is None
    assert list(target.iterdir()) == []


def test_a_directory_of_another_user_is_not_used(shm_base: Path) -> None:
    planted = own_dir(shm_base)
    planted.mkdir(mode=0o700)
    # Root may give it away, as another user would have made it (these tests run as root).
    os.chown(planted, os.getuid() + 4242, -1)
    assert call("memoryRoot", str(shm_base)) is None
    assert planted.stat().st_uid == os.getuid() + 4242


@pytest.mark.parametrize(
    ("env", "memory", "expected"),
    [
        # The user's choice always wins.
        (
            {"JOBSECRETS_TOOL_CACHE": "/mine", "RUNNER_ENVIRONMENT": "github-hosted"},
            "/dev/shm/x",
            "/mine",
        ),
        # A GitHub-hosted runner: memory, if there is enough of it.
        (
            {"RUNNER_ENVIRONMENT": "github-hosted", "RUNNER_TOOL_CACHE": "/t"},
            "/dev/shm/x",
            "/dev/shm/x",
        ),
        ({"RUNNER_ENVIRONMENT": "github-hosted", "RUNNER_TOOL_CACHE": "/t"}, None, "/t/jobsecrets"),
        # A self-hosted runner keeps its tool cache between jobs: the disk.
        (
            {"RUNNER_ENVIRONMENT": "self-hosted", "RUNNER_TOOL_CACHE": "/t"},
            "/dev/shm/x",
            "/t/jobsecrets",
        ),
        ({"RUNNER_TOOL_CACHE": "/t"}, "/dev/shm/x", "/t/jobsecrets"),
    ],
)
def test_where_the_install_goes(env: dict[str, str], memory: str | None, expected: str) -> None:
    assert call("toolCacheRoot", env, memory) == expected
