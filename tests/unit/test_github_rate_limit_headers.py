"""GitHub's rate-limit headers, as a hostile or broken server could send them.

``Retry-After: inf`` (or ``x-ratelimit-reset: 1e999``) parsed as an infinite wait; the deadline
check then wrote ``int(wait)`` into its message: an OverflowError, "internal error", instead of
the rate-limit error. A real HTTP server here (stdlib), answering every request the same way.
"""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from jobsecrets.backends.github._http import GithubHttp
from jobsecrets.errors import BackendError
from support.http_stubs import serving


@contextmanager
def answering(status: int, headers: dict[str, str]) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"message": "API rate limit exceeded"}'
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


@pytest.mark.parametrize("retry_after", ["inf", "1e999", "-inf"])
def test_an_endless_retry_after_is_a_rate_limit_error_not_a_crash(retry_after: str) -> None:
    slept: list[float] = []
    with answering(429, {"Retry-After": retry_after}) as url:
        client = GithubHttp(url, timeout=lambda: 5.0, time_left=lambda: 30.0, sleep=slept.append)
        with pytest.raises(BackendError) as caught:
            client.call("GET", "/app", bearer="not-a-real-jwt", what="list installations")
    # No number: GitHub's own rule for a 429 (wait a minute), past this deadline of 30 s.
    assert "rate-limited the request" in caught.value.message
    assert slept == []


def test_an_endless_reset_time_is_no_wait_for_ever() -> None:
    """A 403 whose reset time is no number is no rate limit we can wait out: returned as is."""
    slept: list[float] = []
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1e999"}
    with answering(403, headers) as url:
        client = GithubHttp(url, timeout=lambda: 5.0, time_left=lambda: 30.0, sleep=slept.append)
        reply = client.call("GET", "/app", bearer="not-a-real-jwt", what="list installations")
    assert reply.status == 403
    assert slept == []
