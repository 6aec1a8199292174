"""A TCP proxy on 127.0.0.1 that adds a fixed delay each way: a stand-in for a real network.

Local servers answer in microseconds, which hides what matters in CI: the round trips. The proxy
forwards bytes unchanged but holds every chunk for ``delay_ms`` in each direction, so one request
and its answer cost one round trip (``2 * delay_ms``). Chunks keep their order and are *not*
serialised: a chunk that arrives while another is held is forwarded ``delay_ms`` after its own
arrival, as on a real link (latency, not bandwidth). A new connection also pays one round trip
before its first byte is forwarded, standing for the TCP handshake the local connect skips.

As a library (the proxies run on an event loop in a background thread)::

    with LatencyProxy("127.0.0.1", 8200, delay_ms=20) as proxy:
        use(proxy.address)                      # "127.0.0.1:PORT"

As a command (serves until SIGINT/SIGTERM; prints one JSON line per proxy, then flushes)::

    .venv/bin/python bench/latency_proxy.py --target 127.0.0.1:8200 [--target HOST:PORT ...] \\
        [--delay-ms 20] [--listen-port 0]

It listens on 127.0.0.1 only and refuses a target that is not a loopback address: it is a
benchmark tool, not a relay.
"""

from __future__ import annotations

__all__ = ["LatencyProxy", "main", "parse_target"]

import argparse
import asyncio
import contextlib
import ipaddress
import json
import signal
import socket
import sys
import threading
import time
from types import TracebackType

_CHUNK = 64 * 1024
_LISTEN_HOST = "127.0.0.1"


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); the host must be a loopback address or ``localhost``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"target must be HOST:PORT, got {text!r}")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"target {host!r} is not a loopback address")
    return host, int(port)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    not_before: float,
) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it arrived.

    A reader task and a writer task share a queue so a held chunk never stops the next one from
    being read (a single loop that sleeps per chunk would add the delay once per chunk).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read_side() -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                due = max(loop.time(), not_before) + delay
                await queue.put((due, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time(), b""))

    async def write_side() -> None:
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    reading = asyncio.ensure_future(read_side())
    try:
        await write_side()
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await reading


class LatencyProxy:
    """One listening socket on 127.0.0.1 forwarding to ``target_host:target_port`` with delay.

    Use :meth:`start`/:meth:`stop` or ``with``. :attr:`port` is known once started.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay_ms: float = 20.0,
        listen_port: int = 0,
        handshake: bool = True,
    ) -> None:
        parse_target(f"{target_host}:{target_port}")  # loopback only
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay_ms / 1000.0
        self.listen_port = listen_port
        self.handshake = handshake
        self.port = 0
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of the listening side."""
        return f"{_LISTEN_HOST}:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, for HTTP servers behind the proxy."""
        return f"http://{self.address}"

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        loop = asyncio.get_running_loop()
        # The client's connect finished at once on loopback; a real one costs a round trip
        # (SYN, SYN-ACK) before the first request byte can leave.
        not_before = loop.time() + (2 * self.delay if self.handshake else 0.0)
        try:
            server_r, server_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.close()
            return
        for w in (client_w, server_w):
            sock = w.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(
                _pump(client_r, server_w, self.delay, not_before),
                _pump(server_r, client_w, self.delay, 0.0),
            )
        except asyncio.CancelledError:
            # aclose() drops a connection still open (a kept-alive one) at shutdown. Ending
            # normally: Python 3.11's stream callback prints a traceback for a cancelled task.
            pass
        finally:
            for w in (client_w, server_w):
                w.close()
            if task is not None:
                self._tasks.discard(task)

    async def serve(self) -> None:
        """Open the listening socket on the running loop (for callers with their own loop)."""
        self._server = await asyncio.start_server(self._handle, _LISTEN_HOST, self.listen_port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Wait for the cancelled connections so none is left pending when the loop closes.
        await asyncio.gather(*tasks, return_exceptions=True)

    def start(self) -> LatencyProxy:
        """Serve on a private event loop in a daemon thread; returns once listening."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.serve())
            except BaseException as error:  # reported to start()'s caller
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.aclose())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("latency proxy did not start within 10 s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the loop and wait (bounded) for its thread."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def _serve_all(proxies: list[LatencyProxy]) -> None:
    for proxy in proxies:
        await proxy.serve()
        print(
            json.dumps(
                {
                    "listen": proxy.address,
                    "target": f"{proxy.target_host}:{proxy.target_port}",
                    "delay_ms": proxy.delay * 1000,
                }
            ),
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for proxy in proxies:
        await proxy.aclose()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: one proxy per ``--target``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--target", action="append", required=True, help="HOST:PORT to forward to (repeatable)"
    )
    parser.add_argument("--delay-ms", type=float, default=20.0, help="delay each way (default 20)")
    parser.add_argument(
        "--listen-port", type=int, default=0, help="port of the first proxy (default: free port)"
    )
    parser.add_argument(
        "--no-handshake", action="store_true", help="do not charge a round trip per connection"
    )
    args = parser.parse_args(argv)
    proxies = []
    for i, text in enumerate(args.target):
        try:
            host, port = parse_target(text)
        except ValueError as error:
            parser.error(str(error))
        listen = args.listen_port + i if args.listen_port else 0
        proxies.append(
            LatencyProxy(
                host,
                port,
                delay_ms=args.delay_ms,
                listen_port=listen,
                handshake=not args.no_handshake,
            )
        )
    started = time.monotonic()
    asyncio.run(_serve_all(proxies))
    print(
        json.dumps(
            {
                "served_s": round(time.monotonic() - started, 3),
                "connections": [p.connections for p in proxies],
            }
        ),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
