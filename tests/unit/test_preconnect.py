"""The connection a later process starts before its HTTP library imports (preconnect.connect_early).

The store's side of it is tested against OpenBao in tests/integration/test_connections_ahead.py;
here, what connect_early refuses to start and how the socket is handed over exactly once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from jobsecrets.backends import preconnect
from jobsecrets.backends.preconnect import connect_early


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize(
    "address",
    ["ftp://127.0.0.1:21", "127.0.0.1:8200", "http://:8200", "http://127.0.0.1:port", "https://"],
)
def test_nothing_starts_for_an_address_that_is_not_http(address: str) -> None:
    assert connect_early(address, 1.0) is None


@pytest.mark.parametrize(
    "variable", ["http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "HTTP_PROXY"]
)
def test_nothing_starts_where_a_proxy_is_set(
    variable: str, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "http://proxy.invalid:3128")
    port = listener.getsockname()[1]
    assert connect_early(f"http://127.0.0.1:{port}", 1.0) is None
    listener.settimeout(0.3)
    with pytest.raises(TimeoutError):
        listener.accept()


def test_the_socket_is_handed_over_once(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    early = connect_early(f"http://127.0.0.1:{port}/v1", 2.0)
    assert early is not None
    sock = early.take(2.0)
    assert sock is not None
    try:
        assert sock.getpeername() == ("127.0.0.1", port)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert early.take(2.0) is None
    finally:
        sock.close()


def test_the_default_port_is_the_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    wanted: list[tuple[str, int]] = []
    monkeypatch.setattr(
        preconnect, "EarlySocket", lambda host, port, timeout: wanted.append((host, port))
    )
    connect_early("https://vault.example.com/", 1.0)
    connect_early("http://vault.example.com", 1.0)
    assert wanted == [("vault.example.com", 443), ("vault.example.com", 80)]


def test_nothing_listening_gives_no_socket() -> None:
    spare = socket.create_server(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    early = connect_early(f"http://127.0.0.1:{port}", 2.0)
    assert early is not None
    assert early.take(2.0) is None


def test_a_socket_nobody_took_in_time_is_closed(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given up on (take timed out, or discard): when it connects after all, it is closed."""
    connect = socket.create_connection
    slow_done = threading.Event()

    def slow(address: tuple[str, int], timeout: float) -> socket.socket:
        time.sleep(0.3)
        try:
            return connect(address, timeout)
        finally:
            slow_done.set()

    monkeypatch.setattr(preconnect.socket, "create_connection", slow)
    port = listener.getsockname()[1]
    early = connect_early(f"http://127.0.0.1:{port}", 2.0)
    assert early is not None
    assert early.take(0.01) is None
    assert slow_done.wait(2.0)
    listener.settimeout(2.0)
    accepted, _ = listener.accept()
    with accepted:
        accepted.settimeout(2.0)
        assert accepted.recv(1) == b""  # closed by the early socket's thread, unused


def test_discard_closes_a_connected_socket(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    early = connect_early(f"http://127.0.0.1:{port}", 2.0)
    assert early is not None
    listener.settimeout(2.0)
    accepted, _ = listener.accept()
    with accepted:
        early.discard()
        accepted.settimeout(2.0)
        assert accepted.recv(1) == b""


def test_a_store_that_stalls_the_handshake_holds_resume_briefly(listener: socket.socket) -> None:
    """resume() waits for the early connection's TLS handshake, but not for a whole timeout.

    The listener accepts (the kernel does) and never answers: the handshake on the early socket
    stalls. resume() gives up on it after a couple of seconds, not the context's 10 s timeout.
    """
    from jobsecrets.backends import BackendContext, TokenRecord
    from jobsecrets.backends.vault import VaultBackend

    port = listener.getsockname()[1]
    context = BackendContext(env={}, timeout=10.0)
    backend = VaultBackend("vault", {"address": f"https://127.0.0.1:{port}"}, context)
    record = TokenRecord("vault", "hvs.not-a-real-token", "acc", 300, True)
    started = time.monotonic()
    backend.resume(record)
    waited = time.monotonic() - started
    backend.close()
    assert 1.0 < waited < 5.0
