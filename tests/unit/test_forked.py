"""backends/forked.py in process: which backends run apart, and what crosses to the child and back.

A stand-in backend class (in this file) runs in a real forked child; the CLI with real stores is
tested in tests/integration/test_forked_backend.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest

from jobsecrets.backends import forked
from jobsecrets.backends.base import Backend, BackendContext, Document, ReadRequest
from jobsecrets.backends.forked import ForkedBackend, fork_apart, may_fork
from jobsecrets.errors import BackendError, ConfigError, JobSecretsError, SecretNotFound


class Apart(Backend):
    """Runs apart; reads answer with the pid of the process that made them."""

    type_name: ClassVar[str] = "apart"
    EXPORTED_NAMES: ClassVar[tuple[str, ...]] = ("APART_*",)
    RUNS_APART: ClassVar[str] = "jobsecrets_test_module_never_imported"

    def login(self) -> None:
        assert self.context.identity is not None
        self.token = self.context.identity("apart-audience")
        self.last_trouble = "503 once"

    def read(self, request: ReadRequest) -> Document:
        if request.path == "missing":
            raise SecretNotFound(f"{request.path} is not there", hint="create it")
        if request.path == "bad-config":
            raise ConfigError("bad", [], hint="fix it")
        if request.path == "bug":
            raise RuntimeError("an answer quoted: s3cr3t-in-the-message")
        return Document(data={"pid": os.getpid(), "path": request.path})

    def exported_variables(self) -> Mapping[str, str]:
        return {"APART_PID": str(os.getpid())}

    def identity_info(self) -> Mapping[str, Any]:
        return {"unpicklable": lambda: None}

    def location(self) -> str:
        return "apart://here"


class Stays(Apart):
    RUNS_APART: ClassVar[str] = ""


def context(noted: list[str]) -> BackendContext:
    return BackendContext(
        env={}, identity=lambda audience: f"token-for-{audience}", note_identity=noted.append
    )


def request(path: str) -> ReadRequest:
    return ReadRequest(path=path, options={}, variables=("V",), ref=f"apart:{path}")


@pytest.fixture
def started() -> Any:
    made: list[ForkedBackend] = []

    def start(backend: Backend) -> ForkedBackend:
        stand_in = ForkedBackend.start(backend)
        made.append(stand_in)
        return stand_in

    yield start
    for stand_in in made:
        stand_in.close()


def test_calls_run_in_the_child_and_results_come_back(started: Any) -> None:
    noted: list[str] = []
    backend = started(Apart("a", {"x": 1}, context(noted)))
    assert isinstance(backend, Apart) and isinstance(backend, ForkedBackend)
    assert backend.EXPORTED_NAMES == ("APART_*",) and backend.type_name == "apart"
    assert backend.location() == "apart://here"  # known before any call
    backend.login()
    assert noted == ["token-for-apart-audience"], "the child's identity token was not handed over"
    assert backend.last_trouble == "503 once"
    results = backend.read_many([request("one"), request("missing"), request("bad-config")])
    first = results[0]
    assert isinstance(first, Document) and first.data["path"] == "one"
    assert first.data["pid"] != os.getpid(), "read in this process, not the child"
    missing, bad = results[1], results[2]
    assert isinstance(missing, SecretNotFound) and missing.hint == "create it"
    assert isinstance(bad, ConfigError) and bad.hint == "fix it" and bad.exit_code == 2
    assert backend.exported_variables()["APART_PID"] == str(first.data["pid"])


def test_errors_raised_in_the_child_are_raised_here(started: Any) -> None:
    backend = started(Apart("a", {}, context([])))
    with pytest.raises(SecretNotFound) as found:
        backend.read(request("missing"))
    assert found.value.hint == "create it"
    with pytest.raises(BackendError) as unexpected:
        backend.read(request("bug"))
    # Only the type of an unexpected error crosses: its text may quote a store's answer.
    assert "RuntimeError" in str(unexpected.value)
    assert "s3cr3t" not in str(unexpected.value)
    with pytest.raises(BackendError) as unpicklable:
        backend.identity_info()
    assert "cannot be handed over" in str(unpicklable.value)
    # The child survived all three.
    assert isinstance(backend.read(request("again")), Document)


def test_close_ends_the_child_and_later_calls_fail(started: Any) -> None:
    backend = started(Apart("a", {}, context([])))
    pid = backend._pid
    backend.close()
    backend.close()  # twice is fine
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped
    with pytest.raises(BackendError):
        backend.read(request("one"))


def test_a_call_in_flight_gets_an_error_when_closed(started: Any) -> None:
    class Slow(Apart):
        def read(self, request: ReadRequest) -> Document:
            time.sleep(30)
            raise AssertionError("not reached")

    backend = started(Slow("s", {}, context([])))
    outcome: list[BaseException | Document] = []

    def read() -> None:
        try:
            outcome.append(backend.read(request("slow")))
        except JobSecretsError as error:
            outcome.append(error)

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.3)
    started_at = time.monotonic()
    backend.close()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started_at < 5
    assert len(outcome) == 1 and isinstance(outcome[0], BackendError)


def test_a_child_killed_from_outside_is_an_error_not_a_hang(started: Any) -> None:
    backend = started(Apart("a", {}, context([])))
    os.kill(backend._pid, signal.SIGKILL)
    with pytest.raises(BackendError) as error:
        backend.login()
    assert "process ended" in str(error.value)


def test_which_backends_run_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "may_fork", lambda env: env.get("JOBSECRETS_FORK") != "0")
    monkeypatch.setattr(ForkedBackend, "start", classmethod(lambda cls, b: ("forked", b.name)))

    def decide(backends: Sequence[Backend], **kw: Any) -> list[Any]:
        return fork_apart(backends, kw.pop("env", {}), **kw)

    ctx = context([])
    apart, stays = Apart("a", {}, ctx), Stays("s", {}, ctx)
    assert decide([apart, stays]) == [("forked", "a"), stays]
    assert decide([apart]) == [apart], "alone it gains nothing"
    assert decide([apart, stays], env={"JOBSECRETS_FORK": "0"}) == [apart, stays]
    assert decide([apart, stays], keep={"a"}) == [apart, stays]
    monkeypatch.setattr(Apart, "RUNS_APART", "os")  # its library is loaded already
    assert decide([apart, stays]) == [apart, stays]


def test_may_fork_only_without_other_threads() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not may_fork({})
    finally:
        stop.set()
        thread.join()
    assert not may_fork({"JOBSECRETS_FORK": "0"})


def test_may_fork_sees_threads_threading_does_not_know() -> None:
    import _thread

    stop = threading.Event()
    _thread.start_new_thread(stop.wait, ())  # as connections opened ahead are started
    try:
        end = time.monotonic() + 5
        while len(os.listdir("/proc/self/task")) < threading.active_count() + 1:
            assert time.monotonic() < end, "the thread never started"
            time.sleep(0.01)
        assert not may_fork({})
    finally:
        stop.set()


def test_an_exchange_cut_halfway_ends_the_child(
    started: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal between sending a call and reading its answer: the answer would be taken for the
    next call's, so the child is ended and every later call fails instead."""
    backend = started(Apart("a", {}, context([])))
    pid = backend._pid
    real_receive = forked._receive

    def interrupted(sock: Any) -> Any:
        monkeypatch.setattr(forked, "_receive", real_receive)
        raise KeyboardInterrupt

    monkeypatch.setattr(forked, "_receive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        backend.read(request("one"))
    with pytest.raises(BackendError):
        backend.read(request("two"))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped
