"""actions/inject/locks/*.lock must be the locks of pyproject.toml's current dependencies.

The action falls back to resolving (slower, no hashes) when they are not; this catches a stale lock
before a release does. ``scripts/lock-action-deps`` regenerates them. Which of them the action
installs for a spec is tested in test_action_lock_selection.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "actions" / "inject" / "locks"


def test_locks_match_pyproject_dependencies() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock-action-deps"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_one_lock_per_group() -> None:
    """core, one per backend type with dependencies of its own (lib.js maps types to names), the
    `import` command's (never installed by the action), and the page of every locked wheel's
    PyPI address."""
    assert sorted(p.name for p in LOCKS.iterdir()) == [
        "aws.lock",
        "core.lock",
        "github.lock",
        "import.lock",
        "pypi-links.html",
        "vault.lock",
    ]


def test_every_lock_entry_is_hash_pinned() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    markers = {
        re.sub(r"[-_.]+", "-", name).lower(): marker.strip()
        for name, marker in re.findall(r'^\s*"([A-Za-z0-9._-]+)[^";]*;([^"]+)",', pyproject, re.M)
    }
    assert markers.get("daachorse"), "pyproject.toml's daachorse line has lost its marker"
    for lock in sorted(LOCKS.glob("*.lock")):
        text = lock.read_text()
        entries = [line for line in text.splitlines() if line and line[0] not in "# "]
        assert entries, lock.name
        for entry in entries:
            # By name and exact version only: the lock names no index or download host, so the
            # action works with whatever index the runner's pip is configured for. A dependency
            # only some platforms get carries pyproject.toml's marker (pip skips it elsewhere).
            found = re.fullmatch(r"([a-z0-9-]+)==[^ ]+(?: ; ([^\\]+))? \\", entry)
            assert found, entry
            assert "://" not in entry
            # Both ways: a marker only where pyproject has one, and never lost where it has one
            # (a daachorse line without it fails the locked install on Linux ARM, no wheel).
            assert found.group(2) == markers.get(found.group(1)), entry
        # Every requirement line is followed by at least one --hash (pip's --require-hashes).
        assert text.count("--hash=sha256:") >= len(entries), lock.name


def test_check_notices_a_changed_dependency(tmp_path: Path) -> None:
    """--check fails once pyproject.toml's dependencies differ from what the locks were made of."""
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    (copy / "actions" / "inject").mkdir(parents=True)
    script = (ROOT / "scripts" / "lock-action-deps").read_text()
    (copy / "scripts" / "lock-action-deps").write_text(script)
    subprocess.run(["cp", "-R", str(LOCKS), str(copy / "actions" / "inject")], check=True)
    pyproject = (ROOT / "pyproject.toml").read_text()
    changed = pyproject.replace('"hvac>=2.1",', '"hvac>=2.2",', 1)
    assert changed != pyproject
    for text, code in ((pyproject, 0), (changed, 1)):
        (copy / "pyproject.toml").write_text(text)
        result = subprocess.run(
            [sys.executable, str(copy / "scripts" / "lock-action-deps"), "--check"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == code, result.stderr
