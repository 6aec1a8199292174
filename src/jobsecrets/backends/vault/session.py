"""The requests session the Vault client sends with: redirects on the same origin only.

hvac follows redirects (requests, up to 30 hops, https -> http too), and requests strips only
``Authorization`` when the host changes: ``X-Vault-Token`` and a login body (secret_id, the CI's
identity token) went wherever a ``307`` pointed. See :mod:`jobsecrets.redirects`.

Imported when the client is built, never at module level of the backend: it pulls requests in.
"""

from __future__ import annotations

__all__ = ["SameOriginSession"]

import requests

from ...redirects import check_redirect


class SameOriginSession(requests.Session):
    """A :class:`requests.Session` that refuses (:class:`~jobsecrets.redirects.RedirectRefused`)
    to follow a redirect to another scheme, host or port."""

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """Refuse a change of origin before the redirected request, headers and body, is sent.

        requests calls this on every hop, with the new URL already set and before sending, so
        raising here stops the request from leaving.
        """
        check_redirect(response.url, prepared_request.url or "")
        super().rebuild_auth(prepared_request, response)
