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

__all__ = ["open_ahead"]

import _thread
import contextlib
import logging
import select
import ssl
import time
from typing import Any

log = logging.getLogger(__name__)


def open_ahead(pool: Any, count: int, timeout: float) -> None:
    """Open ``count`` connections of the urllib3 ``pool`` on daemon threads, each put back idle.

    Returns at once. ``count`` is capped at the pool's size (a connection beyond it would be
    closed again when put back). A thread never outlives a connect timeout of ``timeout``
    seconds, and being a daemon it never holds up the process's end.
    """
    size = getattr(getattr(pool, "pool", None), "maxsize", 0) or 0
    try:
        # Taken out of the pool here, all before any goes back: a thread that took its own could
        # be handed one another thread had just connected and put back (LIFO), and open nothing.
        # urllib3's own way in and out of its pool (what urlopen does around each request): a
        # non-blocking pool hands out a new connection object at once, never waits.
        taken = [pool._get_conn() for _ in range(min(count, size))]
    except Exception:  # a closed pool (the client was dropped) or another urllib3
        return
    for conn in taken:
        # The low-level start: threading.Thread.start() waits until the new thread runs, which
        # under a busy GIL (a library importing meanwhile) cost ~1.2 ms a connection, 60 ms for
        # 50 (traced), all on the caller's critical path. Such a thread is a daemon too.
        _thread.start_new_thread(_open_one, (pool, conn, timeout))


def _open_one(pool: Any, conn: Any, timeout: float) -> None:
    try:
        if getattr(conn, "sock", None) is None:  # not connected yet (a fresh connection)
            conn.timeout = timeout
            started = time.monotonic()
            conn.connect()
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
