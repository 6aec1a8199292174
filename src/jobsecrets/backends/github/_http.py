"""GitHub's REST API over the standard library: one call, its errors, and rate-limit waits.

urllib rather than requests: the backend makes a handful of calls per job, and ``plan`` must not pull a
client library in. What GitHub documents and this module follows
(https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api):

* a primary rate limit answers 403 or 429 with ``x-ratelimit-remaining: 0``: wait until
  ``x-ratelimit-reset`` (UTC epoch seconds);
* a secondary rate limit answers 403 or 429 with a message saying so: wait ``retry-after`` seconds if
  given, else until ``x-ratelimit-reset`` if remaining is 0, else at least a minute, growing each time.

A wait is made only when it ends before the job's overall deadline; otherwise the call fails at once,
saying how long GitHub asked to wait, instead of sleeping past the deadline for nothing.
"""

from __future__ import annotations

__all__ = ["API_VERSION", "GithubHttp", "Reply"]

import json
import math
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ... import jsonsafe
from ...errors import BackendError
from ...names import clean_text

#: The REST API version every request pins (``X-GitHub-Api-Version``); GitHub.com and GHES 3.9+ know it.
API_VERSION = "2022-11-28"
_MAX_ATTEMPTS = 6


def clean(text: object, limit: int = 200) -> str:
    """Server text is hostile: strip control characters and bound its length."""
    return clean_text(text, limit)


@dataclass
class Reply:
    """One answer: status, lower-cased headers and the JSON body (``None`` when there is none)."""

    status: int
    headers: Mapping[str, str]
    body: Any = field(repr=False, default=None)

    @property
    def message(self) -> str:
        """GitHub's ``message`` field, cleaned (error bodies carry one)."""
        if isinstance(self.body, dict) and self.body.get("message"):
            return clean(self.body["message"])
        return f"HTTP {self.status}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: the bearer credential must never follow one to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class GithubHttp:
    """Calls to one GitHub API root (``https://api.github.com`` or ``https://HOST/api/v3``)."""

    def __init__(
        self,
        api_url: str,
        *,
        timeout: Callable[[], float],
        time_left: Callable[[], float],
        ca_cert: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._time_left = time_left
        self._sleep = sleep
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if ca_cert:
            handlers.append(
                urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_cert))
            )
        self._opener = urllib.request.build_opener(*handlers)

    def call(
        self,
        method: str,
        path: str,
        *,
        bearer: str,
        what: str,
        body: Mapping[str, Any] | None = None,
    ) -> Reply:
        """One API call, waiting out rate limits while the deadline allows; any status is returned.

        ``bearer`` is the App JWT or an installation token; it goes in the Authorization header
        only (never in a URL, a message or a log line).
        """
        secondary_waits = 0
        for _attempt in range(_MAX_ATTEMPTS):
            reply = self._once(method, path, bearer, body, what)
            wait = _rate_limit_wait(reply, secondary_waits)
            if wait is None:
                if (
                    reply.status in (502, 503, 504)
                    and method != "POST"
                    and self._time_left() > 2
                    and _attempt < _MAX_ATTEMPTS - 1
                ):
                    # A front-end hiccup: pause, then again. Never for POST: a mint that went
                    # through before the 502 would leave a token nobody knows to revoke.
                    self._sleep(1.0)
                    continue
                return reply
            if reply.headers.get("x-ratelimit-remaining") != "0":
                secondary_waits += 1
            left = self._time_left()
            if wait > left - 1:
                raise BackendError(
                    f"{what}: GitHub rate-limited the request ({reply.message}) and asks to wait "
                    f"{int(wait)}s, past the job's deadline ({max(0, int(left))}s left)",
                    hint="retry later, or raise 'settings: {deadline: ...}' to wait it out",
                )
            self._sleep(wait)
        raise BackendError(f"{what}: GitHub kept rate-limiting the request; giving up")

    def _once(
        self, method: str, path: str, bearer: str, body: Mapping[str, Any] | None, what: str
    ) -> Reply:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - api_url is checked to be http(s)
            self.api_url + path, data=data, method=method
        )
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", API_VERSION)
        request.add_header("User-Agent", "jobsecrets")
        request.add_unredirected_header("Authorization", f"Bearer {bearer}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self._timeout()) as response:
                return _reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return _reply(error.code, error.headers, error.read())
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, ssl.SSLError):
                raise BackendError(
                    f"{what}: TLS verification of {self.api_url} failed",
                    hint="set 'ca_cert:' to the CA bundle that signed your GitHub Enterprise Server",
                ) from None
            raise BackendError(
                f"{what}: cannot reach {self.api_url}: {type(reason).__name__}"
            ) from None


def _reply(status: int, headers: Any, raw: bytes) -> Reply:
    lowered = {str(k).lower(): str(v) for k, v in (headers.items() if headers else [])}
    body: Any = None
    if raw:
        try:
            body = jsonsafe.loads(raw)
        except ValueError:
            body = None
    return Reply(status, lowered, body)


def _number(value: str | None) -> float | None:
    """A header's number; None when absent or no finite number (``inf`` waited for ever, and
    ``int(inf)`` in the deadline message was an OverflowError)."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _rate_limit_wait(reply: Reply, secondary_waits: int) -> float | None:
    """Seconds GitHub asks to wait before retrying, or ``None`` when the answer is no rate limit."""
    if reply.status not in (403, 429):
        return None
    headers = reply.headers
    retry_after = _number(headers.get("retry-after"))
    reset = _number(headers.get("x-ratelimit-reset"))
    exhausted = headers.get("x-ratelimit-remaining") == "0"
    secondary = "secondary rate limit" in reply.message.lower()
    if retry_after is not None:
        return max(0.0, retry_after)
    if exhausted and reset is not None:
        return max(0.0, reset - time.time()) + 0.5
    if secondary or (reply.status == 429):
        # GitHub: "wait for at least one minute", longer each time it happens again.
        return 60.0 * float(2 ** min(secondary_waits, 6))
    return None
