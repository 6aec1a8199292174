"""Leaving the process on time, whatever worker threads are still doing.

When the overall deadline passes, the resolver stops waiting for its worker threads: one may be
blocked on a store that never answers, or that answers one byte at a time (a read timeout is per
socket read, so a slow drip never trips it). Those threads are ``ThreadPoolExecutor`` workers,
and the interpreter joins every such worker at exit (``concurrent.futures`` registers that join),
so a normal ``sys.exit`` would wait for them: 40 s past a 5 s deadline, or more.

So the very last thing ``main`` does, once the command has returned (and so once the ledger is
revoked and every message written), is :func:`exit_process`: if threads other than the main one
are still alive, it gives them a short grace to finish what they are doing (a thread that got a
lease after the deadline revokes it itself, see ``resolver._LateResults``), flushes the standard
streams and the logging handlers, and ends the process with ``os._exit``, which joins nothing.
With no thread left, it is a plain ``sys.exit``.

Making the workers daemon threads instead would need our own pool in three places (resolver,
``Backend.read_many``, AWS batches) and daemon threads can still be cut at any bytecode at exit;
this is one place, after everything that matters is done.

The interpreter's teardown (clearing every module, freeing every object of hvac, requests,
boto3 and botocore) takes 60-100 ms of a 2-core runner, after the last byte was written and the
last lease revoked: a job waits for it and gains nothing. So for the commands on a job's critical
path (``run``, ``export``, ``revoke``; see ``cli._no_teardown``), ``exit_process(code,
teardown=False)`` ends the same way as with stragglers: the ``atexit`` handlers run (logging's
flush, ``weakref.finalize`` hooks, a coverage tool's save), the standard streams are flushed,
and ``os._exit``. Our own files are closed by then (the ledger, the state file, the audit log and
the outputs are each written and closed by the command). Under a profiler or a tracer (coverage,
a debugger), which may report after the program returns, the process ends the ordinary way.
"""

from __future__ import annotations

__all__ = ["exit_process", "linger_until", "mark_process_start", "process_start"]

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from typing import NoReturn

_started: float | None = None


def _process_age() -> float:
    """Seconds since this process started (Linux: from /proc), before any of our code ran."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
    return age if 0.0 <= age < 60.0 else 0.0


def mark_process_start() -> None:
    """Note when the process started (``main`` calls it first): the deadline counts from there.

    The user's "deadline plus one second" is measured from the command's start, so interpreter
    start-up and imports (about half a second on a loaded runner) count against it too.
    """
    global _started
    _started = time.monotonic() - _process_age()


def process_start() -> float:
    """The ``time.monotonic()`` at which the command started (now, if ``main`` did not run)."""
    return time.monotonic() if _started is None else _started


#: Seconds left to threads still running at exit (a late revocation is one round trip).
GRACE = 0.25
#: Until when (``time.monotonic()``) threads still running at exit are waited for, if later.
_linger: float | None = None


def linger_until(moment: float) -> None:
    """Wait at exit for threads still running until ``moment`` (``time.monotonic()``), not just
    :data:`GRACE`: set when a signal stopped resolution while a sign-in or read was on the
    wire. What it obtains, the thread revokes itself (resolver._LateResults), if it may finish:
    cut at 0.25 s, a login answered a second later left its token alive."""
    global _linger
    _linger = moment if _linger is None else max(_linger, moment)


def _stragglers() -> list[threading.Thread]:
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]


def exit_process(code: int | str | None, *, teardown: bool = True) -> NoReturn:
    """Exit with ``code`` (as ``sys.exit`` takes it) without waiting on blocked worker threads;
    with ``teardown=False``, without the interpreter's teardown either (module docstring)."""
    stragglers = _stragglers()
    if stragglers:
        end = max(time.monotonic() + GRACE, _linger or 0.0)
        for thread in stragglers:
            thread.join(max(0.0, end - time.monotonic()))
    stuck = bool(_stragglers())
    # A profiler or coverage tool that reports when the program returns (not from atexit)
    # would lose its report: a traced or profiled process ends the ordinary way.
    traced = sys.gettrace() is not None or sys.getprofile() is not None
    if (teardown or traced) and not stuck:
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        status = 1
    else:
        status = code or 0
    if not stuck:
        # What a normal exit would run first; with threads still stuck, a handler could wait
        # for them (concurrent.futures joins its workers from threading's own exit hook).
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed or broken stream: nothing more can be said.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(status)
