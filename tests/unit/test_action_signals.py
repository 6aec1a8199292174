"""The GitHub Action's Node wrapper and signals: a cancelled step signals the node process only;
the jobsecrets CLI it spawned must get the signal too (and node must wait for it), or the CLI
runs on unseen after the step ended, and what it obtains is never revoked."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "actions" / "inject" / "lib.js"

FAKE_CLI = """#!/bin/sh
trap 'echo "$1" > "$MARK"; exit 143' TERM
trap 'echo "$1" > "$MARK"; exit 130' INT
echo $$ > "$READY"
while :; do sleep 0.05; done
"""

DRIVER = """
const lib = require(process.argv[1]);
lib.runCli(process.argv[2], []).then((r) => { process.exitCode = r.code; });
"""


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_node_step_reaches_the_cli_and_node_waits_for_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    cli = tmp_path / "python"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    ready, mark = tmp_path / "ready", tmp_path / "mark"
    env = {**os.environ, "READY": str(ready), "MARK": str(mark)}
    node = subprocess.Popen(
        ["node", "-e", DRIVER, str(LIB), str(cli)], env=env, stdout=subprocess.DEVNULL
    )
    child_pid = 0
    try:
        assert _wait(lambda: ready.exists() and ready.read_text().strip() != "")
        child_pid = int(ready.read_text())
        node.send_signal(sig)  # the node process only, as the runner does
        node.wait(timeout=10)
        assert mark.exists(), "the CLI never got the signal: it runs on after the step"
    finally:
        node.kill()
        if child_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child_pid, signal.SIGKILL)
