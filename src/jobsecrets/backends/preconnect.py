"""Connections to a store opened while the job still waits for something else.

A read on a new connection costs two round trips (connect, then the request; with TLS one or two
more for the handshake) where a read on an open connection costs one. Resolution always waits on
something before its reads: the CI identity token, the sign-in, a mount lookup. Connections
opened during that wait, as many as the reads will run at once, turn the whole wave of reads
into one round trip each. Measured with 20 ms each way to OpenBao (``bench/oidc_resolution.py``):
the jwt sign-in 1 round trip instead of 2 and 50 reads in one wave of 1 instead of 2.

Only an optimisation: a connection that cannot be opened is dropped without a word (the request
that would have used it opens its own and reports what goes wrong, as it always did), and the
connections go into the very pool, with the very TLS settings, the requests take theirs from.
"""

from __future__ import annotations

__all__ = ["EarlySocket", "connect_early", "open_ahead"]

import _thread
import contextlib
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)


# What requests reads a proxy from (urllib.request.getproxies_environment, either case).
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


class EarlySocket:
    """A TCP connection to a store, started before the HTTP library that will use it is imported.

    A later process of the job (``revoke`` in the post step, a renewal) has nothing to wait on
    but its own imports: requests and hvac take ~50-70 ms of CPU, and only then could
    :func:`open_ahead` start connecting. Connecting on a thread from the start hides one round
    trip behind them; the TLS handshake, if any, is still urllib3's (:func:`open_ahead` hands it
    this socket), with the settings of every other connection.
    """

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._sock: socket.socket | None = None
        self._given_up = False
        # A daemon: never holds up the process's end; bounded by the connect timeout anyway.
        _thread.start_new_thread(self._connect, (host, port, timeout))

    def _connect(self, host: str, port: int, timeout: float) -> None:
        try:
            sock = socket.create_connection((host, port), timeout)
            # As urllib3 sets up every connection of its own (HTTPConnection.default_socket_options).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as error:
            log.debug("connection opened early failed (%s)", type(error).__name__)
            sock = None
        with self._lock:
            if self._given_up and sock is not None:
                sock.close()  # nobody will take it any more
            else:
                self._sock = sock
        self._done.set()

    def take(self, wait: float) -> socket.socket | None:
        """The connected socket, waiting up to ``wait`` seconds for it; ``None`` if there is none.

        Only once: later calls give ``None``, and a socket that connects after the wait is closed.
        """
        self._done.wait(wait)
        with self._lock:
            sock, self._sock = self._sock, None
            self._given_up = True
        return sock

    def discard(self) -> None:
        """Not wanted after all (a proxy will carry the requests): close it, now or once it connects."""
        sock = self.take(0)
        if sock is not None:
            sock.close()


def connect_early(address: str, timeout: float) -> EarlySocket | None:
    """Start connecting to the server at ``address`` (``http(s)://host[:port]...``) on a thread.

    ``None`` when there is nothing to start: not an http(s) address, or a proxy variable is set
    in the environment (requests would send through the proxy; whether this address bypasses it
    is requests' decision, taken after its import: not worth a connection the job may not be
    allowed to make).
    """
    if any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES):
        return None
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number: the client reports the address itself
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return EarlySocket(host, port or (443 if parts.scheme == "https" else 80), timeout)


def open_ahead(
    pool: Any, count: int, timeout: float, early: EarlySocket | None = None
) -> threading.Event | None:
    """Open ``count`` connections of the urllib3 ``pool`` on daemon threads, each put back idle.

    Returns at once. ``count`` is capped at the pool's size (a connection beyond it would be
    closed again when put back). A thread never outlives a connect timeout of ``timeout``
    seconds, and being a daemon it never holds up the process's end. ``early``: a socket
    already connecting to the pool's server (:func:`connect_early`), which the first of the
    connections is made on; then the event returned is set once that connection is in the pool
    (or failed), for a caller whose next request should go out on it.
    """
    size = getattr(getattr(pool, "pool", None), "maxsize", 0) or 0
    try:
        # Taken out of the pool here, all before any goes back: a thread that took its own could
        # be handed one another thread had just connected and put back (LIFO), and open nothing.
        # urllib3's own way in and out of its pool (what urlopen does around each request): a
        # non-blocking pool hands out a new connection object at once, never waits.
        taken = [pool._get_conn() for _ in range(min(count, size))]
    except Exception:  # a closed pool (the client was dropped) or another urllib3
        if early is not None:
            early.discard()
        return None
    if early is None:
        ready = None
    elif not taken:
        early.discard()
        return None
    else:
        ready = threading.Event()
    for n, conn in enumerate(taken):
        # The low-level start: threading.Thread.start() waits until the new thread runs, which
        # under a busy GIL (a library importing meanwhile) cost ~1.2 ms a connection, 60 ms for
        # 50 (traced), all on the caller's critical path. Such a thread is a daemon too.
        mine = (early, ready) if n == 0 else (None, None)
        _thread.start_new_thread(_open_one, (pool, conn, timeout, *mine))
    return ready


def _open_one(
    pool: Any,
    conn: Any,
    timeout: float,
    early: EarlySocket | None = None,
    ready: threading.Event | None = None,
) -> None:
    try:
        _connect(pool, conn, timeout, early)
    finally:
        if ready is not None:
            ready.set()


def _connect(pool: Any, conn: Any, timeout: float, early: EarlySocket | None) -> None:
    try:
        if getattr(conn, "sock", None) is None:  # not connected yet (a fresh connection)
            conn.timeout = timeout
            started = time.monotonic()
            sock = early.take(timeout) if early is not None else None
            if sock is not None:
                sock.settimeout(timeout)  # what urllib3's own connect leaves on its sockets
                # urllib3's connect() (HTTP, and HTTPS before its handshake) takes its TCP socket
                # from _new_conn(): this one, once; then the class's own again (a reconnect).
                conn._new_conn = lambda: sock
            try:
                conn.connect()
            finally:
                conn.__dict__.pop("_new_conn", None)
            # ssl and select only here: connect_early runs before anything imported them, and
            # the connection it starts should not wait for them (urllib3 has by now).
            import ssl

            if isinstance(conn.sock, ssl.SSLSocket):
                _take_tickets(conn.sock, time.monotonic() - started)
    except Exception as error:
        # Nothing listening, a bad certificate, no route: the request that needs a connection
        # opens its own and reports that properly. Type only: an error may quote the address.
        log.debug("connection opened ahead failed (%s)", type(error).__name__)
        with contextlib.suppress(Exception):
            conn.close()
        pool._put_conn(None)  # the pool's slot back, empty (as urlopen does on an error)
        return
    pool._put_conn(conn)


def _take_tickets(sock: ssl.SSLSocket, handshake: float) -> None:
    """Read the session tickets a TLS 1.3 server sends after the handshake, if they come soon.

    They arrive about a round trip after the handshake ends and make an idle connection look
    readable, which urllib3 takes for a connection the server closed: it would drop every
    connection opened ahead and open new ones (a request reads them along with its answer, so
    a used connection never shows this). Waits at most as long as the handshake took (TLS 1.2
    or a server without tickets sends nothing: the connection goes into the pool after that).
    Raises when the server closed the connection or sent anything else.
    """
    import select
    import ssl

    if not select.select([sock], [], [], max(handshake, 0.01))[0]:
        return
    previous = sock.gettimeout()
    sock.setblocking(False)
    try:
        data = sock.recv(1)
    except ssl.SSLWantReadError:
        return  # only TLS records of its own (the tickets): nothing left to read
    finally:
        sock.settimeout(previous)
    raise ConnectionError("data before any request" if data else "closed by the server")
