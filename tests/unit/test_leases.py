"""The lease ledger and its state file, against an in-memory store that remembers what is alive.

Every test asserts with booleans: a failing assertion must not print a token or a value.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_spec_property import SCALARS, _paths, _values

from jobsecrets.backends.base import (
    Backend,
    BackendContext,
    Lease,
    ReadRequest,
)
from jobsecrets.errors import BackendError, ConfigError
from jobsecrets.lifecycle.cipher import STATE_KEY_ENV
from jobsecrets.lifecycle.ledger import Ledger
from jobsecrets.lifecycle.renewal import Renewal, Renewer, due_at
from jobsecrets.lifecycle.state import default_state_path, load_state, write_state
from jobsecrets.testing import MemoryBackend, MemoryStore

# Values that must never reach a state file (the store "returns" them with each lease).
CANARY_VALUE = "canary-value-" + secrets.token_hex(8)


def new_store() -> MemoryStore:
    """A store that leases every read for 30 s and remembers what is alive."""
    return MemoryStore(
        lease_ttl=30,
        documents={
            path: {"password": CANARY_VALUE}
            for path in ("database/creds/ci", *(f"database/creds/r{n}" for n in range(3)))
        },
    )


def make_ledger(store: MemoryStore, *, token: bool = True, reads: int = 1) -> Ledger:
    ledger = Ledger()
    backend = store.backend("vault", {"token": token})
    ledger.add_backend(backend)
    backend.login()
    for number in range(reads):
        document = backend.read(ReadRequest(f"database/creds/r{number}"))
        assert document.lease is not None
        ledger.add_lease(document.lease)
    return ledger


def test_state_file_holds_ids_never_values(tmp_path: Path) -> None:
    store = new_store()
    ledger = make_ledger(store, reads=2)
    path = tmp_path / "state" / "state.json"
    write_state(ledger, str(path))
    text = path.read_text()
    assert CANARY_VALUE not in text, "a secret value reached the state file"
    state = json.loads(text)
    assert {lease["lease_id"] for lease in state["leases"]} == set(store.leases)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [e["accessor"] for e in state["tokens"]] == [ledger.tokens()[0].accessor]


def test_two_exports_merge_into_one_state_file_and_revoke_ends_both(tmp_path: Path) -> None:
    store = new_store()
    path = str(tmp_path / "state.json")
    write_state(make_ledger(store, reads=1), path)
    write_state(make_ledger(store, reads=2), path)
    state = json.loads(Path(path).read_text())
    assert len(state["leases"]) == 3 and len(state["tokens"]) == 2
    ledger = load_state(path, {}, store.state_factory)
    assert ledger is not None
    report = ledger.revoke_all()
    assert report.ok, report.summary()
    assert report.leases_revoked == 3 and report.tokens_revoked == 2
    assert not store.leases and not store.tokens, "something outlived revoke"


def test_revoke_is_idempotent_and_fine_with_expired_leases(tmp_path: Path) -> None:
    store = new_store()
    path = str(tmp_path / "state.json")
    write_state(make_ledger(store, reads=2), path)
    store.leases.clear()  # they expired on their own
    first = load_state(path, {}, store.state_factory)
    assert first is not None and first.revoke_all().ok
    second = load_state(path, {}, store.state_factory)
    assert second is not None
    again = second.revoke_all()
    assert again.ok, again.summary()


def test_a_failed_lease_revoke_stays_in_the_state_for_a_retry(tmp_path: Path) -> None:
    store = new_store()
    path = str(tmp_path / "state.json")
    write_state(make_ledger(store, token=False, reads=2), path)
    stuck = sorted(store.leases)[0]
    store.fail_revoke.add(stuck)
    ledger = load_state(path, {}, store.state_factory)
    assert ledger is not None
    report = ledger.revoke_all()
    assert not report.ok and report.leases_revoked == 1
    assert any(stuck in failure for failure in report.failures)
    write_state(ledger, path, merge=False)
    kept = json.loads(Path(path).read_text())
    assert [lease["lease_id"] for lease in kept["leases"]] == [stuck]

    store.fail_revoke.clear()  # the store is back
    retry = load_state(path, {}, store.state_factory)
    assert retry is not None
    assert retry.revoke_all().ok and not store.leases


def test_denied_lease_revoke_is_ended_by_revoking_its_token(tmp_path: Path) -> None:
    store = new_store()
    store.deny_revoke = True  # Vault's default policy: no sys/leases/revoke
    ledger = make_ledger(store, reads=2)
    report = ledger.revoke_all()
    assert report.ok, report.summary()
    assert report.leases_revoked == 0 and report.leases_with_token == 2
    assert not store.leases and not store.tokens
    assert "ended with their token" in report.summary()


def test_denied_lease_of_a_user_token_is_a_failure() -> None:
    store = new_store()
    store.deny_revoke = True
    ledger = make_ledger(store, token=False, reads=1)
    report = ledger.revoke_all()
    assert not report.ok and len(ledger.leases) == 1


def test_encrypted_tokens_need_the_key(tmp_path: Path) -> None:
    store = new_store()
    path = str(tmp_path / "state.json")
    key = secrets.token_hex(32)
    ledger = make_ledger(store, reads=1)
    token = ledger.tokens()[0].token
    from jobsecrets.lifecycle.cipher import StateCipher

    write_state(ledger, path, cipher=StateCipher(key))
    text = Path(path).read_text()
    assert token not in text, "the token is in the state file in clear"
    assert "token_sealed" in text

    without = load_state(path, {}, store.state_factory)
    assert without is not None
    report = without.revoke_all()
    assert not report.ok and any(STATE_KEY_ENV in f for f in report.failures)
    write_state(without, path, merge=False)  # kept, still sealed, for a retry with the key
    assert "token_sealed" in Path(path).read_text()

    wrong = load_state(path, {STATE_KEY_ENV: secrets.token_hex(32)}, store.state_factory)
    assert wrong is not None and not wrong.revoke_all().ok

    right = load_state(path, {STATE_KEY_ENV: key}, store.state_factory)
    assert right is not None
    assert right.revoke_all().ok and not store.tokens


def test_short_state_key_is_refused() -> None:
    from jobsecrets.lifecycle.cipher import StateCipher

    with pytest.raises(ConfigError, match="too short"):
        StateCipher("short")


def test_state_in_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by other users"):
        write_state(make_ledger(new_store()), str(shared / "state.json"))


def test_renewal_extends_leases_and_stops_at_the_max_ttl() -> None:
    store = new_store()
    ledger = make_ledger(store, reads=1)
    renewal = Renewal(ledger)
    lease = ledger.lease_list()[0]
    later = lease.obtained_at + lease.ttl * 0.7
    assert renewal.renew_due(now=later) == []
    assert len(store.events("renew")) == 1
    store.max_ttl = 5  # the next renewal is capped
    renewed = ledger.lease_list()[0]
    messages = renewal.renew_due(now=renewed.obtained_at + renewed.ttl * 0.7)
    assert len(store.events("renew")) == 2 and any("maximum TTL" in m for m in messages)
    renewal.renew_due(now=time.time() + 1000)
    assert len(store.events("renew")) == 2, "a capped lease was renewed again"


@pytest.mark.parametrize(
    ("ttl", "renew_after"),
    [(3, 1.5), (12, 6.0), (24, 14.0), (30, 20.0), (60, 40.0), (3600, 2400.0)],
)
def test_renewal_leaves_short_leases_half_their_ttl(ttl: int, renew_after: float) -> None:
    # At 2/3 of a 3 s lease, a renewal has 1 s to reach the store: a loaded CI machine missed it.
    store = new_store()
    ledger = Ledger()
    ledger.add_backend(store.backend("vault"))
    ledger.add_lease(Lease("vault", "db/creds/ci/x", ttl, True, "db/creds/ci"))
    renewal = Renewal(ledger)
    obtained = ledger.lease_list()[0].obtained_at
    assert due_at(obtained, ttl) == pytest.approx(obtained + renew_after)
    assert renewal.renew_due(now=obtained + renew_after - 0.01) == []
    assert store.events("renew") == [], "renewed before it was due"
    renewal.renew_due(now=obtained + renew_after)
    assert len(store.events("renew")) == 1
    next_due = Renewal(ledger).next_due()
    assert next_due is not None and renew_after - 0.5 <= next_due <= renew_after + 0.5


def test_each_renewal_is_logged_at_debug_with_the_time_it_had_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # -vv shows how close to expiry each renewal went out: what tells a late renewer thread on a
    # loaded machine from a store that refused. Lease ids and accessors only, never a value.
    store = new_store()
    ledger = make_ledger(store, token=True, reads=1)
    lease = ledger.lease_list()[0]
    record = ledger.backend_list()[0].token_record()
    assert record is not None and record.renewable
    later = max(lease.obtained_at + lease.ttl * 0.8, record.obtained_at + record.ttl * 0.8)
    with caplog.at_level(logging.DEBUG, logger="jobsecrets"):
        assert Renewal(ledger).renew_due(now=later) == []
    assert len(store.events("renew")) == 1 and len(store.events("renew-token")) == 1
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("renewed ")]
    assert len(lines) == 2, "one line per renewal"
    left = lease.obtained_at + lease.ttl - later
    assert f"renewed lease {lease.lease_id} with {left:.1f}s of {lease.ttl}s left" in lines[0]
    token_left = record.obtained_at + record.ttl - later
    assert f"renewed token {record.accessor} of 'vault' with {token_left:.1f}s of" in lines[1]
    shown = "\n".join(r.getMessage() for r in caplog.records)
    # A bool, so that a failure does not print the value it found.
    leaked = CANARY_VALUE in shown or record.token in shown
    assert not leaked, "a value or the token reached the log"


def test_renewer_thread_renews_before_expiry() -> None:
    store = new_store()
    ledger = Ledger()
    backend = store.backend("vault")
    ledger.add_backend(backend)
    ledger.add_lease(Lease("vault", "db/creds/ci/x", 1, True, "db/creds/ci"))
    renewer = Renewer(ledger, max_sleep=0.1).start()
    try:
        time.sleep(1.5)
    finally:
        renewer.stop()
    assert len(store.events("renew")) >= 2


class FlakyRenewBackend(MemoryBackend):
    """Its first renewal fails with an exception that is not a JobSecretsError (a backend bug,
    an answer the client library chokes on)."""

    failed = False

    def renew_lease(self, lease: Lease, increment: int | None = None) -> Lease:
        if not self.failed:
            self.failed = True
            raise RuntimeError("unexpected answer")
        return super().renew_lease(lease, increment)


def test_renewer_survives_an_unexpected_renewal_error() -> None:
    store = new_store()
    ledger = Ledger()
    ledger.add_backend(FlakyRenewBackend("vault", {}, BackendContext(env={}), store))
    ledger.add_lease(Lease("vault", "db/creds/ci/x", 2, True, "db/creds/ci"))
    messages: list[str] = []
    renewer = Renewer(ledger, on_failure=messages.append, max_sleep=0.1).start()
    try:
        deadline = time.monotonic() + 10
        while len(store.events("renew")) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        renewer.stop()
    assert len(store.events("renew")) >= 1, "the renewer stopped after one unexpected error"
    assert any("cannot renew lease" in m and "RuntimeError" in m for m in messages)


def test_a_lease_that_expired_while_the_store_was_away_is_no_longer_renewed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once past its end, every renewal failed ("lease not found") and was retried every few
    seconds until the job ended, a warning each time; it is given up now, with one message."""
    store = new_store()
    ledger = make_ledger(store, reads=1)
    renewal = Renewal(ledger)
    lease = ledger.lease_list()[0]

    def gone(self: MemoryBackend, lease: Lease, increment: int | None = None) -> Lease:
        store.record("renew", self.name, lease_id=lease.lease_id)
        raise BackendError("renew lease: rejected by 'vault': lease not found")

    monkeypatch.setattr(MemoryBackend, "renew_lease", gone)
    # Due but not yet expired: a failure is retried later.
    first = renewal.renew_due(now=lease.obtained_at + lease.ttl * 0.7)
    assert any("cannot renew lease" in m for m in first)
    # Past its end: said once, then never asked again.
    later = lease.obtained_at + lease.ttl + 1
    expired = renewal.renew_due(now=later)
    assert any("expired before it could be renewed" in m for m in expired)
    asked = len(store.events("renew"))
    for step in range(1, 20):
        assert renewal.renew_due(now=later + step * 5) == []
    assert len(store.events("renew")) == asked


def test_default_state_path_is_per_user_and_per_job() -> None:
    env = {"RUNNER_TEMP": "/runner/tmp", "GITHUB_RUN_ID": "7", "GITHUB_JOB": "deploy"}
    path = default_state_path(env)
    assert path.startswith(f"/runner/tmp/jobsecrets-{os.getuid()}/")
    assert path != default_state_path({**env, "GITHUB_JOB": "test"})
    assert default_state_path({"JOBSECRETS_STATE": "/x/s.json"}) == "/x/s.json"


def _memory_factory(store: MemoryStore) -> Callable[[str, str, dict[str, Any]], Backend]:
    """Backends for load_state: the store's for "vault" or type "memory", else unknown."""

    def build(name: str, type_name: str, options: dict[str, Any]) -> Backend:
        if type_name != "memory" and name != "vault":
            raise ConfigError(f"unknown backend type {type_name!r}")
        return MemoryBackend(name, options, BackendContext(env={}), store)

    return build


#: Damage to a state file: which place (an index into its places), how, with what.
_DAMAGE = st.lists(
    st.tuples(
        st.integers(0, 10**6),
        st.sampled_from(["replace", "remove", "sibling"]),
        _values(SCALARS),
        st.text(max_size=8),
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(damage=_DAMAGE)
def test_any_damage_to_a_state_file_is_reported_and_the_rest_still_revoked(
    tmp_path_factory: pytest.TempPathFactory, damage: list[tuple[int, str, Any, str]]
) -> None:
    """A state file (export's, read back by revoke) damaged anywhere: loading it is a
    ConfigError or a ledger, revoking never raises, and with leases, tokens and backends
    untouched every lease and token still ends. A list for a lease id, a token whose backend
    is gone: each was a traceback that revoked nothing (hypothesis found three)."""
    store = new_store()
    path = tmp_path_factory.mktemp("state") / "state.json"
    write_state(make_ledger(store, reads=2), str(path))
    doc = json.loads(path.read_text())
    touched: set[object] = set()
    for pick, how, value, key in damage:
        places = _paths(doc)[1:]
        if not places:
            break
        where = places[pick % len(places)]
        touched.add(where[0])
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        if how == "replace":
            parent[where[-1]] = value
        elif how == "remove":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[key] = value
        else:
            parent.append(value)
    path.write_text(json.dumps(doc, default=repr))
    try:
        ledger = load_state(str(path), {}, _memory_factory(store))
    except ConfigError:
        return
    assert ledger is not None
    ledger.revoke_all()
    if not touched & {"leases", "tokens", "backends"}:
        intact = not store.leases and not store.tokens
        assert intact, "an intact lease or token was not revoked"


def test_revoke_removes_only_secret_files_it_wrote_and_follows_no_link(tmp_path: Path) -> None:
    """revoke overwrites and removes the state file's secret files. A path a damaged or planted
    state file names elsewhere is left alone (it was zeroed and removed, whatever it was), and
    a symlink in a secrets directory is removed without zeroing what it points to."""
    store = new_store()
    path = tmp_path / "state.json"
    write_state(make_ledger(store), str(path))
    victim = tmp_path / "victim.txt"
    victim.write_text("someone's work")
    linked = tmp_path / "linked.txt"
    linked.write_text("more work")
    secrets_dir = tmp_path / "jobsecrets-files-abc123"
    secrets_dir.mkdir(mode=0o700)
    (secrets_dir / "LINK").symlink_to(linked)
    secret_file = secrets_dir / "TLS_KEY"
    secret_file.write_text("key material")
    state = json.loads(path.read_text())
    state["files"] = [str(victim), str(secrets_dir / "LINK"), str(secret_file)]
    path.write_text(json.dumps(state))
    ledger = load_state(str(path), {}, _memory_factory(store))
    assert ledger is not None
    report = ledger.revoke_all()
    assert victim.read_text() == "someone's work"
    assert linked.read_text() == "more work"
    assert not (secrets_dir / "LINK").is_symlink() and not secret_file.exists()
    assert not secrets_dir.exists(), "the emptied secrets directory stays"
    assert any("victim.txt" in failure and "not removed" in failure for failure in report.failures)


def test_revoke_follows_no_symlinked_directory_and_zeroes_no_hard_link(tmp_path: Path) -> None:
    """Found by a helper session: a state file naming ``jobsecrets-files-x/f``, where
    ``jobsecrets-files-x`` is a symlink to someone's directory, had their ``f`` removed and
    zeroed (its hard link ``other`` was all NUL bytes after). And a hard link planted in a real
    secrets directory was zeroed through, reaching the file's other name."""
    store = new_store()
    path = tmp_path / "state.json"
    write_state(make_ledger(store), str(path))
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    (victim_dir / "f").write_text("someone's data")
    os.link(victim_dir / "f", tmp_path / "other")
    (tmp_path / "jobsecrets-files-x").symlink_to(victim_dir)
    real_dir = tmp_path / "jobsecrets-files-y"
    real_dir.mkdir(mode=0o700)
    (tmp_path / "shared.txt").write_text("shared work")
    os.link(tmp_path / "shared.txt", real_dir / "HARD")
    state = json.loads(path.read_text())
    state["files"] = [str(tmp_path / "jobsecrets-files-x" / "f"), str(real_dir / "HARD")]
    path.write_text(json.dumps(state))
    ledger = load_state(str(path), {}, _memory_factory(store))
    assert ledger is not None
    report = ledger.revoke_all()
    assert (victim_dir / "f").read_text() == "someone's data"
    assert (tmp_path / "other").read_text() == "someone's data"
    assert (tmp_path / "shared.txt").read_text() == "shared work"  # not zeroed through HARD
    assert not (real_dir / "HARD").exists()  # our directory's name for it is removed
    assert any("jobsecrets-files-x" in failure for failure in report.failures)


def test_a_damaged_state_file_still_revokes_everything_it_can(tmp_path: Path) -> None:
    """A damaged entry (a lease missing its backend, an unknown backend type, a secret file that
    cannot be removed, garbage in a list) is reported, and every other lease and token is
    still revoked, instead of `revoke` failing before revoking anything. The damaged entries
    stay in the rewritten file, as they were."""
    store = new_store()
    path = tmp_path / "state.json"
    write_state(make_ledger(store, reads=2), str(path))
    state = json.loads(path.read_text())
    state["leases"].append({"lease_id": "database/creds/half"})
    state["leases"].append("garbage")
    state["backends"]["gone"] = {"type": "no-such-type", "options": {}}
    stuck = tmp_path / "stuck-dir"
    stuck.mkdir()
    (stuck / "child").write_text("x")
    state["files"].append(str(stuck))
    path.write_text(json.dumps(state))

    ledger = load_state(str(path), {}, _memory_factory(store))
    assert ledger is not None
    report = ledger.revoke_all()
    assert not store.leases and not store.tokens, "a damaged state file stopped revocation"
    assert report.leases_revoked == 2 and report.tokens_revoked == 1
    assert not report.ok
    text = "; ".join(report.failures)
    assert "database/creds/half" in text and "'gone'" in text and "stuck-dir" in text
    assert "odd leases" in text
    write_state(ledger, str(path), merge=False)  # what a failed revoke does
    kept = json.loads(path.read_text())
    assert {"lease_id": "database/creds/half"} in kept["leases"] and "garbage" in kept["leases"]
    assert kept["backends"]["gone"] == {"type": "no-such-type", "options": {}}


def test_two_exports_naming_different_servers_alike_revoke_each_on_its_own(tmp_path: Path) -> None:
    """Two specs in one job may both call their (different) servers `vault`."""
    stores = {"a": new_store(), "b": new_store()}
    path = str(tmp_path / "state.json")
    for server, store in stores.items():
        ledger = Ledger()
        backend = MemoryBackend(
            "vault", {"token": True, "server": server}, BackendContext(env={}), store
        )
        ledger.add_backend(backend)
        backend.login()
        document = backend.read(ReadRequest("database/creds/ci"))
        assert document.lease is not None
        ledger.add_lease(document.lease)
        write_state(ledger, path)

    def build(name: str, type_name: str, options: dict[str, Any]) -> Backend:
        return MemoryBackend(name, options, BackendContext(env={}), stores[options["server"]])

    ledger = load_state(path, {}, build)
    assert ledger is not None
    report = ledger.revoke_all()
    assert report.ok, report.summary()
    for store in stores.values():
        assert not store.leases and not store.tokens, "a lease or token outlived revoke"


def test_leases_are_revoked_at_once_not_one_after_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One at a time, a store that stopped answering held the job's end for every lease's
    attempts in turn. Each revocation here waits for the other two: one at a time, the first
    waits in vain and fails."""
    store = new_store()
    ledger = make_ledger(store, reads=3)
    together = threading.Barrier(3, timeout=5)
    original = MemoryBackend.revoke_lease

    def revoke_lease(self: MemoryBackend, lease_id: str) -> None:
        together.wait()
        original(self, lease_id)

    monkeypatch.setattr(MemoryBackend, "revoke_lease", revoke_lease)
    report = ledger.revoke_all()
    assert report.ok, report.summary()
    assert report.leases_revoked == 3 and not store.leases


def test_a_lease_its_token_could_not_end_either_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report said 'denied' whatever the store had answered (here: nothing at all)."""
    store = new_store()
    ledger = make_ledger(store, reads=1)
    store.fail_revoke.update(store.leases)

    def revoke_token(self: MemoryBackend, record: Any) -> None:
        raise BackendError("revoke token: cannot reach the store")

    monkeypatch.setattr(MemoryBackend, "revoke_token", revoke_token)
    report = ledger.revoke_all()
    lines = [f for f in report.failures if f.startswith("lease ")]
    assert len(lines) == 1
    assert "cannot reach the store; its token could not be revoked either" in lines[0]
    assert "denied" not in lines[0]


@pytest.mark.parametrize(
    ("written", "used"),
    [(3, 3.0), (2.5, 2.5), (0, 10.0), (-1, 10.0), ("3", 10.0), (True, 10.0), (1e9, 10.0)],
)
def test_revoke_bounds_its_requests_by_the_spec_s_timeout(
    tmp_path: Path, written: object, used: float
) -> None:
    """``revoke`` has no spec: it used the default 10 s per request whatever the spec said."""
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "spec_dir": str(tmp_path),
                "timeout": written,
                "backends": {"v": {"type": "vault", "options": {"address": "http://127.0.0.1:9"}}},
                "tokens": [],
                "leases": [],
                "files": [],
            }
        )
    )
    path.chmod(0o600)
    ledger = load_state(str(path), {})
    assert ledger is not None
    assert ledger.backends["v"].context.timeout == used


def test_the_state_file_records_the_spec_s_timeout(tmp_path: Path) -> None:
    store = new_store()
    ledger = make_ledger(store, reads=1)
    for backend in ledger.backend_list():
        backend.context.timeout = 4
    path = tmp_path / "state.json"
    write_state(ledger, str(path))
    assert json.loads(path.read_text())["timeout"] == 4


def test_concurrent_writers_of_one_state_file_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write read the file, merged and replaced it with no lock: two at once both read
    the same file, and the second replace dropped the first's lease and token. Slowed down
    between the read and the replace, that happened every time; the lock serializes them."""
    import jobsecrets.lifecycle.state as state_module

    replace = state_module.replace_with

    def slow_replace(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.2)  # the window between reading and replacing, made wide
        replace(*args, **kwargs)

    monkeypatch.setattr(state_module, "replace_with", slow_replace)
    store = new_store()
    path = str(tmp_path / "state.json")
    ledgers = [make_ledger(store, reads=1) for _ in range(4)]
    threads = [threading.Thread(target=write_state, args=(ledger, path)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = json.loads(Path(path).read_text())
    assert len(state["leases"]) == 4 and len(state["tokens"]) == 4, "a writer's records were lost"
    assert stat.S_IMODE(Path(path + ".lock").stat().st_mode) == 0o600


def test_an_existing_lock_file_keeps_its_mode(tmp_path: Path) -> None:
    """The lock file was set to 0600 when found otherwise: a path this process may not have
    made (as root, anyone's). Its mode is left alone; the lock still serializes writes."""
    path = tmp_path / "state.json"
    lock = tmp_path / "state.json.lock"
    lock.touch()
    lock.chmod(0o644)
    write_state(make_ledger(new_store(), reads=1), str(path))
    assert stat.S_IMODE(lock.stat().st_mode) == 0o644
    assert len(json.loads(path.read_text())["leases"]) == 1


def test_a_failed_export_takes_out_only_its_own_records(tmp_path: Path) -> None:
    """A failed export restored the bytes it read at its start, dropping what another export
    recorded meanwhile. Alone, it still leaves the file byte for byte as it was."""
    from jobsecrets.lifecycle.state import StateWriter

    store = new_store()
    path = tmp_path / "state.json"
    write_state(make_ledger(store, reads=1), str(path))
    before = path.read_bytes()

    alone = StateWriter(make_ledger(store, reads=2), str(path))
    alone.write()
    alone.ledger.revoke_all()  # the export failed and revoked what it obtained
    alone.restore()
    assert path.read_bytes() == before, "a lone failed export changed the state file"

    failing = StateWriter(make_ledger(store, reads=2), str(path))
    failing.write()
    other = make_ledger(store, reads=1)
    write_state(other, str(path))  # another export of the job, meanwhile
    failing.ledger.revoke_all()
    failing.restore()
    kept = json.loads(path.read_text())
    other_leases = {lease.lease_id for lease in other.lease_list()}
    assert other_leases <= {lease["lease_id"] for lease in kept["leases"]}
    assert len(kept["leases"]) == 2 and len(kept["tokens"]) == 2
    ledger = load_state(str(path), {}, store.state_factory)
    assert ledger is not None and ledger.revoke_all().ok
    assert not store.leases and not store.tokens, "something outlived revoke"


def test_export_s_state_follows_the_ledger_in_few_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While export resolves, the state file is written right after a sign-in and then at most
    once per interval however many leases come in (from the resolver's threads): a few small
    writes, not one per lease. What it ends with is what a single write records."""
    import jobsecrets.lifecycle.state as state_module
    from jobsecrets.lifecycle.state import StateWriter

    writes: list[float] = []
    replace = state_module.replace_with

    def counted(*args: Any, **kwargs: Any) -> None:
        writes.append(time.monotonic())
        replace(*args, **kwargs)

    monkeypatch.setattr(state_module, "replace_with", counted)
    store = MemoryStore(
        lease_ttl=30, documents={f"database/creds/r{n}": {"p": CANARY_VALUE} for n in range(200)}
    )
    ledger = Ledger()
    backend = store.backend("vault", {"token": True})
    ledger.add_backend(backend)
    path = tmp_path / "state" / "state.json"
    writer = StateWriter(ledger, str(path))
    writer.follow(interval=0.2)
    backend.login()
    ledger.signed_in(backend)
    assert wait_for(path.exists), "the sign-in was not written at once"
    assert json.loads(path.read_text())["tokens"][0]["accessor"] == ledger.tokens()[0].accessor

    def read(numbers: range) -> None:
        for number in numbers:
            document = backend.read(ReadRequest(f"database/creds/r{number}"))
            assert document.lease is not None
            ledger.add_lease(document.lease)
            time.sleep(0.012)  # the reads take ~0.6 s: several intervals

    threads = [threading.Thread(target=read, args=(range(n, 200, 4),)) for n in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wait_for(lambda: len(json.loads(path.read_text())["leases"]) == 200)
    took = time.monotonic() - started
    writer.write()
    # The sign-in's, one per interval while the leases came in (a loaded machine reads slower,
    # so counted by time), the last one's: about 6 here, never 200.
    most = 3 + int(took / 0.2) + 1
    assert 3 <= len(writes) <= most, f"{len(writes)} writes for one sign-in and 200 leases"
    gaps = [b - a for a, b in itertools.pairwise(writes[1:-1])]
    assert all(gap >= 0.15 for gap in gaps), "progress writes closer than the interval"
    final = json.loads(path.read_text())
    single = tmp_path / "single.json"
    write_state(ledger, str(single))
    expected = json.loads(single.read_text())
    for doc in (final, expected):
        del doc["created"]
    assert final == expected, "the progress writes changed what export records"
    assert CANARY_VALUE not in path.read_text()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_damage_a_failed_revoke_keeps_survives_every_rewrite(tmp_path: Path) -> None:
    """A section of the wrong type and garbage entries are kept as they were by a failed
    revoke's rewrite (under 'damaged' for a section), reported again by the next revoke, and
    kept by a later export's merge too (which raised AttributeError on a garbage token)."""
    store = new_store()
    path = tmp_path / "state.json"
    write_state(make_ledger(store, reads=1), str(path))
    doc = json.loads(path.read_text())
    doc["tokens"].append(5)
    doc["files"] = "not a list"
    path.write_text(json.dumps(doc))
    for _round in range(2):
        ledger = load_state(str(path), {}, _memory_factory(store))
        assert ledger is not None
        report = ledger.revoke_all()
        assert not report.ok and "'files'" in report.summary()
        write_state(ledger, str(path), merge=False)
        kept = json.loads(path.read_text())
        assert kept["tokens"] == [5] and kept["damaged"] == {"files": "not a list"}
    assert not store.leases and not store.tokens
    write_state(make_ledger(store, reads=1), str(path))  # a later export of the job
    merged = json.loads(path.read_text())
    assert 5 in merged["tokens"] and merged["damaged"] == {"files": "not a list"}
    assert len(merged["leases"]) == 1
