"""Times as jobsecrets writes them: UTC, RFC 3339 with a ``Z``. Stores speak UTC; so do we."""

from __future__ import annotations

__all__ = ["iso_utc", "now_iso_ms", "unix_time", "utc"]

from datetime import datetime, timezone


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time (naive times from a store are UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso_utc(moment: datetime | float) -> str:
    """``2026-12-02T14:48:00Z`` for a datetime or a Unix timestamp (whole seconds)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix_time(value: object) -> float | None:
    """``value`` as a Unix time when it is a number a date can show (years 1 to 9999), else None.

    For times from outside (a token's ``exp``): ``1e300`` or ``-1e300`` is a number, but no
    date, and :func:`iso_utc` of it an OverflowError.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    return float(value)


def now_iso_ms() -> str:
    """The current time with milliseconds (audit records order events within a second)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
