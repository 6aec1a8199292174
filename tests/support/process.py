"""Stopping a server process the tests started, by its own pid."""

from __future__ import annotations

import signal
import subprocess


def stop(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None, sig: int = signal.SIGTERM
) -> None:
    """Send ``sig`` (the server's clean-shutdown signal), wait, and kill it if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
