"""What every command shares: loading the spec, building the backend context, and ending cleanly.

A :class:`Session` owns the ledger of one command: whatever happens (an error halfway through resolution,
SIGTERM, a failing child), :meth:`Session.finish` revokes everything that was obtained.
"""

from __future__ import annotations

__all__ = ["Session", "Terminated", "install_signal_handlers", "signals_deferred"]

import functools
import logging
import os
import sys
import threading
from collections.abc import Mapping

from . import unshown
from ._exit import process_start
from ._signals import Terminated, install_signal_handlers, signals_deferred
from .backends.base import Backend, BackendContext, TokenRecord
from .errors import JobSecretsError
from .identity import IdentityProvider
from .lifecycle.ledger import Ledger, RevokeReport
from .option_lookup import read_option_reference
from .resolver import BackendFactory, default_backend_factory, wanted_backends
from .spec.parser import load_spec

log = logging.getLogger("jobsecrets")


class Session:
    """One command's spec, environment, backend context and ledger."""

    def __init__(
        self,
        config: str,
        only: list[str] | None,
        env: Mapping[str, str] | None = None,
        *,
        backend_factory: BackendFactory = default_backend_factory,
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
            concurrency=self.spec.settings.concurrency,
            # The overall deadline counts from the command's start, not from resolution's.
            deadline=process_start() + self.spec.settings.deadline,
        )
        self.identity = IdentityProvider(self.spec.identity, self.env)
        # Outside CI with no identity token configured, backends may fall back to the user's own
        # credentials (a CI spec runs on a laptop unchanged); never inside CI.
        self.context.local = self.identity.platform == "local" and self.identity.kind == "none"
        #: How every command builds a live backend from its spec entry (tests pass their own).
        self.backend_factory = backend_factory
        # Every OIDC token handed to a backend is a credential: remembered only to be masked.
        # The audiences asked for are what `plan --check` reports claims for.
        self._identity_tokens: dict[str, None] = {}
        self._audiences: dict[str | None, None] = {}
        self._identity_lock = threading.Lock()
        self.context.identity = self._identity_token
        self.context.note_identity = self._note_identity_token
        # Backend options may name a secret of another backend (a GitHub App's key): read through
        # this session's own backends, so whatever that costs (a login token) is in the ledger.
        self.context.lookup = functools.partial(
            read_option_reference, self.spec, self.build_backend, self.ledger
        )

    def _identity_token(self, audience: str | None) -> str:
        with self._identity_lock:
            self._audiences[audience] = None
        token = self.identity.token(audience)
        self._note_identity_token(token)
        return token

    def _note_identity_token(self, token: str) -> None:
        """Remember a CI identity token (fetched here or in a backend's own process) to mask it."""
        with self._identity_lock:
            self._identity_tokens[token] = None
        unshown.remember(token)  # a store refusing it may quote it in its error text

    def backends_wanted(self) -> list[str]:
        """The backends this job signs in to (``run``, ``export`` and ``plan --check`` alike)."""
        return wanted_backends(self.spec)

    def build_backend(self, name: str) -> Backend:
        """A live backend for ``backends.NAME``, recorded in the ledger before it signs in, so
        :meth:`finish` revokes its token whatever happens next."""
        existing = self.ledger.backend(name)
        if existing is not None:
            # An option lookup (a GitHub App's key) signed this one in already: a second instance
            # would replace it in the ledger, and its token would never be revoked.
            return existing
        backend = self.backend_factory(self.spec.backends[name], self.context)
        self.ledger.add_backend(backend)
        return backend

    def token_records(self) -> dict[str, TokenRecord | None]:
        """Backend name -> the login token jobsecrets obtained there (``None``: the user's own)."""
        return {b.name: b.token_record() for b in self.ledger.backend_list()}

    def identity_tokens(self) -> list[str]:
        """The CI identity tokens fetched so far (to mask: a bearer JWT signs anyone in)."""
        with self._identity_lock:
            return list(self._identity_tokens)

    def identity_audiences(self) -> list[str | None]:
        """The audiences backends asked the CI identity for (``None``: the default audience)."""
        with self._identity_lock:
            return list(self._audiences)

    def finish(self, quiet: bool = False) -> RevokeReport:
        """Revoke everything the ledger holds and close connections. Never raises.

        Termination signals that arrive meanwhile are held off, then raised as
        :class:`Terminated` once everything is revoked.
        """
        report = RevokeReport()
        with signals_deferred() as arrived:
            try:
                if not self.ledger.is_empty():
                    report = self.ledger.revoke_all()
                    if not quiet or not report.ok:
                        log.info("%s", report.summary())
                    if not report.ok:
                        # The failures quote a store's words: masked as every message is.
                        warning = unshown.scrub(f"jobsecrets: warning: {report.summary()}")
                        print(warning, file=sys.stderr)
            except JobSecretsError as error:  # pragma: no cover - revoke_all reports, never raises
                report.failures.append(error.message)
            finally:
                self.ledger.close()
        if arrived:
            raise Terminated(arrived[0])
        return report
