"""A requests adapter that reads a store's answer only up to a size: a store cannot fill memory.

requests reads a whole body before hvac parses it: a Vault that answers without end (chunked,
or a Content-Length it never ends) grew the process by gigabytes until the deadline, and on a
CI runner the out-of-memory killer then ends the job before anything is revoked. Vault refuses
requests over 32 MiB by default and its answers are documents of that order; past
:data:`MAX_ANSWER` (:mod:`..answer_size`, the bound of every backend) the answer is refused, unread. Imported with the client (requests is loaded
by then), never at start-up.
"""

from __future__ import annotations

__all__ = ["MAX_ANSWER", "AnswerTooLarge", "BoundedAdapter"]

from typing import Any

import requests
import requests.adapters

from ..answer_size import MAX_ANSWER, too_large

_CHUNK = 1 << 16


class AnswerTooLarge(requests.exceptions.RequestException):
    """The store's answer was larger than the adapter reads."""


class BoundedAdapter(requests.adapters.HTTPAdapter):
    """:class:`requests.adapters.HTTPAdapter` whose answers are read up to ``limit`` bytes."""

    def __init__(self, *args: Any, limit: int = MAX_ANSWER, **kwargs: Any) -> None:
        self.limit = limit
        super().__init__(*args, **kwargs)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        """Send ``request``; unless the caller streams, read the answer here, bounded."""
        response = super().send(request, stream=True, **kwargs)
        if stream:
            return response
        declared = response.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.limit:
            response.close()
            raise AnswerTooLarge(self._too_large(), response=response)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self.limit:
                response.close()
                raise AnswerTooLarge(self._too_large(), response=response)
            chunks.append(chunk)
        # What requests itself stores once it has read a body (Response.content).
        response._content = b"".join(chunks)
        response._content_consumed = True
        response.close()  # the connection goes back to the pool, as after a full read
        return response

    def _too_large(self) -> str:
        return too_large(self.limit)
