"""What every command shares: loading the spec, building the backend context, and ending cleanly.

A :class:`Session` owns the ledger of one command: whatever happens (an error halfway through resolution,
SIGTERM, a failing child), :meth:`Session.finish` revokes everything that was obtained.
"""

from __future__ import annotations

__all__ = ["Session", "Terminated", "install_signal_handlers"]

import logging
import os
import signal
import sys
from collections.abc import Mapping
from types import FrameType

from .backends.base import BackendContext
from .errors import JobSecretsError
from .identity import IdentityConfig, IdentityProvider
from .leases import Ledger, RevokeReport
from .spec import Spec, load_spec

log = logging.getLogger("jobsecrets")


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM/SIGINT/SIGHUP so ``finally`` blocks revoke before exit.

    A BaseException (like KeyboardInterrupt) so no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports it."""
        return 128 + self.signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """Turn termination signals into :class:`Terminated` (the child runner forwards them instead)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _raise_terminated)


def identity_for(spec: Spec, env: Mapping[str, str]) -> IdentityProvider:
    """The CI job's identity provider, from the spec's ``identity:`` (nothing is fetched yet)."""
    config, _problems = IdentityConfig.from_mapping(dict(spec.identity))
    return IdentityProvider(config, env)


class Session:
    """One command's spec, environment, backend context and ledger."""

    def __init__(
        self, config: str, only: list[str] | None, env: Mapping[str, str] | None = None
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.spec_full = load_spec(config)
        self.spec = self.spec_full.select(only)
        self.ledger = Ledger()
        self.context = BackendContext(
            env=self.env,
            identity=None,
            timeout=float(self.spec.settings.timeout),
            spec_dir=os.path.dirname(os.path.abspath(config)),
        )
        self.identity = identity_for(self.spec, self.env)
        self.context.identity = self.identity.token

    def finish(self, quiet: bool = False) -> RevokeReport:
        """Revoke everything the ledger holds and close connections. Never raises."""
        report = RevokeReport()
        try:
            if not self.ledger.is_empty():
                report = self.ledger.revoke_all()
                if not quiet or not report.ok:
                    log.info("%s", report.summary())
                if not report.ok:
                    print(f"jobsecrets: warning: {report.summary()}", file=sys.stderr)
        except JobSecretsError as error:  # pragma: no cover - revoke_all reports, never raises
            report.failures.append(error.message)
        finally:
            self.ledger.close()
        return report
