"""A local server that answers like GitHub's REST API for the endpoints the ``github`` backend uses.

Use it to test a spec with ``type: github`` without GitHub: start it with the App's *public* key and the
installations you want, point the backend's ``api_url`` at :attr:`GithubApiServer.url`, and look at
what it saw (:attr:`GithubApiServer.tokens`, :meth:`GithubApiServer.revoked`). Standard library only.

Written from GitHub's documentation of these endpoints; the behaviour follows it:

* JWT for an App: RS256, verified with the App's public key; ``iss`` is the App id or client id;
  ``iat`` must not be in the future and ``exp`` no more than 10 minutes ahead, by the server's clock
  (:attr:`GithubApiServer.clock_offset` moves that clock to test skew).
  https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
* ``GET /app`` (the authenticated App), ``GET /repos/{owner}/{repo}/installation``,
  ``GET /orgs/{org}/installation``, ``GET /users/{username}/installation`` (JWT; 404 when the App
  is not installed there), ``POST /app/installations/{installation_id}/access_tokens`` (JWT; body
  ``repositories``/``permissions``; 201 with ``token``, ``expires_at`` one hour ahead,
  ``permissions``, ``repository_selection``, ``repositories``; 422 when the permissions or
  repositories are beyond the installation's; without ``permissions`` the token gets all of the
  installation's, as GitHub does).
  https://docs.github.com/rest/apps/apps
  https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app
* ``DELETE /installation/token`` (the installation token authenticates itself; 204 No Content; an
  expired or revoked token answers 401 ``Bad credentials``), ``GET /installation/repositories``
  (what a job does with its token). https://docs.github.com/rest/apps/installations
* ``X-GitHub-Api-Version``: absent means 2022-11-28; an unsupported version answers 400.
  https://docs.github.com/rest/overview/api-versions
* Rate limits (:meth:`GithubApiServer.rate_limit`): primary answers 403 with
  ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset``; secondary answers 403 (or 429) with a
  "secondary rate limit" message and ``retry-after``.
  https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
* Error bodies are ``{"message": ..., "documentation_url": ..., "status": "NNN"}``.

GitHub Enterprise Server serves the same API under ``/api/v3``: pass ``prefix="/api/v3"``.

Run it on its own (``python -m jobsecrets.testing.github_api --app-id 1 --public-key app.pub.pem
--install acme/app:contents=write,issues=write``) to try a spec by hand; it prints its URL.
"""

from __future__ import annotations

__all__ = ["GithubApiServer", "Installation", "IssuedToken", "main"]

import argparse
import contextlib
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SUPPORTED_VERSIONS = ("2022-11-28",)
LEVELS = ("read", "write", "admin")
DOCS = "https://docs.github.com/rest"


@dataclass
class Installation:
    """An installation of the App on an account, with the repositories and permissions it holds."""

    id: int
    account: str
    repositories: list[str]
    permissions: dict[str, str]
    account_type: str = "Organization"


@dataclass
class IssuedToken:
    """A token the server minted; ``revoked_at`` is set by ``DELETE /installation/token``."""

    installation_id: int
    expires_at: float
    permissions: dict[str, str]
    repositories: list[str]
    revoked_at: float | None = None
    uses: int = 0


@dataclass
class _RateLimit:
    kind: str
    status: int
    wait: float


@dataclass
class _Seen:
    method: str
    path: str
    api_version: str | None
    auth: str = field(default="")  # "jwt", "token" or "" (never the credential itself)


class GithubApiServer:
    """The server; use as a context manager (it runs in a thread on 127.0.0.1, a free port)."""

    def __init__(
        self,
        app_id: int,
        public_key_pem: str | bytes,
        *,
        client_id: str = "Iv23liJobsecretsTest",
        slug: str = "jobsecrets-test",
        prefix: str = "",
        token_ttl: int = 3600,
    ) -> None:
        self.app_id = app_id
        self.client_id = client_id
        self.slug = slug
        self.prefix = prefix.rstrip("/")
        self.token_ttl = token_ttl
        self.public_key_pem = (
            public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        )
        #: Seconds the server's clock is ahead of this machine's (negative: behind).
        self.clock_offset = 0.0
        #: The next token minted is this text instead of a fresh ``ghs_...`` (a test of what a
        #: hostile or broken server may answer); used once.
        self.next_token: str | None = None
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.requests: list[_Seen] = []
        self._limits: list[_RateLimit] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- set-up and inspection ---------------------------------------------------------------

    def install(
        self,
        account: str,
        repositories: list[str],
        permissions: Mapping[str, str],
        *,
        account_type: str = "Organization",
    ) -> Installation:
        """Install the App on ``account`` for ``repositories`` with ``permissions``."""
        with self._lock:
            installation = Installation(
                id=10_000 + len(self.installations) + 1,
                account=account,
                repositories=list(repositories),
                permissions=dict(permissions),
                account_type=account_type,
            )
            self.installations[installation.id] = installation
        return installation

    def rate_limit(
        self, count: int = 1, *, kind: str = "primary", wait: float = 1.0, status: int = 403
    ) -> None:
        """Answer the next ``count`` requests with a ``primary`` or ``secondary`` rate limit."""
        with self._lock:
            self._limits.extend(_RateLimit(kind, status, wait) for _ in range(count))

    def now(self) -> float:
        """The server's clock."""
        return time.time() + self.clock_offset

    def active(self) -> list[IssuedToken]:
        """Tokens neither revoked nor expired."""
        with self._lock:
            return [
                t
                for t in self.tokens.values()
                if t.revoked_at is None and t.expires_at > self.now()
            ]

    def revoked(self) -> list[IssuedToken]:
        """Tokens revoked with ``DELETE /installation/token``."""
        with self._lock:
            return [t for t in self.tokens.values() if t.revoked_at is not None]

    def seen(self, method: str, pattern: str) -> list[_Seen]:
        """Requests whose method is ``method`` and path matches the regex ``pattern``."""
        with self._lock:
            return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    @property
    def url(self) -> str:
        """The API root to give as ``api_url``."""
        assert self._server is not None, "start() first"
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}{self.prefix}"

    def start(self) -> GithubApiServer:
        """Serve on 127.0.0.1 and a free port, in a daemon thread."""
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GithubApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the API --------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """Answer one request: (status, headers, JSON body or ``None``)."""
        version = headers.get("x-github-api-version")
        auth = headers.get("authorization", "")
        credential = auth.split(" ", 1)[1].strip() if " " in auth else ""
        kind = "jwt" if credential.count(".") == 2 else ("token" if credential else "")
        with self._lock:
            self.requests.append(_Seen(method, path, version, kind))
            limit = self._limits.pop(0) if self._limits else None
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return _error(404, "Not Found")
            path = path[len(self.prefix) :]
        if version is not None and version not in SUPPORTED_VERSIONS:
            return _error(
                400,
                f"Unsupported 'X-GitHub-Api-Version' header: {version[:40]}. "
                f"Supported versions are: {', '.join(SUPPORTED_VERSIONS)}",
            )
        if limit is not None:
            return self._limited(limit)
        path = path.split("?", 1)[0]
        if method == "DELETE" and path == "/installation/token":
            return self._revoke(credential)
        if method == "GET" and path == "/installation/repositories":
            return self._repositories(credential)
        problem = self.jwt_problem(credential)
        if problem is not None:
            return _error(401, problem)
        if method == "GET" and path == "/app":
            return 200, {}, self._app()
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)/installation", path)
        if method == "GET" and match:
            return self._find(match.group(1), match.group(2))
        match = re.fullmatch(r"/(orgs|users)/([^/]+)/installation", path)
        if method == "GET" and match:
            wanted = "Organization" if match.group(1) == "orgs" else "User"
            return self._find(match.group(2), None, wanted)
        match = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if method == "POST" and match:
            return self._mint(int(match.group(1)), body)
        return _error(404, "Not Found")

    def _limited(self, limit: _RateLimit) -> tuple[int, dict[str, str], Any]:
        reset = str(int(self.now() + limit.wait + 0.999))
        if limit.kind == "primary":
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
            return _error(
                limit.status, "API rate limit exceeded for installation.", headers=headers
            )
        headers = {"retry-after": str(int(limit.wait)), "x-ratelimit-remaining": "4000"}
        return _error(
            limit.status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
            "again.",
            headers=headers,
        )

    def jwt_problem(self, credential: str) -> str | None:
        """Why GitHub would refuse this App JWT, or ``None``."""
        import jwt

        if not credential:
            return "Requires authentication"
        try:
            claims = jwt.decode(
                credential,
                self.public_key_pem,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            return "A JSON web token could not be decoded"
        now = self.now()
        iss = claims.get("iss")
        if str(iss) not in (str(self.app_id), self.client_id):
            return "A JSON web token could not be decoded"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, (int, float)) or iat > now:
            return (
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued."
            )
        if not isinstance(exp, (int, float)) or exp <= now:
            return (
                "'Expiration time' claim ('exp') must be a numeric value representing the future "
                "time at which the assertion expires."
            )
        if exp > now + 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        return None

    def _app(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "slug": self.slug,
            "client_id": self.client_id,
            "name": self.slug,
            "owner": {"login": "jobsecrets", "type": "Organization"},
        }

    def _installation_body(self, installation: Installation) -> dict[str, Any]:
        return {
            "id": installation.id,
            "app_id": self.app_id,
            "app_slug": self.slug,
            "account": {"login": installation.account, "type": installation.account_type},
            "target_type": installation.account_type,
            "repository_selection": "selected",
            "permissions": dict(installation.permissions),
            "access_tokens_url": f"{self.prefix}/app/installations/{installation.id}/access_tokens",
        }

    def _find(
        self, owner: str, repo: str | None, account_type: str | None = None
    ) -> tuple[int, dict[str, str], Any]:
        for installation in list(self.installations.values()):
            if installation.account.lower() != owner.lower():
                continue
            if account_type is not None and installation.account_type != account_type:
                continue
            if repo is not None and repo.lower() not in (
                r.lower() for r in installation.repositories
            ):
                continue
            return 200, {}, self._installation_body(installation)
        return _error(
            404,
            "Not Found",
            doc="/apps/apps#get-a-repository-installation-for-the-authenticated-app",
        )

    def _mint(self, installation_id: int, raw: bytes) -> tuple[int, dict[str, str], Any]:
        installation = self.installations.get(installation_id)
        if installation is None:
            return _error(404, "Not Found")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _error(400, "Problems parsing JSON")
        if not isinstance(body, dict):
            return _error(400, "Problems parsing JSON")
        wanted_repos = body.get("repositories")
        if wanted_repos is None:
            repositories = list(installation.repositories)
        else:
            known = {r.lower(): r for r in installation.repositories}
            if not isinstance(wanted_repos, list) or any(
                not isinstance(r, str) or r.lower() not in known for r in wanted_repos
            ):
                return _error(
                    422,
                    "There is at least one repository that does not exist or is not accessible "
                    "to the parent installation.",
                )
            repositories = [known[r.lower()] for r in wanted_repos]
        wanted = body.get("permissions")
        if wanted is None:
            permissions = dict(installation.permissions)
        else:
            if not isinstance(wanted, dict):
                return _error(422, "Invalid request.")
            held = installation.permissions
            for name, level in wanted.items():
                if (
                    level not in LEVELS
                    or name not in held
                    or (LEVELS.index(level) > LEVELS.index(held[name]))
                ):
                    return _error(
                        422, "The permissions requested are not granted to this installation."
                    )
            permissions = dict(wanted)
        permissions.setdefault("metadata", "read")
        token = "ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
        if self.next_token is not None:
            token, self.next_token = self.next_token, None
        expires = self.now() + self.token_ttl
        with self._lock:
            self.tokens[token] = IssuedToken(installation_id, expires, permissions, repositories)
        return (
            201,
            {},
            {
                "token": token,
                "expires_at": datetime.fromtimestamp(expires, tz=timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "permissions": permissions,
                "repository_selection": "selected",
                "repositories": [
                    {"id": 1_000 + i, "name": r, "full_name": f"{installation.account}/{r}"}
                    for i, r in enumerate(repositories)
                ],
            },
        )

    def _live(self, credential: str) -> IssuedToken | None:
        with self._lock:
            token = self.tokens.get(credential)
            if token is None or token.revoked_at is not None or token.expires_at <= self.now():
                return None
            token.uses += 1
            return token

    def _revoke(self, credential: str) -> tuple[int, dict[str, str], Any]:
        token = self._live(credential)
        if token is None:
            return _error(401, "Bad credentials")
        with self._lock:
            token.revoked_at = self.now()
        return 204, {}, None

    def _repositories(self, credential: str) -> tuple[int, dict[str, str], Any]:
        token = self._live(credential)
        if token is None:
            return _error(401, "Bad credentials")
        installation = self.installations[token.installation_id]
        repositories = [
            {"name": r, "full_name": f"{installation.account}/{r}"} for r in token.repositories
        ]
        return 200, {}, {"total_count": len(repositories), "repositories": repositories}


def _error(
    status: int, message: str, *, headers: dict[str, str] | None = None, doc: str = ""
) -> tuple[int, dict[str, str], Any]:
    return (
        status,
        dict(headers or {}),
        {
            "message": message,
            "documentation_url": DOCS + doc,
            "status": str(status),
        },
    )


class _Handler(BaseHTTPRequestHandler):
    api: GithubApiServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, payload = self.api.handle(self.command, self.path, headers, body)
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("X-GitHub-Api-Version-Selected", SUPPORTED_VERSIONS[0])
        for name, value in extra.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would name paths only, but tests want clean output."""


def _parse_install(text: str) -> tuple[str, list[str], dict[str, str]]:
    """``OWNER/REPO[,REPO]:perm=level[,perm=level]``."""
    where, _, perms = text.partition(":")
    owner, _, repos = where.partition("/")
    permissions = dict(p.split("=", 1) for p in perms.split(",") if "=" in p)
    return owner, [r for r in repos.split(",") if r], permissions


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted, printing the URL to give as ``api_url``."""
    parser = argparse.ArgumentParser(prog="python -m jobsecrets.testing.github_api")
    parser.add_argument("--app-id", type=int, required=True)
    parser.add_argument("--public-key", required=True, help="PEM file of the App's public key")
    parser.add_argument("--prefix", default="", help="'/api/v3' to look like GHES")
    parser.add_argument(
        "--install",
        action="append",
        default=[],
        help="OWNER/REPO[,REPO]:perm=level[,perm=level] (repeatable)",
    )
    args = parser.parse_args(argv)
    with open(args.public_key, "rb") as handle:
        server = GithubApiServer(args.app_id, handle.read(), prefix=args.prefix)
    for spec in args.install:
        owner, repos, permissions = _parse_install(spec)
        server.install(owner, repos, permissions)
    with server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
