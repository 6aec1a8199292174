"""One retry rule for every backend: which failures are transient, and how long to wait.

A transient failure is one where the store did not (or surely did not usefully) handle the
request: the connection was refused, the store answered 429 (rate limit) or 503 (sealed,
standby, overloaded), or, for a request that is safe to repeat, the connection was reset or the
store answered another 5xx. A request that may create something (a database credential, a
certificate, a login token) is not repeated after a reset or a 500: the first attempt may have
created it, and a second credential nobody knows about would never be revoked.

Waits are full-jitter exponential backoff (many CI jobs throttled together must not retry in
lock step), at least the store's ``Retry-After`` when it gives one, and never past the overall
deadline: when the next wait would end after it, the last failure is raised instead.
"""

from __future__ import annotations

__all__ = ["OutOfTime", "Retrying", "backoff_delay", "retry_after_seconds", "within"]

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

#: Longest Retry-After honoured: a store asking for more is treated as down.
MAX_RETRY_AFTER = 30.0


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (the delta-seconds form only), or None."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


class OutOfTime(Exception):
    """A call given a wall-clock limit by :func:`within` did not end in time."""


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``, but give up after ``seconds`` of wall-clock time (raise :class:`OutOfTime`).

    A socket timeout bounds each read, not the answer: a store that sends one byte every half
    second never trips it. Revocation must still end, so it runs in a daemon thread that is
    abandoned when late (the process exits without waiting for it, see ``_exit.py``).
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as error:  # handed to the caller's thread
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="jobsecrets-bounded", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise OutOfTime(f"no complete answer within {seconds:g}s")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


@dataclass
class Retrying:
    """Run a call until it succeeds, fails permanently, runs out of attempts or of deadline.

    ``transient(error)`` returns None for a permanent failure, or the store's ``Retry-After``
    (0.0 when it gave none) for a transient one. ``deadline`` is a ``time.monotonic()`` value or
    None. The number of attempts made is left on the raised error as ``jobsecrets_attempts``.
    """

    transient: Callable[[BaseException], float | None]
    deadline: float | None = None
    max_attempts: int = 5
    base: float = 0.2
    cap: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def __call__(self, call: Callable[[], T]) -> T:
        """``call()``, retried as the class describes."""
        attempt = 0
        while True:
            try:
                return call()
            except Exception as error:
                attempt += 1
                retry_after = self.transient(error)
                left = math.inf if self.deadline is None else self.deadline - time.monotonic()
                # Retry-After plus jitter: callers told "1 s" together must not all come back
                # at the same instant and be refused together again.
                delay = (
                    None
                    if retry_after is None
                    else retry_after + backoff_delay(attempt - 1, self.base, self.cap)
                )
                if delay is None or attempt >= self.max_attempts or delay >= left:
                    error.jobsecrets_attempts = attempt  # type: ignore[attr-defined]
                    raise
                self.sleep(delay)
