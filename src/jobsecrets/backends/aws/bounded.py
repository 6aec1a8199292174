"""botocore's HTTP session with its answers read only up to a size: an endpoint cannot fill memory.

botocore reads a whole answer before it parses it (``URLLib3Session.send`` joins the raw stream,
``AWSResponse.content``): an endpoint at ``AWS_ENDPOINT_URL`` (or a proxy before AWS) answering
without end, chunked or with a Content-Length it never reaches, grew the process by gigabytes;
on a CI runner the out-of-memory killer then ends the job. Each client's session is wrapped in a
:class:`BoundedSession`: the request goes out as botocore sends those whose answer it streams,
and the answer is read here, refused past :data:`~jobsecrets.backends.answer_size.MAX_ANSWER`.

botocore has no public hook for this. A ``before-send`` handler may answer in place of sending,
but every handler of the event runs (moto's in-process mock answers there too) and none is given
the session that sends. So this relies on private details of botocore: a client's
``_endpoint.http_session`` sends its requests, and a request whose ``stream_output`` is set comes
back unread. tests/unit/test_aws_answer_size.py fails when either changes; if a botocore installed
beside a newer jobsecrets no longer has them, answers are read unbounded, as before, rather than
every AWS read failing.

Imported only where a botocore client is made: it imports botocore.
"""

from __future__ import annotations

__all__ = ["AnswerTooLarge", "BoundedSession", "bound_answers"]

import logging
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions
import urllib3.exceptions
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from ...addresses import shown_address
from ..answer_size import MAX_ANSWER, too_large

log = logging.getLogger("jobsecrets")

_CHUNK = 1 << 16


class AnswerTooLarge(Exception):
    """An answer longer than :class:`BoundedSession` reads; says where from, and the limit."""

    def __init__(self, origin: str, limit: int) -> None:
        super().__init__(f"{origin} sent {too_large(limit)}")
        self.origin = origin
        self.limit = limit


class _ReadAnswer(AWSResponse):
    """An answer whose body :class:`BoundedSession` read: ``content`` is that body."""

    def __init__(self, response: AWSResponse, body: bytes) -> None:
        # The stubs say HTTPHeaders; AWSResponse copies any mapping (its own HeadersDict too).
        headers: Any = response.headers
        super().__init__(response.url, response.status_code, headers, response.raw)
        self._body = body

    @property
    def content(self) -> bytes:
        """The body as read, whole and within the limit."""
        return self._body


class BoundedSession:
    """A botocore HTTP session (``URLLib3Session``) whose answers are read up to ``limit`` bytes.

    Everything but :meth:`send` is the wrapped session's (its pools, proxies and TLS settings),
    so connections opened ahead (:mod:`jobsecrets.backends.preconnect`) serve it all the same.
    """

    def __init__(self, inner: Any, limit: int = MAX_ANSWER) -> None:
        self._inner = inner
        self.limit = limit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def send(self, request: AWSPreparedRequest) -> AWSResponse:
        """Send ``request``; unless the caller streams the answer, read it here, bounded."""
        if request.stream_output:
            return self._inner.send(request)  # type: ignore[no-any-return]
        request.stream_output = True
        try:
            response: AWSResponse = self._inner.send(request)
        finally:
            request.stream_output = False  # a retry sends the same request again
        return _ReadAnswer(response, self._read(request, response))

    def _read(self, request: AWSPreparedRequest, response: AWSResponse) -> bytes:
        raw = response.raw
        parts = urlsplit(request.url)
        origin = shown_address(f"{parts.scheme}://{parts.netloc}")
        declared = response.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.limit:
            _discard(raw)
            raise AnswerTooLarge(origin, self.limit)
        body = bytearray()
        try:
            for chunk in raw.stream(_CHUNK):
                body += chunk
                if len(body) > self.limit:
                    _discard(raw)
                    raise AnswerTooLarge(origin, self.limit)
        except AnswerTooLarge:
            raise
        # What URLLib3Session.send makes of the same failures while it reads an answer itself,
        # so retries and messages see what they saw before.
        except urllib3.exceptions.SSLError as error:
            raise botocore.exceptions.SSLError(endpoint_url=request.url, error=error) from None
        except urllib3.exceptions.ReadTimeoutError as error:
            raise botocore.exceptions.ReadTimeoutError(
                endpoint_url=request.url, error=error
            ) from None
        except urllib3.exceptions.ProtocolError as error:
            raise botocore.exceptions.ConnectionClosedError(
                error=error, request=request, endpoint_url=request.url
            ) from None
        except Exception as error:
            raise botocore.exceptions.HTTPClientError(error=error) from None
        return bytes(body)


def _discard(raw: Any) -> None:
    """Close the connection an answer still arrives on (never read to its end), and give the
    pool its place back, as ``requests.Response.close`` does."""
    raw.close()
    raw.release_conn()


def bound_answers(client: Any, limit: int = MAX_ANSWER) -> None:
    """Read ``client``'s answers through a :class:`BoundedSession` from now on."""
    endpoint = getattr(client, "_endpoint", None)
    session = getattr(endpoint, "http_session", None)
    if endpoint is None or not callable(getattr(session, "send", None)):
        # botocore changed (see the module docstring): the tests fail; a user's reads still work.
        log.debug("botocore's HTTP session not found: AWS answers are read unbounded")
        return
    if not isinstance(session, BoundedSession):
        endpoint.http_session = BoundedSession(session, limit)
