"""Signals sent to ``jobsecrets run``: passed to the job, and the leases revoked in the end.

Found by a helper session: a child that had stopped itself (SIGSTOP) never acted on the SIGTERM
passed to it, so ``run`` waited for ever with its leases alive; and SIGUSR1, SIGUSR2 and SIGALRM
killed ``run`` at once (their default action), revoking nothing and leaving the child running
with the secrets.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_policy import JOURNAL, obtained_and_revoked, write_fake

from support.cli import clean_env

# The job: says "child got N" and ends on SIGUSR1; with --stop, stops itself once ready.
CHILD = "; ".join(
    [
        "import os, signal, sys, time",
        "signal.signal(signal.SIGUSR1, lambda n, f: (print('child got', n, flush=True), sys.exit(0)))",
        "print('ready', flush=True)",
        "'--stop' in sys.argv and os.kill(os.getpid(), signal.SIGSTOP)",
        "time.sleep(30)",
    ]
)


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    write_fake(tmp_path, "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobsecrets", "run", "--", sys.executable, "-c", CHILD, *args],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Its own process group: a failing test kills run and its (maybe stopped) child.
        start_new_session=True,
    )
    _STARTED[-1].append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    started: list[subprocess.Popen[bytes]] = []
    _STARTED.append(started)
    yield
    _STARTED.pop()
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


_STARTED: list[list[subprocess.Popen[bytes]]] = []


def _all_revoked(tmp_path: Path) -> bool:
    leases, revoked = obtained_and_revoked(tmp_path / JOURNAL)
    return bool(leases) and leases <= revoked


def test_a_stopped_child_still_ends_on_sigterm_and_everything_is_revoked(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--stop")
    # The child stops itself right after "ready"; give it a moment to be stopped.
    subprocess.run(["sleep", "0.5"], check=True)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert _all_revoked(tmp_path)


def test_sigusr1_reaches_the_job_and_run_goes_on(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=30)
    assert out == b"child got %d\n" % signal.SIGUSR1
    assert proc.returncode == 0
    assert _all_revoked(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGUSR2, signal.SIGALRM])
def test_a_signal_that_ends_the_job_still_revokes(tmp_path: Path, signum: int) -> None:
    proc = _start(tmp_path)
    proc.send_signal(signum)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum
    assert _all_revoked(tmp_path)
