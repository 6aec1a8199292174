"""Durations written as ``30s``, ``15m``, ``12h``, ``90d`` (or a plain number of seconds)."""

from __future__ import annotations

__all__ = ["format_duration", "parse_duration"]

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


def parse_duration(value: object) -> int:
    """Return the number of seconds; raises ``ValueError`` for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return int(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError(f"{value!r} is not a duration (write 30s, 15m, 12h or 90d)")


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
