"""A stand-in Vault/OpenBao that answers what a test scripts: a hostile or broken store.

A real OpenBao never sends ``{"data": {"keys": 5}}`` or a lease id with a line break in it, but a
proxy, a plugin or a compromised server can, and jobsecrets must treat the answer as hostile. Each
route is ``(METHOD, PATH)`` (the path after ``/v1/``) -> ``(status, JSON body)`` (``bytes``: sent as
they are); a route ending in
``*`` matches every path that starts with what precedes it. Unscripted requests answer 404, as Vault
does for a path it does not know. Every request is recorded (method, path, JSON body).

Runs in a thread of the test process on 127.0.0.1 and stops with :meth:`VaultStub.close` (or the
``with`` block): nothing is left running.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from typing_extensions import Self

Route = tuple[int, Any]

#: What a KV v2 mount at ``secret/`` answers to the mount lookup.
KV2_MOUNT: Route = (200, {"data": {"path": "secret/", "type": "kv", "options": {"version": "2"}}})
#: The same for KV v1.
KV1_MOUNT: Route = (200, {"data": {"path": "secret/", "type": "kv", "options": {"version": "1"}}})
#: A lookup-self answer of a valid token.
LOOKUP_SELF: Route = (200, {"data": {"accessor": "acc-1", "policies": ["default"], "ttl": 3600}})


class VaultStub:
    """``with VaultStub({("GET", "secret/data/app"): (200, {...})}) as vault: use(vault.url)``."""

    def __init__(self, routes: Mapping[tuple[str, str], Route]) -> None:
        self.routes = dict(routes)
        self.routes.setdefault(("GET", "auth/token/lookup-self"), LOOKUP_SELF)
        self.requests: list[tuple[str, str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                path = self.path.split("?", 1)[0].removeprefix("/v1/")
                # hvac sends LIST as GET ?list=true on some versions: either is a LIST.
                method = "LIST" if "list=true" in self.path else self.command
                stub.requests.append((method, path, body))
                status, answer = stub.route(method, path)
                if isinstance(answer, bytes):
                    data = answer  # a body as the test wrote it (numbers JSON cannot round-trip)
                else:
                    data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_LIST = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reads self.requests

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def route(self, method: str, path: str) -> Route:
        """The scripted answer to ``method path``; 404 with no errors when there is none."""
        if (method, path) in self.routes:
            return self.routes[(method, path)]
        for (want, pattern), answer in self.routes.items():
            if want == method and pattern.endswith("*") and path.startswith(pattern[:-1]):
                return answer
        return 404, {"errors": []}

    def paths(self, method: str) -> list[str]:
        """The paths asked for with ``method``, in order."""
        return [path for m, path, _ in self.requests if m == method]

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
