"""What .github/workflows/release.yml does to a tag, on this machine: build the sdist and the wheel,
``twine check`` them, and ``scripts/check-dist`` (the wheel installs in a clean virtualenv, ships the
JSON schemas, and is the version asked for)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )


def test_build_check_and_install(tmp_path: Path) -> None:
    # Build from a copy, so the checkout gets no build/ or egg-info of the test's.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".tools",
            ".git",
            "node_modules",
            "*.egg-info",
            "build",
            "dist",
            "__pycache__",
            ".*_cache",
        ),
    )
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "build", "-o", str(dist), str(source)])
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    env = {**os.environ, "JOBSECRETS_CHECK_NO_DEPS": "1"}
    version = _run([sys.executable, "-c", "import jobsecrets; print(jobsecrets.__version__)"])
    ok = _run([str(ROOT / "scripts" / "check-dist"), str(dist), version.stdout.strip()], env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ships its JSON schemas" in ok.stdout
    wrong = _run([str(ROOT / "scripts" / "check-dist"), str(dist), "9.9.9"], env=env)
    assert wrong.returncode != 0 and "is not version 9.9.9" in wrong.stderr
