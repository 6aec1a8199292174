"""Run the child command with secrets in its environment and redact what it prints.

:func:`run_child` starts the command directly (never through a shell; the values travel only
in the environment, never in argv), pumps its stdout and stderr through one
:class:`~jobsecrets.redact.StreamRedactor` each into our own fds 1 and 2, forwards the
termination signals and returns the child's exit code.

With a terminal (``tty=True``, by default when our stdout is one) the child gets a
pseudo-terminal so that programs keep their colours and line-buffered behaviour; what it
writes there is redacted the same way. Our own terminal is put in raw mode while keystrokes
are forwarded, and restored afterwards.
"""

from __future__ import annotations

__all__ = ["run_child"]

import contextlib
import errno
import fcntl
import logging
import os
import selectors
import signal
import stat
import subprocess
import termios
import threading
import time
import tty as ttymod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeAlias

from jobsecrets._signals import TERMINATING
from jobsecrets.errors import ChildError
from jobsecrets.redact import MaskList, StreamRedactor

log = logging.getLogger("jobsecrets")

#: The masks of a run: a mask list, or what builds it once the child has started.
Masks: TypeAlias = MaskList | Callable[[], MaskList]

# Big reads: the per-read cost (a syscall and a scan call) dominates with small ones. The pipe
# is enlarged to match so one read can drain what ``cat`` wrote in several writes.
_READ_SIZE = 1 << 20
# While the child runs and nothing is readable, wake up this often to notice its exit.
_POLL_INTERVAL = 0.05
# After the child has exited, a background process it left behind may keep our pipes open
# forever (a daemon started without redirecting its output). Stop reading once nothing has
# arrived for this long, so the job can end and its leases be revoked.
_DRAIN_IDLE = 2.0
# ...and stop once this long has passed since the exit, however busy it is: one that keeps
# printing held `run` (and the leases) for as long as it printed.
_DRAIN_MAX = 10.0
_FORWARDED = TERMINATING
# After these the child gets SIGCONT too: stopped (SIGSTOP, a debugger), it would never act on
# them, and `run` would wait for ever with the leases alive.
_ENDING = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})
# Signals a terminal sends to its whole foreground process group on a keystroke.
_KEYBOARD = (signal.SIGINT, signal.SIGQUIT)
_STDIN = "stdin"


@dataclass(eq=False)
class _Source:
    """One readable fd of the child, the redactor for it and where its output goes."""

    fd: int
    out_fd: int
    redactor: StreamRedactor
    open: bool = field(default=True)


def _child_error(message: str, code: int) -> ChildError:
    error = ChildError(message)
    error.exit_code = code
    return error


def _enlarge_pipe(fd: int) -> None:
    """Make the pipe at ``fd`` hold ``_READ_SIZE`` bytes, if it holds less (Linux only)."""
    getsize = getattr(fcntl, "F_GETPIPE_SZ", None)
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if getsize is not None and setsize is not None:
        with contextlib.suppress(OSError):  # not a pipe, or over the user's pipe quota
            if fcntl.fcntl(fd, getsize) < _READ_SIZE:
                fcntl.fcntl(fd, setsize, _READ_SIZE)


def _enlarge_outputs() -> None:
    """Enlarge our own stdout and stderr when they are pipes (a CI runner or the next command of
    a pipeline reads them).

    A redacted read is up to ``_READ_SIZE`` bytes; into a pipe of the default 64 KiB its
    ``write`` goes in 16 rounds of waking the reader and waiting for it. With room for all of
    it at once, ``run -- cat BIGFILE | cat`` switched context about half as often, and copied
    1.4-1.8x faster in two series of runs (no different in a third, on a busier machine).
    Only the buffer grows: the reader sees the same bytes.
    """
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                _enlarge_pipe(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write everything, also when the fd was left non-blocking by whoever started us."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            _wait_writable(fd)
            continue
        view = view[written:]


def _wait_writable(fd: int) -> None:
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_WRITE)
        sel.select()


def _on_foreground_terminal() -> bool:
    """Whether our process group owns a terminal, i.e. a keystroke signal also hit the child."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


def _copy_winsize(src_fd: int, dst_fd: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)


def _make_controlling_tty() -> None:
    """In the child, after setsid: make the pty on fd 1 its controlling terminal."""
    with contextlib.suppress(OSError):
        fcntl.ioctl(1, termios.TIOCSCTTY, 0)


class _SignalForwarder:
    """Forwards termination signals to the child while installed; remembers early ones."""

    def __init__(self, own_session: bool) -> None:
        # A child in its own session (pty mode) does not get our terminal's keystroke signals.
        self.own_session = own_session
        self.proc: subprocess.Popen[bytes] | None = None
        self.early: list[int] = []
        self.saved: dict[int, Any] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if (
            signum in _KEYBOARD
            and not self.own_session
            and self.proc is not None
            and _on_foreground_terminal()
        ):
            return  # the terminal sent it to the child as well; twice could kill it harder
        if self.proc is None:
            self.early.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            # send_signal does nothing once the child has been reaped (no pid reuse).
            self.proc.send_signal(signum)
            if signum in _ENDING:
                self.proc.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def installed(self, extra: dict[int, Any] | None = None) -> Iterator[None]:
        # signal.signal only works in the main thread; elsewhere the caller's handlers rule.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handlers: dict[int, Any] = {sig: self.handle for sig in _FORWARDED}
        handlers.update(extra or {})
        try:
            for sig, handler in handlers.items():
                self.saved[sig] = signal.signal(sig, handler)
            yield
        finally:
            for sig, previous in self.saved.items():
                signal.signal(sig, previous)
            self.saved.clear()

    def started(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        for signum in self.early:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
        self.early.clear()


def _spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: Any, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start the child without a shell, mapping start failures to the shell's exit codes."""
    program = argv[0]
    try:
        return subprocess.Popen(list(argv), env=dict(env), cwd=cwd, close_fds=True, **kwargs)
    except FileNotFoundError as exc:
        if cwd is not None and exc.filename not in (program, None):
            raise _child_error(f"working directory not found: {cwd}", 127) from None
        raise _child_error(f"{program}: command not found", 127) from None
    except PermissionError:
        if not _names_a_file(program, env):
            # execvp reports EACCES when PATH holds a directory of that name (or the name is
            # empty: every PATH entry itself); a shell says "command not found", 127.
            raise _child_error(f"{program or repr(program)}: command not found", 127) from None
        if os.path.isdir(program):
            raise _child_error(f"{program}: is a directory", 126) from None
        raise _child_error(f"{program}: permission denied (not executable)", 126) from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else "cannot execute"
        raise _child_error(f"{program}: {reason}", 126) from None


def _names_a_file(program: str, env: Mapping[str, str]) -> bool:
    """Whether ``program`` names a path, or PATH lookup finds something not a directory."""
    if not program:
        return False
    if "/" in program:
        return True  # a path is tried as it is: a directory there is 126, as in a shell
    search = env.get("PATH", os.defpath)
    return any(
        os.path.exists(path) and not os.path.isdir(path)
        for path in (os.path.join(entry or ".", program) for entry in search.split(os.pathsep))
    )


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run_child(
    argv: Sequence[str],
    env: Mapping[str, str],
    masks: Masks,
    *,
    tty: bool | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> int:
    """Run ``argv`` with environment ``env``, redacting ``masks`` from its output.

    Returns the child's exit code, or ``128 + N`` when a signal ``N`` killed it. Raises
    :class:`~jobsecrets.errors.ChildError` with ``exit_code`` 127 when the command does not
    exist and 126 when it cannot be executed. ``tty=None`` means "when fd 1 is a terminal".
    ``masks`` may be a function that builds the mask list: it is called once the child runs,
    so the child's start-up hides the build (its output waits unread until then).
    """
    if not argv:
        raise _child_error("no command given to run", 127)
    if tty is None:
        tty = os.isatty(1)
    _enlarge_outputs()
    if tty:
        try:
            master, slave = os.openpty()
        except OSError:
            tty = False  # no pseudo-terminals here (some containers): pipes still redact
        else:
            return _run_with_pty(argv, env, masks, cwd, master, slave)
    return _run_with_pipes(argv, env, masks, cwd)


def _run_with_pipes(argv: Sequence[str], env: Mapping[str, str], masks: Masks, cwd: Any) -> int:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    for fd in (out_w, err_w):
        _enlarge_pipe(fd)
    forwarder = _SignalForwarder(own_session=False)
    sources: list[_Source] = []
    try:
        with forwarder.installed():
            try:
                proc = _spawn(argv, env, cwd, stdout=out_w, stderr=err_w)
            finally:
                os.close(out_w)
                os.close(err_w)
            forwarder.started(proc)
            sources = _with_redactors(proc, masks, [(out_r, 1), (err_r, 2)])
            _pump_or_stop(proc, sources, stdin_to=None)
            return _exit_code(proc.wait())
    finally:
        _close_unclosed([out_r, err_r], sources)


def _with_redactors(
    proc: subprocess.Popen[bytes], masks: Masks, outputs: list[tuple[int, int]]
) -> list[_Source]:
    """A redacted source for each ``(fd, out_fd)``, the mask list built now if it is a builder.

    Called once the child runs: building the matcher for many secrets takes a noticeable
    fraction of a second, and the child's own start-up hides it. Nothing leaks meanwhile: the
    child's output waits in the pipe, unread, until its redactor exists. If building fails, the
    child is stopped before the error leaves (its secrets are about to be revoked).
    """
    try:
        ready = masks if isinstance(masks, MaskList) else masks()
        return [_Source(fd, out_fd, ready.redactor()) for fd, out_fd in outputs]
    except BaseException:
        _stop(proc)
        raise


def _close_unclosed(fds: list[int], sources: list[_Source]) -> None:
    """Close each of ``fds`` that no source has closed already."""
    closed = {source.fd for source in sources if not source.open}
    for fd in fds:
        if fd not in closed:
            os.close(fd)


def _run_with_pty(
    argv: Sequence[str],
    env: Mapping[str, str],
    masks: Masks,
    cwd: Any,
    master: int,
    slave: int,
) -> int:
    stdin_is_tty = os.isatty(0)
    stderr_is_tty = os.isatty(2)
    _copy_winsize(1 if os.isatty(1) else 0, slave)
    err_r = err_w = -1
    if not stderr_is_tty:
        # stderr goes somewhere else than the terminal: keep it apart, through a pipe.
        err_r, err_w = os.pipe()
    outputs = [(master, 1)] + ([(err_r, 2)] if err_r >= 0 else [])
    sources: list[_Source] = []
    forwarder = _SignalForwarder(own_session=True)

    def resize(signum: int, frame: FrameType | None) -> None:
        _copy_winsize(1, master)

    saved_mode: list[Any] | None = None
    try:
        with forwarder.installed({signal.SIGWINCH: resize}):
            try:
                proc = _spawn(
                    argv,
                    env,
                    cwd,
                    stdin=slave if stdin_is_tty else None,
                    stdout=slave,
                    stderr=slave if stderr_is_tty else err_w,
                    start_new_session=True,
                    preexec_fn=_make_controlling_tty,
                )
            finally:
                # The child holds the slave now; ours would keep the master from ever
                # seeing the end of the child's output.
                os.close(slave)
                if err_w >= 0:
                    os.close(err_w)
            forwarder.started(proc)
            sources = _with_redactors(proc, masks, outputs)
            if stdin_is_tty:
                with contextlib.suppress(termios.error):
                    saved_mode = termios.tcgetattr(0)
                    # Raw: keystrokes (Ctrl-C included) go to the child's terminal unchanged.
                    ttymod.setraw(0)
            _pump_or_stop(proc, sources, stdin_to=master if stdin_is_tty else None)
            return _exit_code(proc.wait())
    finally:
        if saved_mode is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSADRAIN, saved_mode)
        _close_unclosed([fd for fd, _ in outputs], sources)


def _close(sel: selectors.BaseSelector, source: _Source) -> None:
    """End of one output: emit what the redactor still holds and stop watching the fd."""
    tail = source.redactor.flush()
    if tail:
        with contextlib.suppress(BrokenPipeError):
            _write_all(source.out_fd, tail)
    sel.unregister(source.fd)
    os.close(source.fd)
    source.open = False


def _pump_or_stop(
    proc: subprocess.Popen[bytes], sources: list[_Source], *, stdin_to: int | None
) -> None:
    """:func:`_pump`; if passing the output on fails (our stdout gone: EIO, disk full), stop the
    child before the error leaves: its secrets are about to be revoked under it.
    """
    try:
        _pump(proc, sources, stdin_to=stdin_to)
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the child if it still runs (kill it after 5 s), and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pump(proc: subprocess.Popen[bytes], sources: list[_Source], *, stdin_to: int | None) -> None:
    """Copy the child's output through the redactors until it ends (see ``_DRAIN_IDLE``)."""
    # One selector for all outputs, so writes reach us roughly in the order the child made them.
    with selectors.DefaultSelector() as sel:
        for source in sources:
            sel.register(source.fd, selectors.EVENT_READ, source)
        if stdin_to is not None:
            sel.register(0, selectors.EVENT_READ, _STDIN)
        last_data = exited_at = time.monotonic()
        exited = False
        while any(source.open for source in sources):
            if not exited and proc.poll() is not None:
                exited = True
                # The idle time counts from the exit: a child that was quiet for a while must
                # not cut short what its background job prints right after.
                last_data = exited_at = time.monotonic()
            events = sel.select(_POLL_INTERVAL if not exited else _DRAIN_IDLE / 4)
            for key, _ in events:
                if key.data == _STDIN:
                    _forward_stdin(sel, stdin_to)
                elif _pass_on(sel, key.data):
                    last_data = time.monotonic()
            if not exited:
                continue
            now = time.monotonic()
            if now - exited_at >= _DRAIN_MAX:
                log.warning(
                    f"the command exited {_DRAIN_MAX:.0f}s ago and something it started still "
                    "writes to its output: no longer passed on, so the job can end (and its "
                    "leases be revoked)"
                )
            elif events or now - last_data < _DRAIN_IDLE:
                continue
            for source in sources:
                if source.open:
                    _close(sel, source)


def _pass_on(sel: selectors.BaseSelector, source: _Source) -> bool:
    """Read once from ``source`` and write the redacted result; False at its end."""
    try:
        chunk = os.read(source.fd, _READ_SIZE)
    except OSError as exc:
        # A pty master reports the end of the child's terminal as EIO (Linux).
        if exc.errno != errno.EIO:
            raise
        chunk = b""
    if not chunk:
        _close(sel, source)
        return False
    out = source.redactor.feed(chunk)
    if out:
        try:
            _write_all(source.out_fd, out)
        except BrokenPipeError:
            # Our reader is gone (`| head`): let the child see a closed pipe too.
            _close(sel, source)
    return True


def _forward_stdin(sel: selectors.BaseSelector, master: int | None) -> None:
    try:
        data = os.read(0, 4096)
    except OSError:
        data = b""
    if not data or master is None:
        sel.unregister(0)
        return
    with contextlib.suppress(OSError):
        _write_all(master, data)
