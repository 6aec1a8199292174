"""Loopback HTTP peers for the action's cache client (actions/inject/cache.js): a server that
answers with scripted raw responses, an HTTP CONNECT proxy, and a self-signed certificate; and
:class:`AnsweringServer`, a server whose answers a test computes from each request (a hostile
store, a stand-in STS) and which records what reached it, bodies included.

The proxy speaks what a forward proxy does for HTTPS (RFC 9110, section 9.3.6, CONNECT): it reads
``CONNECT host:port``, answers ``200`` and relays bytes both ways. Every host it is asked for is
this machine (127.0.0.1), so a test can name the cache ``cache.example.test`` and the client never
resolves that name itself, as behind a real proxy.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from typing_extensions import Self

#: A v1 cache lookup's miss (204), the connection closed after it.
MISS = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class ScriptedServer:
    """A loopback HTTP server answering each request with the next scripted raw response (empty:
    close the connection without answering); it records each request's head (method, path,
    headers) for the test to look at, and when each connection was accepted and its request
    arrived (``time.monotonic``). With ``tls``, it speaks TLS with that context."""

    def __init__(
        self, responses: list[bytes], *, start: bool = True, tls: ssl.SSLContext | None = None
    ) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, str]] = []
        self.accepted: list[float] = []
        self.arrived: list[float] = []
        self.tls_errors: list[str] = []
        self.tls = tls
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        if start:
            self.thread.start()

    def _serve(self) -> None:
        while self.responses:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            conn: socket.socket = raw
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as error:
                    self.tls_errors.append(type(error).__name__)
                    raw.close()
                    continue
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(4096)
                    if not data:
                        break
                    head += data
                if not head:  # closed unused by the client
                    continue
                self.arrived.append(time.monotonic())
                lines = head.decode("latin-1").split("\r\n")
                request = {"request-line": lines[0]}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        request[name.strip().lower()] = value.strip()
                self.requests.append(request)
                # A client may hang up mid-answer (one that refuses an answer too large).
                with contextlib.suppress(OSError):
                    conn.sendall(self.responses.pop(0))

    def close(self) -> None:
        self.sock.close()


class ConnectProxy:
    """An HTTP forward proxy on 127.0.0.1 that serves CONNECT only, every host being this
    machine. Records each CONNECT's authority and headers, and every byte it relayed from the
    client (to show what a proxy could read). ``refuse``: answer this status instead of 200;
    ``silent``: read the request and never answer (a proxy that hangs)."""

    def __init__(self, refuse: int | None = None, *, silent: bool = False) -> None:
        self.refuse = refuse
        self.silent = silent
        self._held: list[socket.socket] = []
        self.connects: list[dict[str, str]] = []
        self.relayed = bytearray()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                conn.close()
                return
            head += data
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, authority, _ = lines[0].split(" ", 2)
        record = {"method": method, "authority": authority}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            record[name.strip().lower()] = value.strip()
        self.connects.append(record)
        if self.silent:
            self._held.append(conn)  # open and unanswered until close()
            return
        if method != "CONNECT" or self.refuse is not None:
            status = self.refuse or 405
            conn.sendall(f"HTTP/1.1 {status} No\r\nContent-Length: 0\r\n\r\n".encode())
            conn.close()
            return
        port = int(authority.rsplit(":", 1)[1])
        upstream = socket.create_connection(("127.0.0.1", port))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=self._pipe, args=(upstream, conn, False), daemon=True).start()
        self._pipe(conn, upstream, True)

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    self.relayed += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for end in (src, dst):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def url(self, userinfo: str = "") -> str:
        """The proxy's URL, with ``user:password@`` when given."""
        return f"http://{userinfo}127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


def self_signed(directory: Path, name: str) -> tuple[Path, ssl.SSLContext]:
    """A certificate for DNS name ``name`` (PEM, for NODE_EXTRA_CA_CERTS) and a server context
    that presents it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


@dataclass
class Seen:
    """One request an :class:`AnsweringServer` received."""

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)  # lower-cased names
    body: bytes = field(repr=False)


#: What an :class:`AnsweringServer` answers a request with: status, headers, body.
Answer = tuple[int, dict[str, str], bytes]


class AnsweringServer:
    """A loopback HTTP/1.1 server (stdlib ``http.server``) answering every request with
    ``answer(seen)``; ``seen`` lists every request that reached it, bodies included, so a test
    can check that a credential never did. ``with AnsweringServer(answer) as server: server.url``.
    """

    def __init__(self, answer: Callable[[Seen], Answer]) -> None:
        self.seen: list[Seen] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                outer.seen.append(request)
                status, headers, body = answer(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def redirect_to(target: str, status: int = 307) -> Callable[[Seen], Answer]:
    """An answer sending every request to the same path on ``target`` (another origin)."""
    return lambda seen: (status, {"Location": target + seen.path}, b"")


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on loopback in a thread for the block; yields ``http://127.0.0.1:PORT``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
