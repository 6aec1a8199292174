"""The overall deadline (``settings: {deadline}``) is enforced by the resolver, end to end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobsecrets.backends.base import BackendContext
from jobsecrets.errors import BackendError
from jobsecrets.lifecycle.ledger import Ledger
from jobsecrets.resolver import resolve
from jobsecrets.spec import Spec
from jobsecrets.testing.specs import SpecBuilder, read_journal


def fake_spec(tmp_path: Path, deadline: str, **options: object) -> Spec:
    builder = (
        SpecBuilder()
        .fake(tmp_path, {"slow": {"v": "x"}, "other": {"v": "y"}}, **options)
        .section("settings", {"deadline": deadline})
        .secret("SLOW", "fake:slow#v")
        .secret("OTHER", "fake:other#v")
    )
    return builder.parse(str(builder.write(tmp_path)))


def events(tmp_path: Path) -> list[dict[str, object]]:
    return read_journal(tmp_path)


def test_deadline_fails_in_time_and_names_what_was_pending(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "1s", delay=4)
    context = BackendContext(env={}, spec_dir=str(tmp_path))
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        resolve(spec, context, Ledger())
    elapsed = time.monotonic() - started
    # Raised at the deadline, not when the slow reads finish (4 s); wide margin for a loaded CI.
    assert 0.9 <= elapsed < 3.5, elapsed
    message = info.value.message
    assert "deadline (1s)" in message
    assert "'fake'" in message and "SLOW" in message and "OTHER" in message
    assert context.deadline is not None, "backends must see the deadline in their context"


def test_leases_obtained_after_the_deadline_are_revoked_by_the_late_thread(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "1s", delay=1.5, lease_ttl=60)
    ledger = Ledger()
    with pytest.raises(BackendError):
        resolve(spec, BackendContext(env={}, spec_dir=str(tmp_path)), ledger)
    assert ledger.revoke_all().ok  # what the caller does; the late leases are not there yet
    # The reads finish ~0.5 s later; their leases must be revoked without anyone asking.
    limit = time.monotonic() + 5
    while time.monotonic() < limit:
        leased = {e["lease_id"] for e in events(tmp_path) if e["event"] == "lease"}
        revoked = {e["lease_id"] for e in events(tmp_path) if e["event"] == "revoke"}
        if len(leased) == 2 and leased <= revoked:
            break
        time.sleep(0.05)
    assert len(leased) == 2 and leased <= revoked, (leased, revoked)
    assert not ledger.leases


def test_a_fast_resolution_is_not_affected(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "5s", delay=0.1)
    resolution = resolve(spec, BackendContext(env={}, spec_dir=str(tmp_path)), Ledger())
    assert sorted(v.name for v in resolution.variables) == ["OTHER", "SLOW"]


def test_leases_obtained_after_an_interrupt_are_revoked_by_the_late_thread(
    tmp_path: Path,
) -> None:
    """SIGINT/SIGTERM during resolution: the caller revokes the ledger at once, so leases the
    reads obtain afterwards must be revoked by their threads, as after the deadline."""
    import signal

    spec = fake_spec(tmp_path, "60s", delay=0.8, lease_ttl=60)
    ledger = Ledger()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            resolve(spec, BackendContext(env={}, spec_dir=str(tmp_path)), ledger)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert ledger.revoke_all().ok  # what Session.finish() does
    limit = time.monotonic() + 5
    while time.monotonic() < limit:
        leased = {e["lease_id"] for e in events(tmp_path) if e["event"] == "lease"}
        revoked = {e["lease_id"] for e in events(tmp_path) if e["event"] == "revoke"}
        if len(leased) == 2 and leased <= revoked:
            break
        time.sleep(0.05)
    assert len(leased) == 2
    assert leased <= revoked, "a lease obtained after the interrupt was never revoked"
    assert not ledger.leases


def test_at_the_deadline_the_finished_backends_reads_are_reported(tmp_path: Path) -> None:
    """A fast backend's reads (leases issued) are reported read and withheld; the slow backend's
    entries fail with the deadline's error."""
    from jobsecrets.resolved import Resolution
    from jobsecrets.testing.specs import JOURNAL, STORE

    builder = (
        SpecBuilder()
        .fake(tmp_path, {"fast": {"v": "x"}, "slow": {"v": "y"}}, lease_ttl=60)
        .backend("laggard", type="fake", file=STORE, journal=JOURNAL, delay=4)
        .section("settings", {"deadline": "1s"})
        .secret("FAST", "fake:fast#v")
        .secret("SLOW", "laggard:slow#v")
    )
    spec = builder.parse(str(builder.write(tmp_path)))
    reported: list[Resolution] = []
    ledger = Ledger()
    context = BackendContext(env={}, spec_dir=str(tmp_path))
    with pytest.raises(BackendError, match="deadline") as info:
        resolve(spec, context, ledger, on_failure=reported.append)
    (partial,) = reported
    assert [v.name for v in partial.variables] == ["FAST"]
    assert partial.variables[0].lease_id in ledger.leases
    (slow,) = partial.failed
    assert slow.name == "SLOW" and slow.error is info.value
    ledger.revoke_all()


def test_at_the_deadline_a_read_that_came_back_keeps_its_lease_in_the_report(
    tmp_path: Path,
) -> None:
    """One backend, two reads: one answered with a lease, one stalled past the deadline. The
    backend is abandoned and each entry fails with the deadline's error; the answered one's
    failure now carries its document, so the audit log names the lease issued (it said
    ``lease: null`` for a lease that existed, and was revoked)."""
    from jobsecrets.backends.base import Document, Lease, ReadRequest
    from jobsecrets.resolved import Resolution
    from jobsecrets.testing.memory import MemoryStore

    def answer(request: ReadRequest) -> Document:
        if request.path == "slow":
            time.sleep(3)
        lease = Lease("memory", f"memory/{request.path}/1", 60, True, request.path)
        with store._lock:
            store.leases[lease.lease_id] = 60
        return Document({"v": "x"}, lease=lease)

    store = MemoryStore(handler=answer)
    builder = (
        SpecBuilder()
        .backend("memory", type="fake")
        .section("settings", {"deadline": "1s"})
        .secret("FAST", "memory:fast#v")
        .secret("SLOW", "memory:slow#v")
    )
    spec = builder.parse(str(builder.write(tmp_path)))
    reported: list[Resolution] = []
    ledger = Ledger()
    context = BackendContext(env={}, spec_dir=str(tmp_path))
    with pytest.raises(BackendError, match="deadline"):
        resolve(spec, context, ledger, backend_factory=store.factory, on_failure=reported.append)
    (partial,) = reported
    failed = {f.name: f for f in partial.failed}
    assert sorted(failed) == ["FAST", "SLOW"], sorted(failed)
    fast = failed["FAST"].document
    assert fast is not None and fast.lease is not None, "the lease issued is not reported"
    assert fast.lease.lease_id == "memory/fast/1"
    assert failed["SLOW"].document is None
    ledger.revoke_all()
