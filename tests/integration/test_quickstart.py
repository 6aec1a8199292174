"""The README's local quickstart, run as written against `scripts/demo --keep`'s servers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.cli import clean_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _local_quickstart() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart: the local CLI", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the local quickstart has a sh block"
    return block.group(1)


def test_readme_local_quickstart_runs_against_the_demo(tmp_path: Path) -> None:
    env = clean_env({"HOME": str(tmp_path), "TMPDIR": str(tmp_path)})
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "demo" / "demo.py"), "--keep"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        env_sh = None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        assert demo.stdout is not None
        while env_sh is None and time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"\. (\S+/env\.sh)", line)
            env_sh = found.group(1) if found else None
        assert env_sh is not None, "".join(lines[-20:])
        script = _local_quickstart()
        script = re.sub(r"^\./scripts/demo --keep.*$", "", script, flags=re.MULTILINE)
        script = script.replace("/tmp/jobsecrets-demo-XXXX/env.sh", env_sh)
        script = script.replace(". .venv/bin/activate", f". {ROOT}/.venv/bin/activate")
        script = script.replace("/tmp/try", str(tmp_path / "try"))
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "db password: ***" in done.stdout
        assert "instead of jwt login" in done.stderr
        assert "instead of role_arn" in done.stderr
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0
    assert os.path.exists(env_sh or "/nonexistent") is False, "the demo directory is removed"
