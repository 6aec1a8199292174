"""Termination signals as an exception: what ``main`` installs before any command runs.

Kept apart from :mod:`jobsecrets.session` (which re-exports these names) because the entry point
needs it for every command, ``--version`` and ``--help`` included, and those must not pay for
importing the spec parser, YAML and the backends that ``session`` pulls in; nor must ``revoke``
(every job's post step), which needs :func:`signals_deferred` and no spec.
"""

from __future__ import annotations

__all__ = ["LATER", "TERMINATING", "Terminated", "install_signal_handlers", "signals_deferred"]

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM/SIGINT/SIGHUP/SIGQUIT so ``finally`` blocks revoke first.

    A BaseException (like KeyboardInterrupt) so no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports it."""
        return 128 + self.signum


#: Termination signals that arrived after the first (noted only; see _raise_terminated).
LATER: list[int] = []


def _note(signum: int, frame: FrameType | None) -> None:
    LATER.append(signum)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # Only the first signal raises: the ones after it are noted. A burst (a runner cancelling
    # with several signals, ^C held down) raised again inside the `finally` blocks that revoke,
    # before they could defer signals: leases and the token were left alive, and once a
    # thread pool's wait was cut twice, the process hung at exit.
    for sig in TERMINATING:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, _note)
    raise Terminated(signum)


# SIGQUIT too: its default action (core dump) would skip revocation. SIGUSR1, SIGUSR2 and SIGALRM
# end a process by default as well: sent to `run` (to reach the job, say), they killed it with
# its leases alive and its child running with the secrets. `run` forwards all of them.
TERMINATING = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
)


def install_signal_handlers() -> None:
    """Turn termination signals into :class:`Terminated` (the child runner forwards them instead).

    The first one that arrives raises; later ones are only noted in :data:`LATER`.
    """
    LATER.clear()
    for sig in TERMINATING:
        signal.signal(sig, _raise_terminated)


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Hold termination signals off while revoking; yields the list of those that arrived.

    A CI runner that cancels a job often signals more than once (SIGINT, then SIGTERM a few
    seconds later). A second :class:`Terminated` raised in the middle of revocation would leave
    leases alive, so while revoking we only note the signal; the caller re-raises afterwards.
    """
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return
    saved = {
        sig: signal.signal(sig, lambda signum, frame: arrived.append(signum)) for sig in TERMINATING
    }
    try:
        yield arrived
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)
