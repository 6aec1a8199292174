"""Durations written as ``30s``, ``15m``, ``12h``, ``90d`` (or a plain number of seconds)."""

from __future__ import annotations

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# ASCII digits only: "\d" also takes other scripts' digits, which no one writes on purpose.
_DURATION = re.compile(r"^\s*([0-9]+)\s*([smhd]?)\s*$")
#: The longest duration a spec may write: 100 years. Timeouts and deadlines become waits, and
#: a wait past what the platform's clock can hold (~292 years in nanoseconds) is an
#: OverflowError in the middle of a run instead of a spec problem before it.
MAX_DURATION = 36500 * 86400


def parse_duration(value: object) -> int:
    """Return the number of seconds; raises ``ValueError`` for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    seconds: int | None = None
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        seconds = value
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            digits = match.group(1).lstrip("0")
            # Past 15 digits it is past the limit whatever the unit: int() of a string of
            # thousands of digits is refused by Python itself, with words of its own.
            seconds = MAX_DURATION + 1 if len(digits) > 15 else int(digits or "0")
            seconds *= _UNITS[match.group(2) or "s"]
    if seconds is None:
        raise ValueError(f"{_shown(value)} is not a duration (write 30s, 15m, 12h or 90d)")
    if seconds > MAX_DURATION:
        raise ValueError(f"{_shown(value)} is longer than 100 years (36500d), the most allowed")
    return seconds


def _shown(value: object) -> str:
    """``repr`` of a spec value for a message, cut short: a spec may hold a huge one."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(seconds: int | float | None) -> str:
    """Format seconds the way the spec writes them: ``90s`` -> ``1m30s``."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
