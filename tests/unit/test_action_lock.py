"""actions/inject/requirements.lock must be the lock of pyproject.toml's current dependencies.

The action falls back to resolving (slower, no hashes) when it is not; this catches the stale lock
before a release does. ``scripts/lock-action-deps`` regenerates it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_lock_matches_pyproject_dependencies() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock-action-deps"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_lock_entry_is_hash_pinned() -> None:
    text = (ROOT / "actions" / "inject" / "requirements.lock").read_text()
    entries = [line for line in text.splitlines() if line and line[0] not in "# "]
    assert entries
    for entry in entries:
        # By name and exact version only: the lock names no index or download host, so the
        # action works with whatever index the runner's pip is configured for.
        assert re.fullmatch(r"[a-z0-9-]+==[^ ]+ \\", entry), entry
        assert "://" not in entry
    # Every requirement line is followed by at least one --hash (pip's --require-hashes).
    assert text.count("--hash=sha256:") >= len(entries)
