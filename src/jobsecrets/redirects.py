"""Which redirects a request that carries a credential may follow: to the same origin only.

A store or token endpoint that answers ``307 Location: http://elsewhere/...`` must not get the
client to send its token (``X-Vault-Token``, a bearer header) or a login body (a secret_id, the
CI's identity token) to ``elsewhere``: requests strips only ``Authorization`` on a change of host
and urllib strips nothing, and both follow https -> http. The origin (RFC 6454: scheme, host,
port) is what a credential is meant for, so a redirect is followed only when all three stay the
same (a path moved on the same server, or a load balancer's address answering for the active
node), and refused otherwise: the caller turns :class:`RedirectRefused` into its own error,
naming where the answer pointed without its path, query or user:password (a hostile server can
echo what it was sent into them). A Vault standby that redirects to the active node's own
address is refused too (the Vault CLI would follow it): standbys forward requests by default,
and otherwise the address to give is the cluster's, not one node's.

``urllib.request`` is imported here: import this module only where a request is made (it costs
~10 ms a command that sends none should not pay).
"""

from __future__ import annotations

__all__ = [
    "RedirectRefused",
    "SameOriginRedirects",
    "check_redirect",
    "same_origin",
    "shown_origin",
]

import urllib.request
from typing import IO, Any
from urllib.parse import urlsplit

from .names import clean_text

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, the port filled in from the scheme; None when
    ``url`` is no http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), _DEFAULT_PORTS[scheme] if port is None else port


def same_origin(first: str, second: str) -> bool:
    """True when both URLs are http(s) URLs with the same scheme, host and port."""
    origin = _origin(first)
    return origin is not None and origin == _origin(second)


def shown_origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` for a message: never its user:password, path or query."""
    origin = _origin(url)
    if origin is None:
        return "an address that is no http(s) URL"
    scheme, host, port = origin
    if ":" in host:  # IPv6: brackets, as in a URL
        host = f"[{host}]"
    return clean_text(f"{scheme}://{host}:{port}", 120)


class RedirectRefused(Exception):
    """A redirect to another origin was refused; ``target`` is its origin, fit for a message."""

    def __init__(self, target: str) -> None:
        super().__init__(f"redirected to another origin ({target})")
        self.target = target


def check_redirect(old_url: str, new_url: str) -> None:
    """Raise :class:`RedirectRefused` unless ``new_url`` has the origin of ``old_url``."""
    if not same_origin(old_url, new_url):
        raise RedirectRefused(shown_origin(new_url))


class SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handler, refusing (:class:`RedirectRefused`) a change of origin.

    urllib copies every header (``Authorization`` too) to the redirected request and goes from
    https to http; on the same origin the request goes where it was meant to go anyway.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        """The request to ``newurl`` if it has the origin of ``req``; else raise."""
        check_redirect(req.full_url, newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)
