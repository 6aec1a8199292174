"""GitHub's OIDC request token goes to the origin of ACTIONS_ID_TOKEN_REQUEST_URL only.

urlopen follows a redirect anywhere (https -> http too) and copies every header: a ``302`` to
another host got ``Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN``, and the token
endpoint there could mint identity tokens as this job. The configured endpoint here is a
stand-in that redirects; the other origin is a stand-in GitHub token endpoint
(support.oidc.GithubTokenServer) that would have issued a token for the request token.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and no value it compared.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from jobsecrets.errors import IdentityError
from jobsecrets.platforms.github import REQUEST_TOKEN_ENV, REQUEST_URL_ENV, request_oidc_token
from support.http_stubs import Answer, AnsweringServer, Seen, redirect_to
from support.oidc import GithubTokenServer

REQUEST_TOKEN = "canary-request-token-5mZ"


def shown(text: str) -> str:
    """Text for a failure message, with any canary in it hidden."""
    return re.sub(r"\S*canary\S*", "***", text[-500:])


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_is_refused(status: int) -> None:
    with (
        GithubTokenServer(request_token=REQUEST_TOKEN) as other,
        AnsweringServer(redirect_to(other.url.split("/token")[0], status)) as endpoint,
    ):
        env = {
            REQUEST_URL_ENV: endpoint.url + "/token?api-version=2.0",
            REQUEST_TOKEN_ENV: REQUEST_TOKEN,
        }
        started = time.monotonic()
        with pytest.raises(IdentityError) as caught:
            request_oidc_token(env, "vault", timeout=30)
    assert other.requests == [], "the request followed the redirect to the other origin"
    assert other.issued == 0
    assert len(endpoint.seen) == 1, "retried: the endpoint will redirect again"
    assert time.monotonic() - started < 5
    message = str(caught.value)
    host = other.url.split("/token")[0]
    assert f"redirected the request to {host}" in message, shown(message)
    assert (REQUEST_TOKEN in message) is False, "the request token is in the message"


def test_a_redirect_on_the_same_origin_is_followed_with_the_bearer() -> None:
    def answer(seen: Seen) -> Answer:
        if seen.path.startswith("/token"):
            return 302, {"Location": "/moved" + seen.path}, b""
        return 200, {"Content-Type": "application/json"}, json.dumps({"value": "a.b.c"}).encode()

    with AnsweringServer(answer) as endpoint:
        env = {
            REQUEST_URL_ENV: endpoint.url + "/token?api-version=2.0",
            REQUEST_TOKEN_ENV: REQUEST_TOKEN,
        }
        assert request_oidc_token(env, "vault", timeout=30) == "a.b.c"
    assert [s.path for s in endpoint.seen] == [
        "/token?api-version=2.0&audience=vault",
        "/moved/token?api-version=2.0&audience=vault",
    ]
    sent = endpoint.seen[1].headers.get("authorization") == f"Bearer {REQUEST_TOKEN}"
    assert sent is True, "the bearer did not follow the same-origin redirect"
