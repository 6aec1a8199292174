"""A small fault-injecting TCP proxy in front of a real store (OpenBao, moto), for tests/faults.

Each accepted connection is handled by a *mode* (changeable while it runs, ``proxy.mode = ...``):

``pass``       forward bytes both ways unchanged
``http``       forward each HTTP request on its own connection (so :meth:`switch_on` sees it)
``blackhole``  accept and read the request, never answer (the connection stays open)
``drip``       forward the request, pass the answer on one byte every ``drip_interval`` seconds
``reset``      forward the request, pass ``reset_after`` bytes of the answer, then reset (RST)
``status``     answer ``status`` (e.g. 500, 429, 503) with ``headers`` and a Vault-style JSON error
               to the next ``count`` requests (``None``: all), then forward as ``pass``

It listens on 127.0.0.1 and only forwards to the target given (a local server). Built on plain
threads and sockets, like bench/latency_proxy.py's idea without its event loop, so a test can
read ``proxy.requests`` (requests seen) from its own thread.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType

from typing_extensions import Self

_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _read_request(conn: socket.socket) -> bytes:
    """One HTTP request (headers and a Content-Length body), or b'' when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _reset(conn: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        conn.close()


class FaultProxy:
    """``with FaultProxy(port, mode="blackhole") as proxy: use(proxy.url)``."""

    def __init__(
        self,
        target_port: int,
        mode: str = "pass",
        *,
        status: int = 503,
        headers: dict[str, str] | None = None,
        count: int | None = None,
        drip_interval: float = 0.5,
        reset_after: int = 20,
    ) -> None:
        self.target = ("127.0.0.1", target_port)
        self.mode = mode
        self.status = status
        self.headers = dict(headers or {})
        self.count = count
        self.drip_interval = drip_interval
        self.reset_after = reset_after
        self.requests = 0
        #: Connections accepted so far.
        self.connections = 0
        self._trigger: tuple[bytes, str] | None = None
        self._stalled: list[bytes] = []
        #: The request line of every request seen in a mode that reads requests (not ``pass``).
        self.request_lines: list[bytes] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start accepting connections."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)

    def switch_on(self, marker: str, mode: str) -> None:
        """From the first request whose request line holds ``marker`` on, use ``mode``.

        Unlike switching from the test's thread, this never cuts an answer in flight: with
        mode ``http`` the answer before it (a login's, with its token) has been delivered.
        """
        with self._lock:
            self._trigger = (marker.encode(), mode)

    def stall_on(self, marker: str) -> None:
        """Never answer a request whose request line holds ``marker``; others as the mode says
        (``http``: each request on its own connection, so each is looked at)."""
        with self._lock:
            self._stalled.append(marker.encode())

    def drop_connections(self) -> None:
        """Close every open connection (a pooled keep-alive one would bypass a new mode)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- connections -------------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._track(conn)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _take_status(self) -> bool:
        with self._lock:
            if self.mode != "status":
                return False
            if self.count is None:
                return True
            if self.count > 0:
                self.count -= 1
                return True
            return False

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.mode == "pass" or (self.mode == "status" and self.count == 0):
                self._pipe(conn)
                return
            while not self._closed.is_set():
                request = _read_request(conn)
                if not request:
                    return
                with self._lock:
                    self.requests += 1
                    first_line = request.split(b"\r\n", 1)[0]
                    self.request_lines.append(first_line)
                    if self._trigger is not None and self._trigger[0] in first_line:
                        self.mode, self._trigger = self._trigger[1], None
                    stalled = any(marker in first_line for marker in self._stalled)
                mode = "blackhole" if stalled else self.mode
                if mode == "blackhole":
                    self._closed.wait()
                    return
                if mode == "status":
                    if self._take_status():
                        self._answer_status(conn)
                        return
                    self._forward_then(conn, request, lambda c, answer: c.sendall(answer))
                    return
                if mode in ("http", "pass"):
                    self._forward_then(conn, request, lambda c, answer: c.sendall(answer))
                    return
                if mode == "drip":
                    self._forward_then(conn, request, self._drip)
                    return
                if mode == "reset":
                    self._forward_then(conn, request, self._cut)
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _answer_status(self, conn: socket.socket) -> None:
        body = b'{"errors":["injected by the fault proxy"]}'
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Error')}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        lines += [
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _forward_then(self, conn: socket.socket, request: bytes, deliver: object) -> None:
        """Send ``request`` upstream with ``Connection: close``, read the whole answer, deliver it."""
        head, _, body = request.partition(b"\r\n\r\n")
        kept = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        request = b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body
        with socket.create_connection(self.target, timeout=30) as upstream:
            upstream.sendall(request)
            answer = b""
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                answer += chunk
        deliver(conn, answer)  # type: ignore[operator]

    def _drip(self, conn: socket.socket, answer: bytes) -> None:
        for index in range(len(answer)):
            if self._closed.is_set():
                return
            conn.sendall(answer[index : index + 1])
            time.sleep(self.drip_interval)

    def _cut(self, conn: socket.socket, answer: bytes) -> None:
        conn.sendall(answer[: self.reset_after])
        time.sleep(0.05)
        _reset(conn)

    def _pipe(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(self.target, timeout=30)
        upstream.settimeout(None)
        self._track(upstream)

        def copy(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        other = threading.Thread(target=copy, args=(upstream, conn), daemon=True)
        other.start()
        copy(conn, upstream)
        other.join()
        with contextlib.suppress(OSError):
            upstream.close()


def free_port() -> int:
    """A port nothing listens on (bound then released): 'nothing listening'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
