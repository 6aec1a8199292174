"""Test helpers for CI identity tokens: a local RSA key, RS256 signing and a GitHub-style token endpoint.

OpenBao's ``auth/jwt`` verifies these tokens for real through ``jwt_validation_pubkeys``
(:func:`public_pem`), so tests exercise the same path as a CI job without GitHub or GitLab.
"""

from __future__ import annotations

__all__ = [
    "REQUEST_TOKEN",
    "GithubTokenServer",
    "default_claims",
    "generate_key",
    "public_pem",
    "sign",
]

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://token.actions.githubusercontent.com"
# The bearer the fake endpoint expects, as GitHub's ACTIONS_ID_TOKEN_REQUEST_TOKEN.
REQUEST_TOKEN = "test-request-token-not-a-real-secret"


def generate_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (the smallest size OpenBao and pyjwt accept without warnings)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The public half as PEM, ready for ``jwt_validation_pubkeys``."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def default_claims(
    *,
    audience: str | list[str] = "vault",
    repository: str = "acme/app",
    ref: str = "refs/heads/main",
    ttl: int = 300,
    **extra: Any,
) -> dict[str, Any]:
    """GitHub-like claims for a token valid ``ttl`` seconds from now; ``extra`` overrides or adds."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": f"repo:{repository}:ref:{ref}",
        "aud": audience,
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl,
        "jti": f"jti-{now}-{id(extra)}",
        "repository": repository,
        "repository_owner": repository.split("/")[0],
        "ref": ref,
        "ref_type": "branch",
        "workflow": "ci",
        "actor": "octocat",
        "run_id": "1",
    }
    claims.update(extra)
    return claims


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str | None = None) -> str:
    """Sign ``claims`` with RS256 (what GitHub and GitLab use)."""
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


class GithubTokenServer:
    """A local stand-in for GitHub's OIDC token endpoint (``ACTIONS_ID_TOKEN_REQUEST_URL``).

    Checks the bearer request token, reads ``audience`` from the query, answers
    ``{"value": <signed token>}`` with ``claims_factory(audience)``. ``fail_first`` makes the
    first N requests answer 500 to exercise retries. ``requests`` records each audience asked for.

    Use as a context manager; :meth:`env` gives the two variables a GitHub job would have.
    """

    def __init__(
        self,
        key: rsa.RSAPrivateKey | None = None,
        *,
        claims: dict[str, Any] | None = None,
        claims_factory: Callable[[str | None], dict[str, Any]] | None = None,
        fail_first: int = 0,
        fail_status: int = 500,
        request_token: str = REQUEST_TOKEN,
    ) -> None:
        self.key = key or generate_key()
        self._claims = claims
        self._factory = claims_factory
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.request_token = request_token
        self.requests: list[str | None] = []  # audience of every request, failed ones included
        self.issued: int = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def claims_for(self, audience: str | None) -> dict[str, Any]:
        """The claims of the next token for ``audience``: fresh times on every call."""
        if self._factory is not None:
            return self._factory(audience)
        claims = default_claims(audience=audience or "https://github.com/acme")
        if self._claims:
            claims.update(self._claims)
        return claims

    @property
    def url(self) -> str:
        """The request URL; like GitHub's, it already has a query string."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/token?api-version=2.0"

    def env(self) -> dict[str, str]:
        """``ACTIONS_ID_TOKEN_REQUEST_URL``/``_TOKEN`` plus ``GITHUB_ACTIONS=true``."""
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean; tokens are never logged anyway

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                audience = query.get("audience", [None])[0]
                with outer._lock:
                    outer.requests.append(audience)
                    failing = outer.fail_first > 0
                    if failing:
                        outer.fail_first -= 1
                if parsed.path != "/token" or query.get("api-version") != ["2.0"]:
                    self._reply(404, {"message": "not found"})
                elif self.headers.get("Authorization") != f"Bearer {outer.request_token}":
                    self._reply(401, {"message": "bad request token"})
                elif failing:
                    self._reply(outer.fail_status, {"message": "try again"})
                else:
                    token = sign(outer.claims_for(audience), outer.key)
                    with outer._lock:
                        outer.issued += 1
                    self._reply(200, {"count": 1, "value": token})

        return Handler

    def __enter__(self) -> GithubTokenServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown (and so each test) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
