"""A backend that signs in and reads in a process of its own, on the machine's other core.

Resolution is CPU-bound where it should not be: importing hvac (with requests) and botocore and
building a Secrets Manager client is ~0.3 s of CPU on a 2-core runner, and one interpreter runs it
on one core at a time (the GIL), so each backend's network round trips also wait for the other's
import. Measured with 50 Vault + 50 AWS secrets, OIDC sign-in, 20 ms each way
(``bench/oidc_resolution.py``): hvac's import ended 280 ms into resolution instead of ~130, and the
AWS sign-in took 200 ms for two round trips. A backend forked off before any thread starts imports
its library and talks to its store on the second core while the first does everything else.

Only a backend class that says :attr:`Backend.RUNS_APART` (nothing of it must be revoked or renewed
later: no lease, no token of ours; AWS) runs apart, only on Linux (``fork`` of a process without
threads; macOS's system libraries refuse to run in a forked child), only when another backend
resolves at the same time (alone it would gain nothing) and only when its library is not imported
yet (a library already loaded costs nothing more). ``JOBSECRETS_FORK=0`` turns it off.

The parent holds a :class:`ForkedBackend` in the ledger and everywhere else: each runtime call is
sent to the child over a socketpair (pickled: arguments, results, values, the errors a backend
raises), the child makes it on the real backend and answers, with the CI identity tokens it fetched
meanwhile (the parent masks those like its own). The child dies with the parent (SIGKILL on its
death) and is killed by :meth:`ForkedBackend.close`; terminating signals end it at once (it holds
nothing to revoke). Values cross only that socketpair, never a file or an argument.
"""

from __future__ import annotations

__all__ = ["ForkedBackend", "fork_apart", "may_fork"]

import contextlib
import functools
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any

from ..errors import BackendError, JobSecretsError
from .base import AccessCheck, Backend, Document, ReadRequest, ResultHook

log = logging.getLogger("jobsecrets")

_HEADER = struct.Struct("!Q")
_PR_SET_PDEATHSIG = 1


def may_fork(env: Mapping[str, str]) -> bool:
    """Whether this process may fork a backend off now: Linux, no thread but this one, not off."""
    return (
        sys.platform == "linux"
        and hasattr(os, "fork")
        and env.get("JOBSECRETS_FORK", "1") != "0"
        and threading.current_thread() is threading.main_thread()
        and _only_thread()
    )


def _only_thread() -> bool:
    """No other thread in the process: also none that ``threading`` does not know of (started with
    ``_thread``, as connections opened ahead are, or by a C library), which could hold a lock the
    child would then wait for forever."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def fork_apart(
    backends: Sequence[Backend], env: Mapping[str, str], *, keep: Set[str] = frozenset()
) -> list[Backend]:
    """``backends`` with each one that gains from a process of its own replaced by a
    :class:`ForkedBackend` running it (none when fewer than two, or :func:`may_fork` says no;
    never those named in ``keep``)."""
    if len(backends) < 2 or not may_fork(env):
        return list(backends)
    result: list[Backend] = []
    for backend in backends:
        module = type(backend).RUNS_APART
        if module and module not in sys.modules and backend.name not in keep:
            try:
                backend = ForkedBackend.start(backend)
            except OSError as error:  # no fork for us (limits): the same work, in this process
                log.debug("backend %r stays in process (%s)", backend.name, type(error).__name__)
        result.append(backend)
    return result


def _send(sock: socket.socket, payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _receive(sock: socket.socket) -> Any:
    """One message; ``EOFError`` when the other end is gone."""
    header = _exactly(sock, _HEADER.size)
    # Only ever from our own fork over a socketpair nobody else holds: the same program's objects.
    return pickle.loads(_exactly(sock, _HEADER.unpack(header)[0]))  # noqa: S301


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _die_with_parent(parent: int) -> None:
    """SIGKILL this child when the parent ends (Linux ``prctl``), however it ends."""
    with contextlib.suppress(Exception):
        import ctypes  # here only: ~5 ms of every run's start otherwise

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before prctl took effect
        os._exit(1)


class ForkedBackend(Backend):
    """The parent's side of a backend running in a child process (see the module docstring).

    Built by :meth:`start`; its class is made per backend class (a subclass of both), so class
    attributes and class methods (``EXPORTED_NAMES``, ``type_name``, option checks) are the real
    backend's, and only the runtime calls below go to the child.
    """

    _sock: socket.socket
    _pid: int
    _lock: threading.Lock
    _closed: bool
    _location: str

    @classmethod
    def start(cls, backend: Backend) -> ForkedBackend:
        """Fork a child that runs ``backend``; returns the parent's stand-in for it."""
        parent_sock, child_sock = socket.socketpair()
        for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice
            with contextlib.suppress(Exception):
                stream.flush()
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            parent_sock.close()
            child_sock.close()
            raise
        if pid == 0:  # pragma: no cover - the child; its behaviour is tested from outside
            code = 1
            try:
                parent_sock.close()
                _child(backend, child_sock, parent)
                code = 0
            finally:
                os._exit(code)
        child_sock.close()
        made = _stand_in_class(cls, type(backend))
        stand_in = made.__new__(made)
        Backend.__init__(stand_in, backend.name, backend.options, backend.context)
        stand_in._sock = parent_sock
        stand_in._pid = pid
        stand_in._lock = threading.Lock()
        stand_in._closed = False
        stand_in._location = _safe_location(backend)
        log.debug("backend %r: signs in and reads in process %d", backend.name, pid)
        return stand_in

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._closed:
                raise BackendError(f"backend {self.name!r}: used after it was closed")
            try:
                _send(self._sock, (method, args, kwargs))
                ok, result, tokens, trouble, location = _receive(self._sock)
            except (OSError, EOFError, pickle.UnpicklingError) as error:
                self._end_child()
                raise BackendError(
                    f"backend {self.name!r}: its process ended ({type(error).__name__})"
                ) from None
            except BaseException:
                # An exchange cut halfway (a signal): its answer would be read as the next
                # call's, so the child is not asked anything again.
                self._end_child()
                raise
        self.last_trouble = trouble
        self._location = location
        note = self.context.note_identity
        for token in tokens:
            if note is not None:
                note(token)
        if not ok:
            raise result
        return result

    def location(self) -> str:
        """Where the store is, as the child last said (never waits for the child)."""
        return self._location

    def expect_reads(self, paths: int) -> None:
        """Forwarded to the child (it opens the connections)."""
        self._call("expect_reads", paths)

    def login(self) -> None:
        """Signs in, in the child."""
        self._call("login")

    def read(self, request: ReadRequest) -> Document:
        """One read, in the child."""
        result: Document = self._call("read", request)
        return result

    def read_many(
        self,
        requests: Sequence[ReadRequest],
        max_workers: int = 8,
        on_result: ResultHook | None = None,
    ) -> list[Document | JobSecretsError]:
        """Every read, in the child, in one exchange (``on_result`` hears of each after it:
        only a backend with nothing to revoke runs apart)."""
        result: list[Document | JobSecretsError] = self._call(
            "read_many", list(requests), max_workers=max_workers
        )
        for request, got in zip(requests, result, strict=True):
            if on_result is not None:
                on_result(request, got)
        return result

    def preflight(self, requests: Sequence[ReadRequest]) -> None:
        """Forwarded to the child."""
        self._call("preflight", list(requests))

    def list_prefix(self, prefix: str) -> list[str]:
        """Forwarded to the child."""
        result: list[str] = self._call("list_prefix", prefix)
        return result

    def check_access(self, request: ReadRequest) -> AccessCheck:
        """Forwarded to the child."""
        result: AccessCheck = self._call("check_access", request)
        return result

    def metadata(self, request: ReadRequest) -> Document | None:
        """Forwarded to the child."""
        result: Document | None = self._call("metadata", request)
        return result

    def dated(self, request: ReadRequest, document: Document) -> Document:
        """Forwarded to the child (a ``max_age`` rule's DescribeSecret)."""
        result: Document = self._call("dated", request, document)
        return result

    def exported_variables(self) -> Mapping[str, str]:
        """Forwarded to the child."""
        result: Mapping[str, str] = self._call("exported_variables")
        return result

    def identity_info(self) -> Mapping[str, Any]:
        """Forwarded to the child."""
        result: Mapping[str, Any] = self._call("identity_info")
        return result

    def close(self) -> None:
        """End the child now (it holds nothing to revoke), without waiting for a call in flight:
        a thread still waiting on it then gets an error instead of an answer."""
        if self._closed:
            return
        self._kill()
        # Closed only when no call is in flight: a thread inside recv() on it returns at once
        # from the shut-down socket, and is left its descriptor until it has.
        if self._lock.acquire(blocking=False):
            try:
                self._sock.close()
            finally:
                self._lock.release()

    def _end_child(self) -> None:
        """After a failed exchange (the caller holds the lock): the child and socket are done."""
        self._kill()
        self._sock.close()

    def _kill(self) -> None:
        self._closed = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._pid, 0)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)


@functools.cache
def _stand_in_class(base: type[ForkedBackend], kind: type[Backend]) -> type[ForkedBackend]:
    """``base`` first (the calls that go to the child), then ``kind`` (its class attributes)."""
    made: type[ForkedBackend] = type(f"Forked{kind.__name__}", (base, kind), {})
    return made


def _safe_location(backend: Backend) -> str:
    try:
        return str(backend.location())
    except Exception:
        return ""


def _child(backend: Backend, sock: socket.socket, parent: int) -> None:  # pragma: no cover
    """The child's loop: make each call the parent sends on ``backend`` and answer it."""
    _die_with_parent(parent)
    # Only the parent answers on stdin/stdout: a process reading the CLI's output until it
    # closes (the Action's node) must not wait for this one too. Errors still go to stderr.
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
    # Nothing to revoke here: a cancelled job ends this process at once, with no cleanup of the
    # parent's (which the inherited handlers would run on a copy of its state).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    fetched: list[str] = []
    fetch = backend.context.identity
    if fetch is not None:

        def identity(audience: str | None) -> str:
            token = fetch(audience)
            fetched.append(token)
            return token

        backend.context.identity = identity
    while True:
        try:
            method, args, kwargs = _receive(sock)
        except EOFError:
            return
        ok, result = _make(backend, method, args, kwargs)
        tokens, fetched[:] = list(fetched), []
        try:
            _send(sock, (ok, result, tokens, backend.last_trouble, _safe_location(backend)))
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            # A result that cannot cross (never expected): the call fails, not the process.
            failed = BackendError(
                f"backend {backend.name!r}: {method} gave what cannot be handed over "
                f"({type(error).__name__})"
            )
            _send(sock, (False, failed, tokens, backend.last_trouble, _safe_location(backend)))


def _make(
    backend: Backend, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any]:  # pragma: no cover - runs in the child
    call: Callable[..., Any] = getattr(backend, method)
    try:
        result = call(*args, **kwargs)
    except JobSecretsError as error:
        return False, _portable(backend, error)
    except Exception as error:
        # As read_safely does: the text of an unexpected error may quote an answer.
        return False, BackendError(
            f"backend {backend.name!r}: {method} failed unexpectedly ({type(error).__name__})"
        )
    return True, result


def _portable(backend: Backend, error: JobSecretsError) -> JobSecretsError:  # pragma: no cover
    """``error`` if it survives pickling, else a BackendError saying what it was."""
    try:
        pickle.loads(pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301 (ours)
    except Exception:
        return BackendError(f"backend {backend.name!r}: {type(error).__name__}: {error}")
    return error
