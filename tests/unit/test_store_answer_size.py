"""A store that answers without end: the answer is refused at a size, memory stays bounded.

The stand-in is a Vault as its HTTP API is documented (``GET /v1/sys/internal/ui/mounts/PATH``,
``GET /v1/MOUNT/data/PATH``: https://openbao.org/api-docs/secret/kv/kv-v2/), whose secret read
never ends: chunked without a last chunk, or a Content-Length it never reaches. No real store
can be made to do that.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from support.cli import jobsecrets
from support.http_stubs import serving

MOUNT = json.dumps(
    {"data": {"path": "secret/", "type": "kv", "options": {"version": "2"}}}
).encode()


class _Endless(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "chunked"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if "/sys/internal/ui/mounts/" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(MOUNT)))
            self.end_headers()
            self.wfile.write(MOUNT)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        chunked = self.mode == "chunked"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(10**10))
        self.end_headers()
        piece = b'{"data": {"data": {"password": "' + b"x" * (1 << 20)
        try:
            while True:
                data = piece if piece.startswith(b"{") else b"x" * (1 << 20)
                piece = b""
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        except OSError:
            return


@pytest.fixture(params=["chunked", "content-length"])
def endless_store(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_Endless,), {"mode": request.param})
    with serving(handler) as url:
        yield url


def test_an_answer_without_end_is_refused_at_its_limit(tmp_path: Path, endless_store: str) -> None:
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\n"
        "settings: {deadline: 60s, timeout: 20s}\n"
        f"backends: {{vault: {{type: vault, address: '{endless_store}', auth: {{method: token}}}}}}\n"
        "secrets: {A: 'vault:secret/app#password'}\n"
    )
    # 2 GiB of address space: the old client read on until it had it all (MemoryError).
    result = jobsecrets(
        ["export", "--format", "json"],
        cwd=tmp_path,
        env={"VAULT_TOKEN": "hvs.stand-in"},
        timeout=120,
        memory_limit=2 << 30,
    )
    assert result.returncode == 6, result.stderr[-800:]
    assert "sent an answer of more than 64 MiB: not read" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
