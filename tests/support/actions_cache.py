"""A local stand-in for GitHub's Actions cache service v2 and the blob store behind it.

act serves only the legacy v1 cache API, so the v2 path of ``actions/inject/cache.js`` is tested
against this server, written from the published contract (actions/toolkit, ``packages/cache``):

- ``src/generated/results/api/v1/cache.twirp-client.ts``: Twirp JSON calls, ``POST
  /twirp/github.actions.results.api.v1.CacheService/<Method>``, bodies in proto field names
  (``toJson(..., {useProtoFieldName: true})``);
- ``src/generated/results/api/v1/cache.ts``: the messages. CreateCacheEntry ``{key, version}`` ->
  ``{ok, signed_upload_url, message}``; FinalizeCacheEntryUpload ``{key, version, size_bytes}``
  (int64, a JSON string) -> ``{ok, entry_id, message}``; GetCacheEntryDownloadURL ``{key,
  restore_keys, version}`` -> ``{ok, signed_download_url, matched_key}``;
- ``src/internal/shared/cacheTwirpClient.ts``: ``Authorization: Bearer $ACTIONS_RUNTIME_TOKEN``;
- ``src/internal/uploadUtils.ts``: the archive goes to the signed URL with the Azure SDK, one Put Blob
  (``PUT`` with ``x-ms-blob-type: BlockBlob``) below 128 MiB; the download is a GET of the signed URL.

Like the real service, an entry can be created once per key and version, is readable only once
finalized with the size that was uploaded, and a lookup matches the key exactly or, failing that,
the newest entry a restore key prefixes. Signed URLs carry a random ``sig`` that the blob endpoint
checks. ``fail`` makes every call answer 500 (a cache that is down); ``calls`` records the methods.
"""

from __future__ import annotations

__all__ = ["RUNTIME_TOKEN", "CacheEntry", "CacheServiceV2"]

import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICE = "github.actions.results.api.v1.CacheService"
# What a job's ACTIONS_RUNTIME_TOKEN is here (a test value, not a credential).
RUNTIME_TOKEN = "test-runtime-token-not-a-real-secret"


@dataclass
class CacheEntry:
    """One entry: its blob, whether it was finalized, and the signature of its blob URLs."""

    key: str
    version: str
    sig: str
    blob: bytes | None = None
    finalized: bool = False
    order: int = 0


class CacheServiceV2:
    """The Twirp CacheService and its blob endpoint on one loopback port; a context manager."""

    def __init__(self, token: str = RUNTIME_TOKEN) -> None:
        self.token = token
        self.fail = False
        self.entries: dict[tuple[str, str], CacheEntry] = {}
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``ACTIONS_RESULTS_URL``: the service's origin, with the trailing slash GitHub gives it."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def env(self) -> dict[str, str]:
        """What a github.com job has for the v2 cache (``@actions/cache`` config.ts)."""
        return {
            "ACTIONS_RESULTS_URL": self.url,
            "ACTIONS_RUNTIME_TOKEN": self.token,
            "ACTIONS_CACHE_SERVICE_V2": "true",
        }

    def _rpc(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        key, version = str(body.get("key", "")), str(body.get("version", ""))
        with self._lock:
            if method == "CreateCacheEntry":
                if not key or not version or (key, version) in self.entries:
                    return {"ok": False, "message": "entry exists or request invalid"}
                entry = CacheEntry(key, version, secrets.token_hex(16), order=len(self.entries))
                self.entries[(key, version)] = entry
                return {"ok": True, "signed_upload_url": self._blob_url(entry)}
            if method == "FinalizeCacheEntryUpload":
                entry_or_none = self.entries.get((key, version))
                size = int(body.get("size_bytes", "-1"))
                if entry_or_none is None or entry_or_none.blob is None:
                    return {"ok": False, "message": "nothing uploaded"}
                if size != len(entry_or_none.blob):
                    return {"ok": False, "message": "size differs from the upload"}
                entry_or_none.finalized = True
                return {"ok": True, "entry_id": str(entry_or_none.order + 1)}
            if method == "GetCacheEntryDownloadURL":
                done = [e for e in self.entries.values() if e.finalized and e.version == version]
                match = [e for e in done if e.key == key]
                for prefix in body.get("restore_keys", []) if not match else []:
                    match = sorted(
                        (e for e in done if e.key.startswith(str(prefix))), key=lambda e: -e.order
                    )
                    if match:
                        break
                if not match:
                    return {"ok": False}
                return {
                    "ok": True,
                    "signed_download_url": self._blob_url(match[0]),
                    "matched_key": match[0].key,
                }
        raise KeyError(method)

    def _blob_url(self, entry: CacheEntry) -> str:
        query = urllib.parse.urlencode(
            {"key": entry.key, "version": entry.version, "sig": entry.sig}
        )
        return f"{self.url}blob?{query}"

    def _blob(self, query: str) -> CacheEntry | None:
        params = urllib.parse.parse_qs(query)
        key, version = params.get("key", [""])[0], params.get("version", [""])[0]
        entry = self.entries.get((key, version))
        if entry is None or not secrets.compare_digest(params.get("sig", [""])[0], entry.sig):
            return None
        return entry

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_POST(self) -> None:
                data = self._body()
                prefix = f"/twirp/{SERVICE}/"
                if not self.path.startswith(prefix):
                    self._send(404, b'{"code":"bad_route","msg":"no such route"}')
                    return
                method = self.path[len(prefix) :]
                outer.calls.append(method)
                if outer.fail:
                    self._send(500, b'{"code":"internal","msg":"down"}')
                    return
                auth = self.headers.get("Authorization", "")
                if not secrets.compare_digest(auth, f"Bearer {outer.token}"):
                    self._send(401, b'{"code":"unauthenticated","msg":"bad token"}')
                    return
                if self.headers.get("Content-Type") != "application/json":
                    self._send(415, b'{"code":"malformed","msg":"json only here"}')
                    return
                try:
                    reply = outer._rpc(method, json.loads(data or b"{}"))
                except KeyError:
                    self._send(404, b'{"code":"bad_route","msg":"no such method"}')
                    return
                self._send(200, json.dumps(reply).encode())

            def do_PUT(self) -> None:
                path, _, query = self.path.partition("?")
                data = self._body()
                outer.calls.append("PUT blob")
                entry = outer._blob(query) if path == "/blob" and not outer.fail else None
                if entry is None or entry.finalized:
                    self._send(403, b"", "application/xml")
                    return
                if self.headers.get("x-ms-blob-type") != "BlockBlob":
                    self._send(400, b"", "application/xml")
                    return
                entry.blob = data
                self._send(201, b"", "application/xml")

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                outer.calls.append("GET blob")
                entry = outer._blob(query) if path == "/blob" and not outer.fail else None
                if entry is None or not entry.finalized or entry.blob is None:
                    self._send(404, b"", "application/xml")
                    return
                self._send(200, entry.blob, "application/octet-stream")

        return Handler

    def __enter__(self) -> CacheServiceV2:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
