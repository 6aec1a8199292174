"""Renewal while ``run``'s child lives: leases and tokens renewed before they expire.

:class:`Renewal` decides what is due and renews it (its own backoff and "cannot be extended" state);
:class:`Renewer` is the thread that calls it until stopped. Both read the ledger only through its
methods, so the ledger stays the one owner of its lock.
"""

from __future__ import annotations

__all__ = ["Renewal", "Renewer", "due_at"]

import logging
import threading
import time
from collections.abc import Callable

from ..names import shown_id
from .ledger import Ledger, token_key, why

log = logging.getLogger("jobsecrets")

_FRACTION = 2 / 3
#: Seconds a renewal should have before expiry when the TTL allows it: a short TTL's last third
#: (1 s of a 3 s lease) is less than a loaded machine's thread wake-up plus a round trip can take.
_MARGIN = 10.0


def due_at(obtained_at: float, ttl: float, fraction: float = _FRACTION) -> float:
    """When a lease or token of ``ttl`` seconds obtained at ``obtained_at`` should be renewed.

    At ``fraction`` of its TTL; earlier when that would leave less than :data:`_MARGIN` seconds
    before expiry, though for that reason never before half of the TTL. With the default
    fraction a 3 s lease is renewed at 1.5 s, a 24 s one at 14 s, an hour's at 40 minutes.
    """
    return obtained_at + min(ttl * fraction, max(ttl / 2, ttl - _MARGIN))


class Renewal:
    """What to renew, when: each renewable lease and token once :func:`due_at` says so."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # Leases/tokens that renewing no longer extends (max TTL reached), and renewal backoff.
        self._no_renew: set[str] = set()
        self._retry_at: dict[str, float] = {}

    def _renewal_failed(self, key: str, ttl: int, now: float) -> None:
        # Retry a few times within the TTL rather than hammering the store every loop.
        self._retry_at[key] = now + max(1.0, min(30.0, ttl / 6))

    def renew_due(self, now: float | None = None, fraction: float = _FRACTION) -> list[str]:
        """Renew each renewable lease and token that is due (:func:`due_at`).

        Returns messages for the log (lease ids and accessors, never values): failures, and leases
        or tokens that reached their maximum TTL, which renewing cannot extend any further.
        """
        now = time.time() if now is None else now
        messages = []
        for lease in self.ledger.lease_list():
            key = lease.lease_id
            if not lease.renewable or lease.ttl <= 0 or key in self._no_renew:
                continue
            due = due_at(lease.obtained_at, lease.ttl, fraction)
            if now < max(due, self._retry_at.get(key, 0)):
                continue
            backend = self.ledger.backend(lease.backend)
            if backend is None:
                continue
            wanted = backend.renew_increment() or lease.ttl
            asked = time.monotonic()
            try:
                renewed = backend.renew_lease(lease, wanted)
            except Exception as error:
                # Any error, a backend's bug included: an exception leaving the renewer thread
                # would end every later renewal, and the job's leases would expire under it.
                if now >= lease.obtained_at + lease.ttl:
                    # Expired (the store was away past its end): no renewal brings it back.
                    # Asked again every few seconds, it said "lease not found" until the end.
                    self._no_renew.add(key)
                    messages.append(
                        f"lease {shown_id(key)} expired before it could be renewed "
                        f"({why(error)}): no longer renewed"
                    )
                    continue
                self._renewal_failed(key, lease.ttl, now)
                messages.append(f"cannot renew lease {shown_id(key)}: {why(error)}")
                continue
            self._retry_at.pop(key, None)
            if renewed.ttl < wanted:
                # The store capped the lease at its max TTL: asking again cannot extend it.
                self._no_renew.add(key)
                messages.append(
                    f"lease {shown_id(key)} reached its maximum TTL: it ends in {renewed.ttl}s "
                    "and cannot be renewed any further"
                )
            self.ledger.replace_lease(renewed)  # unless revoked meanwhile
            # With -vv: how much of the TTL was left when the renewal went out (a late wake-up
            # of this thread on a loaded machine shows here) and how long the store took.
            log.debug(
                "renewed lease %s with %.1fs of %ds left (answered in %.2fs); it lasts %ds now",
                shown_id(key),
                lease.obtained_at + lease.ttl - now,
                lease.ttl,
                time.monotonic() - asked,
                renewed.ttl,
            )
        for backend in self.ledger.backend_list():
            record = backend.token_record()
            if record is None or not record.renewable or record.ttl <= 0:
                continue
            key = "token:" + token_key(record)
            if key in self._no_renew:
                continue
            due = due_at(record.obtained_at, record.ttl, fraction)
            if now < max(due, self._retry_at.get(key, 0)):
                continue
            label = shown_id(record.accessor or backend.name)
            asked = time.monotonic()
            try:
                backend.renew_token()
            except Exception as error:  # as for leases: the thread must keep running
                if now >= record.obtained_at + record.ttl:
                    self._no_renew.add(key)  # expired, as above: no renewal brings it back
                    messages.append(
                        f"the token of {backend.name!r} expired before it could be renewed "
                        f"({why(error)}): no longer renewed"
                    )
                    continue
                self._renewal_failed(key, record.ttl, now)
                messages.append(f"cannot renew the token of {backend.name!r}: {why(error)}")
                continue
            self._retry_at.pop(key, None)
            renewed_record = backend.token_record()
            log.debug(
                "renewed token %s of %r with %.1fs of %ds left (answered in %.2fs)",
                label,
                backend.name,
                record.obtained_at + record.ttl - now,
                record.ttl,
                time.monotonic() - asked,
            )
            if renewed_record is None or renewed_record.ttl < record.ttl:
                self._no_renew.add(key)
                ends = renewed_record.ttl if renewed_record is not None else 0
                messages.append(
                    f"token {label} of {backend.name!r} reached its maximum TTL: it ends in "
                    f"{ends}s, and every lease obtained with it then ends too"
                )
        return messages

    def next_due(self, fraction: float = _FRACTION) -> float | None:
        """Seconds until the next renewal is due, or ``None`` if nothing is renewable."""
        due = []
        for lease in self.ledger.lease_list():
            if lease.renewable and lease.ttl > 0 and lease.lease_id not in self._no_renew:
                due.append(
                    max(
                        due_at(lease.obtained_at, lease.ttl, fraction),
                        self._retry_at.get(lease.lease_id, 0),
                    )
                )
        for backend in self.ledger.backend_list():
            record = backend.token_record()
            if record is None or not record.renewable or record.ttl <= 0:
                continue
            key = "token:" + token_key(record)
            if key not in self._no_renew:
                due.append(
                    max(
                        due_at(record.obtained_at, record.ttl, fraction),
                        self._retry_at.get(key, 0),
                    )
                )
        if not due:
            return None
        return max(0.0, min(due) - time.time())


class Renewer:
    """A daemon thread that renews the ledger's leases and tokens until stopped.

    Renewal failures are reported through ``on_failure`` (messages carry lease ids, never values);
    the job keeps running, since a lease that cannot be renewed still lives until its TTL ends.
    """

    def __init__(
        self,
        ledger: Ledger,
        on_failure: Callable[[str], None] | None = None,
        fraction: float = _FRACTION,
        max_sleep: float = 60.0,
    ) -> None:
        self.renewal = Renewal(ledger)
        self.on_failure = on_failure
        self.fraction = fraction
        self.max_sleep = max_sleep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobsecrets-renewer", daemon=True)

    def start(self) -> Renewer:
        """Start renewing; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for the thread (a renewal under way finishes first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = self.renewal.next_due(self.fraction)
            wait = self.max_sleep if due is None else min(self.max_sleep, max(0.2, due))
            if self._stop.wait(wait):
                return
            for message in self.renewal.renew_due(fraction=self.fraction):
                if self.on_failure is not None:
                    self.on_failure(message)
