"""What this process must never print: the credentials it uses and the secret values it obtained.

A store's error text is the store's words, shown so that users can act on them; it may quote our
token or another variable's value (``token hvs.X cannot read; value Y``). So every piece of text
from outside that is printed goes through :func:`scrub` first, and whatever obtains a credential
or a value :func:`remember`-s it here, the moment it has it.

Remembering is one dictionary insertion under a lock: cheap enough for every request. Masking
costs only when text is printed while something is remembered, and is the masking library's
(:func:`jobsecrets.redact.mask_remembered`: every form ``run`` masks in output), loaded then.
"""

from __future__ import annotations

__all__ = ["PLAIN", "forget_all", "remember", "remembered", "scrub"]

import threading

#: ``extra=`` of a log record made of names, paths and timings only, never a store's words:
#: written unscrubbed. One per request at -vv, each after a read remembered new values, rebuilt
#: the whole mask list every time: 500 Vault reads took 8.4 s instead of 0.8 s.
PLAIN = {"unshown_plain": True}

_lock = threading.Lock()
_values: dict[str, None] = {}
#: Changes whenever a value is added: the mask list built for one generation is reused.
_generation = 0


def remember(value: object) -> None:
    """Never print ``value`` (a credential, a secret value): anything but non-empty text or
    bytes is ignored. Bytes that are no UTF-8 are kept as ``surrogateescape`` text."""
    global _generation
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "surrogateescape")
    if not isinstance(value, str) or not value:
        return
    with _lock:
        if value not in _values:
            _values[value] = None
            _generation += 1


def remembered() -> tuple[list[str], int]:
    """A snapshot of the remembered values, and their generation."""
    with _lock:
        return list(_values), _generation


def forget_all() -> None:
    """Forget every value (tests; a process runs one job, and forgets nothing before its end)."""
    global _generation
    with _lock:
        _values.clear()
        _generation += 1


def scrub(text: str) -> str:
    """``text`` with every remembered value masked in all its forms; unchanged (and free) when
    nothing is remembered."""
    if not _values:
        return text
    from .redact import mask_remembered  # not for --help, and not on a job's successful path

    values, generation = remembered()
    return mask_remembered(text, values, generation)
