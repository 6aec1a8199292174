"""Server addresses and credentials from a spec or the environment, checked before any client.

A client library given an address it cannot parse (``http://[::1``), or a token no HTTP header
can carry (``tok€``, a line break), raised ValueError or UnicodeEncodeError from deep inside:
an internal error, where the user needed to hear which setting was wrong.
"""

from __future__ import annotations

__all__ = ["address_problem", "header_problem", "shown_address"]

import re
from urllib.parse import urlsplit

from .names import CONTROL_CHARS, clean_text


def address_problem(text: str) -> str | None:
    """Why ``text`` is no ``http(s)://host[:port]...`` URL a client can use; None when it is."""
    if CONTROL_CHARS.search(text) or any(c.isspace() for c in text):
        return "it holds spaces or control characters"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or too big
    except ValueError as error:
        return f"it is no URL ({error})"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    return None


def header_problem(text: str) -> str | None:
    """Why ``text`` cannot travel in an HTTP header (a token, a namespace); None when it can.

    Whitespace at the start is refused too: requests raises InvalidHeader for it (a header
    value's leading whitespace is not part of it, RFC 9110 5.5), which read as "cannot reach"
    the store; urllib sends it, and the server then sees another value.
    """
    if text[:1].isspace():
        return "it starts with a space or tab, which an HTTP header value cannot"
    if not text.isascii() or not text.isprintable():
        return "it holds characters an HTTP header cannot carry (non-ASCII or control characters)"
    return None


# user:password@ after the scheme's "//", found without parsing: an address that is no valid URL
# (the reason it is shown in an error) must not show its password either.
_PASSWORD = re.compile(r"(//[^/@:]*):[^/@]*@")


def shown_address(text: str, limit: int = 200) -> str:
    """``text`` fit for a message or ``plan``: a password in it (``https://user:pw@host``)
    replaced by ``***``, control characters made spaces, the length bounded."""
    return clean_text(_PASSWORD.sub(r"\1:***@", text), limit)
