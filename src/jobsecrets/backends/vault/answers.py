"""Reading Vault/OpenBao's answers, which are hostile until shown otherwise: times, TTLs, text.

A server (or a proxy before it) may send anything: a TTL that is not a number, a time Python cannot
parse, text with terminal escapes. Nothing here raises on such input; each function falls back to a
safe value, so one odd field never loses a lease id or a token.
"""

from __future__ import annotations

__all__ = [
    "MAX_ACCESSOR",
    "ROTATED_AT_KEY",
    "accessor_problem",
    "clean_text",
    "kv_date",
    "login_token_problem",
    "mount_within",
    "parse_time",
    "seconds",
]

import re
from collections.abc import Mapping
from datetime import datetime, timezone

from ...addresses import header_problem
from ...names import clean_text  # re-exported: the vault modules take it from here

#: Longest accessor taken from a login answer (Vault's and OpenBao's are 24 characters or so):
#: it is shown in messages and written to audit records and the state file.
MAX_ACCESSOR = 256


def login_token_problem(token: object) -> str | None:
    """Why a login answer's ``auth.client_token`` cannot be sent as ``X-Vault-Token``; None when
    it can. Never says what the token is: it is a credential, however wrong.

    Not text, or text no header carries (non-ASCII, a line break: UnicodeEncodeError or
    requests' InvalidHeader from deep inside the next request, an internal error or "cannot
    reach"); no Vault token holds a space either (requests refuses a leading one).
    """
    if not isinstance(token, str):
        return f"it is a JSON {type(token).__name__}, not a string"
    if any(c.isspace() for c in token):
        return "it holds spaces"
    return header_problem(token)


def mount_within(path: str, mount: str, namespace: str | None = None) -> str | None:
    """The mount a ``sys/internal/ui/mounts/PATH`` answer names, as a prefix of ``path`` ending
    in ``/``; None when it is none: the store named a mount the path asked is not under.

    Every read goes to ``MOUNT`` + ``data/`` + the rest of the path: a mount that is not the
    path's own (``sys/``, ``sec/`` for ``secret/app``, one longer than the path) would read
    another path than the spec names. Only whole segments count. Vault names a mount in a
    namespace below the request's with that namespace's full path (``ns1/ns2/secret/`` asked
    ``ns2/secret/app`` in ``ns1``): the request's own namespace is taken off the front first.
    """
    if not mount.endswith("/"):
        mount += "/"  # Vault's end in "/"; one without is the same mount
    within = [mount]
    prefix = (namespace or "").strip("/")
    if prefix and mount.startswith(prefix + "/"):
        within.append(mount[len(prefix) + 1 :])
    for candidate in within:
        if candidate != "/" and (path + "/").startswith(candidate):
            return candidate
    return None


def accessor_problem(accessor: object) -> str | None:
    """Why a login answer's ``auth.accessor`` cannot be recorded; None when it can (or is absent:
    a batch token has none). It is shown in messages and audit records, so no control characters
    (terminal escapes, line breaks) and a bounded length."""
    if accessor is None:
        return None
    if not isinstance(accessor, str):
        return f"it is a JSON {type(accessor).__name__}, not a string"
    if len(accessor) > MAX_ACCESSOR:
        return f"it is longer than {MAX_ACCESSOR} characters"
    if not accessor.isprintable():
        return "it holds control characters"
    return None


def seconds(value: object, default: int = 0) -> int:
    """A TTL from a server answer; anything that is not a sane number of seconds gives ``default``.

    A hostile or broken answer must not make a read fail after its lease exists: the lease id
    would then never reach the ledger, and never be revoked.
    """
    if isinstance(value, bool):
        return default
    try:
        seconds = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return default
    return seconds if 0 <= seconds <= 10 * 365 * 86400 else default


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time of an answer; None when it is none, or no time UTC can show.

    ``0001-01-01T00:00:00+23:59`` parses, but lies before year 1 in UTC: every message and
    audit record that writes it (in UTC) was an OverflowError.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        # Vault writes RFC 3339 with nanoseconds; fromisoformat (3.10) takes at most microseconds.
        text = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
        moment = datetime.fromisoformat(text)
        _utc(moment).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return moment


#: custom_metadata key (KV v2) that can date a secret further back than its version's created_time.
ROTATED_AT_KEY = "rotated_at"


def kv_date(created_time: object, custom_metadata: object) -> tuple[datetime | None, str]:
    """When a KV v2 value was last set, and from what: ``(time, age source)``.

    The version's ``created_time``, unless ``custom_metadata.rotated_at`` (RFC 3339) is earlier:
    that key can only make a secret *older*, so whoever may write metadata cannot make a stale
    value look fresh.
    """
    updated = parse_time(created_time)
    source = "version created" if updated is not None else ""
    rotated = (
        parse_time(custom_metadata.get(ROTATED_AT_KEY))
        if isinstance(custom_metadata, Mapping)
        else None
    )
    if rotated is not None and (updated is None or _utc(rotated) < _utc(updated)):
        return rotated, f"custom_metadata.{ROTATED_AT_KEY}"
    return updated, source


def _utc(moment: datetime) -> datetime:
    # Naive times from the store are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
