"""The lease ledger: everything with a lifetime that jobsecrets obtained for one job, and how it ends.

:meth:`Ledger.revoke_all` revokes every lease, then every token jobsecrets obtained (a token the user
supplied is never revoked), and removes the secret files. The ledger is the only owner of its lock: the
renewer (:mod:`.renewal`) and the state file (:mod:`.state`) read it through its methods.
"""

from __future__ import annotations

__all__ = ["Ledger", "RevokeReport", "token_key", "why"]

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend, Lease, TokenRecord
from ..errors import AccessDenied, JobSecretsError, RevokeError
from ..names import clean_text, shown_id
from ..safe_files import shred
from .cipher import STATE_KEY_ENV

log = logging.getLogger("jobsecrets")

#: Leases revoked at once by :meth:`Ledger.revoke_all` (a store's connection pool holds as many).
REVOKE_CONCURRENCY = 16


@dataclass
class RevokeReport:
    """What a revocation did: counts and the failures (lease ids / accessors, never values).

    ``leases_with_token`` counts leases the store would not let us revoke one by one (Vault's
    default policy has no ``sys/leases/revoke``) that ended because the token which created them
    was revoked: Vault revokes a token's leases with it, in the background, within moments.
    """

    leases_revoked: int = 0
    tokens_revoked: int = 0
    leases_with_token: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def summary(self) -> str:
        """One line for the log."""
        text = f"revoked {self.leases_revoked} lease(s) and {self.tokens_revoked} token(s)"
        if self.leases_with_token:
            text += f"; {self.leases_with_token} more lease(s) ended with their token"
        if self.failures:
            # Each failure quotes ids and a store's words: one line each, whatever they hold.
            shown = (clean_text(failure, 1000) for failure in self.failures)
            text += f"; {len(self.failures)} failure(s): " + "; ".join(shown)
        return text


def token_key(record: TokenRecord) -> str:
    """How a token is told apart from others without showing it: its accessor when it has one."""
    return record.accessor or record.token


class Ledger:
    """Leases and tokens obtained for one job, with the live backends that can renew and revoke them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.leases: dict[str, Lease] = {}
        # lease id -> accessor of the token that obtained it ("" when the user supplied the token).
        self.lease_owner: dict[str, str] = {}
        self.backends: dict[str, Backend] = {}
        self.backend_types: dict[str, str] = {}
        self.backend_options: dict[str, dict[str, Any]] = {}
        self.files: list[str] = []
        # Backends rebuilt from a state file, to reconnect (with the recorded token) before revoking.
        self.pending_resume: dict[str, TokenRecord | None] = {}
        # Relative paths in backend options (ca_cert) are relative to the spec file's directory.
        self.spec_dir = "."
        # Tokens recorded in a state file (several `export`s may have signed in more than once).
        self.recorded_tokens: list[TokenRecord] = []
        # Encrypted token entries of a state file that the current key cannot open: kept verbatim
        # so that `revoke` with the right key can still end them.
        self.unreadable_tokens: list[dict[str, Any]] = []
        # Entries of a state file that could not be understood (a damaged file): reported as
        # failures by revoke_all, so `revoke` says so instead of failing before revoking the rest.
        self.unusable: list[str] = []
        # Those entries themselves, kept as they were (like unreadable_tokens): a rewritten state
        # file still holds them, so a later `revoke` (or a human) sees what may still be alive
        # instead of finding a clean file. ``kept_sections``: a whole section of the wrong type.
        self.kept_leases: list[Any] = []
        self.kept_tokens: list[Any] = []
        self.kept_backends: dict[str, Any] = {}
        self.kept_sections: dict[str, Any] = {}
        # Called (urgent: bool) whenever something revocable is recorded: `export` keeps the
        # state file current with it (see on_record).
        self._on_record: Callable[[bool], None] | None = None

    def on_record(self, hook: Callable[[bool], None] | None) -> None:
        """Call ``hook(urgent)`` each time a lease, a login token or a secret file is recorded
        (``None``: stop). It is called from whichever thread recorded it (the resolver's pool),
        after the ledger's lock is released; ``urgent`` is true for a sign-in."""
        self._on_record = hook

    def _recorded(self, urgent: bool) -> None:
        hook = self._on_record
        if hook is not None:
            hook(urgent)

    def signed_in(self, backend: Backend) -> None:
        """``backend`` has signed in: its token, if jobsecrets obtained it, is to be revoked
        from now on, and the hook (:meth:`on_record`) hears of it at once."""
        if backend.token_record() is not None:
            self._recorded(True)

    def add_backend(self, backend: Backend) -> None:
        """Track a backend (its token, once it signed in, is revoked at the end)."""
        with self._lock:
            self.backends[backend.name] = backend
            self.backend_types[backend.name] = backend.type_name
            self.backend_options[backend.name] = dict(backend.options)

    def add_lease(self, lease: Lease) -> None:
        """Record a lease the moment it is obtained, so a failure later still revokes it."""
        backend = self.backends.get(lease.backend)
        record = backend.token_record() if backend is not None else None
        with self._lock:
            self.leases[lease.lease_id] = lease
            self.lease_owner[lease.lease_id] = token_key(record) if record is not None else ""
        self._recorded(False)

    def restore_lease(self, lease: Lease, owner: str | None) -> None:
        """Record a lease read back from a state file; ``owner`` is ``None`` in files from before
        owners were recorded (then any token of ours on that backend may end it)."""
        with self._lock:
            self.leases[lease.lease_id] = lease
            if owner is not None:
                self.lease_owner[lease.lease_id] = owner

    def add_file(self, path: str) -> None:
        """Record a secret file to remove when the job ends."""
        with self._lock:
            self.files.append(path)
        self._recorded(False)

    def tokens(self) -> list[TokenRecord]:
        """The tokens jobsecrets obtained (user-supplied ones are not listed), each once."""
        records: dict[str, TokenRecord] = {}
        for backend in list(self.backends.values()):
            record = backend.token_record()
            if record is not None:
                records.setdefault(token_key(record), record)
        for record in self.recorded_tokens:
            records.setdefault(token_key(record), record)
        return list(records.values())

    def is_empty(self) -> bool:
        """True when there is nothing to revoke or remove."""
        return not (
            self.leases
            or self.tokens()
            or self.files
            or self.unreadable_tokens
            or self.kept_leases
            or self.kept_tokens
            or self.kept_backends
            or self.kept_sections
        )

    def _forget_lease(self, lease_id: str) -> None:
        with self._lock:
            self.leases.pop(lease_id, None)
            self.lease_owner.pop(lease_id, None)

    # ---- what the renewer and the state file read; the lock is only ever taken here -------------

    def lease_list(self) -> list[Lease]:
        """The leases recorded now (a copy: safe to iterate while others record)."""
        with self._lock:
            return list(self.leases.values())

    def backend_list(self) -> list[Backend]:
        """The live backends (a copy)."""
        with self._lock:
            return list(self.backends.values())

    def backend(self, name: str) -> Backend | None:
        """The live backend called ``name``, if any."""
        with self._lock:
            return self.backends.get(name)

    def replace_lease(self, lease: Lease) -> None:
        """Put a renewed lease in place of the old one, unless it was revoked meanwhile."""
        with self._lock:
            if lease.lease_id in self.leases:
                self.leases[lease.lease_id] = lease

    def lease_owners(self) -> dict[str, str]:
        """lease id -> key of the token that obtained it (a copy)."""
        with self._lock:
            return dict(self.lease_owner)

    # ---- the end ---------------------------------------------------------------------------------

    def _resume(self, report: RevokeReport) -> None:
        """Reconnect the backends a state file named, only those with something to revoke."""
        needed = {lease.backend for lease in self.leases.values()}
        needed |= {record.backend for record in self.recorded_tokens}
        for name, record in list(self.pending_resume.items()):
            del self.pending_resume[name]
            if name not in needed:
                # Nothing of this backend's to revoke: do not sign in again just to do nothing.
                continue
            backend = self.backends.get(name)
            if backend is None:
                # A state file whose backends section lost this one (damaged): its leases and
                # tokens are reported as having no backend below.
                continue
            try:
                backend.resume(record)
            except Exception as error:  # never raises: the rest is still revoked
                report.failures.append(f"reconnect {name!r}: {why(error)}")

    def revoke_all(self) -> RevokeReport:
        """Revoke every lease, then every token we obtained, and remove secret files. Never raises.

        What could not be revoked stays in the ledger (and so in a rewritten state file) for a retry.
        """
        report = RevokeReport()
        self._resume(report)
        for path in list(self.files):
            try:
                shred(path)
            except FileNotFoundError:
                pass
            except OSError as error:
                # Leases and tokens must still be revoked: one stuck file must not stop that.
                report.failures.append(f"secret file {path}: cannot remove it ({error.strerror})")
                continue
            self.files.remove(path)
        ours = {token_key(record): record for record in self.tokens()}
        # Leases the store would not revoke one by one, to end with the token that created them
        # (with why each was not revoked itself).
        with_token: dict[str, list[tuple[Lease, str]]] = {}
        leases = list(self.leases.values())
        for lease, failure in zip(leases, self._revoke_leases(leases), strict=True):
            if isinstance(failure, JobSecretsError):
                owner = self._owner(lease, ours)
                if owner is not None:
                    denied = isinstance(failure, AccessDenied)
                    if not denied:
                        log.info(
                            "lease %s: %s; revoking its token ends it",
                            shown_id(lease.lease_id),
                            clean_text(failure.message, 1000),
                        )
                    reason = "denied" if denied else failure.message
                    with_token.setdefault(owner, []).append((lease, reason))
                else:
                    report.failures.append(f"lease {shown_id(lease.lease_id)}: {failure.message}")
                continue
            if failure is not None:  # never raises: the rest is still revoked
                report.failures.append(f"lease {shown_id(lease.lease_id)}: {why(failure)}")
                continue
            report.leases_revoked += 1
            self._forget_lease(lease.lease_id)
        for key, record in ours.items():
            backend = self.backends.get(record.backend)
            try:
                if backend is None:
                    raise RevokeError(f"no backend {record.backend!r}")
                backend.revoke_token(record)
            except JobSecretsError as error:
                report.failures.append(
                    f"token {shown_id(record.accessor or record.backend)}: {error.message}"
                )
                for lease, reason in with_token.pop(key, []):
                    report.failures.append(
                        f"lease {shown_id(lease.lease_id)}: not revoked ({reason}; its token "
                        "could not be revoked either)"
                    )
                continue
            except Exception as error:  # never raises: the rest is still revoked
                report.failures.append(
                    f"token {shown_id(record.accessor or record.backend)}: {why(error)}"
                )
                continue
            report.tokens_revoked += 1
            if record in self.recorded_tokens:
                self.recorded_tokens.remove(record)
            for lease, _reason in with_token.pop(key, []):
                report.leases_with_token += 1
                self._forget_lease(lease.lease_id)
        report.failures.extend(self.unusable)
        for entry in self.unreadable_tokens:
            report.failures.append(
                f"token {shown_id(entry.get('accessor') or entry.get('backend'))}: encrypted in the "
                f"state file and ${STATE_KEY_ENV} does not open it"
            )
        return report

    def _revoke_leases(self, leases: list[Lease]) -> list[Exception | None]:
        """Revoke ``leases`` at once (up to :data:`REVOKE_CONCURRENCY`): each failure, in order.

        One at a time, a store that stopped answering held a cancelled job's end for the sum of
        every lease's attempts (20 leases at the default timeout: ten minutes); at once, it
        costs about one lease's.
        """

        def revoke(lease: Lease) -> Exception | None:
            backend = self.backends.get(lease.backend)
            try:
                if backend is None:
                    raise RevokeError(f"no backend {lease.backend!r}")
                backend.revoke_lease(lease.lease_id)
            except Exception as error:  # reported by the caller; the rest is still revoked
                return error
            return None

        if len(leases) <= 1:
            return [revoke(lease) for lease in leases]
        from concurrent.futures import ThreadPoolExecutor

        workers = min(REVOKE_CONCURRENCY, len(leases))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="revoke") as pool:
            return list(pool.map(revoke, leases))

    def _owner(self, lease: Lease, ours: Mapping[str, TokenRecord]) -> str | None:
        """The key of our token that obtained ``lease`` (so revoking it ends the lease), if any."""
        owner = self.lease_owner.get(lease.lease_id)
        if owner:
            return owner if owner in ours else None
        if owner is None:
            # A state file from before owners were recorded: any token of ours on that backend.
            for key, record in ours.items():
                if record.backend == lease.backend:
                    return key
        return None

    def close(self) -> None:
        """Close every backend's connections."""
        for backend in self.backends.values():
            with contextlib.suppress(Exception):
                backend.close()


def why(error: BaseException) -> str:
    """A failure in words that never quote a value: our own message, else the type's name."""
    return error.message if isinstance(error, JobSecretsError) else type(error).__name__
