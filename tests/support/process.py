"""Stopping a server process the tests started, by its own pid."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from typing import Any, ClassVar

from typing_extensions import Self


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


class ServerProcess:
    """A server in ``self._proc`` with its files in ``self._tmp``: a context manager that stops it.

    Subclasses implement ``start()`` and set ``STOP_SIGNAL`` to the server's clean shutdown.
    """

    STOP_SIGNAL: ClassVar[int] = signal.SIGTERM
    _proc: Any
    _tmp: tempfile.TemporaryDirectory[str] | None

    def start(self) -> Self:
        raise NotImplementedError

    def _stop_process(self) -> None:
        stop(self._proc, self.STOP_SIGNAL)
        self._proc = None

    def close(self) -> None:
        """Stop the server by its own pid and delete its directory."""
        self._stop_process()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
