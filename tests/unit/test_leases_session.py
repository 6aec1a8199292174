"""What the session adds around the ledger: the CI identity token is masked, and signals that
arrive while revoking are held until revocation is done."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from jobsecrets.commands.common import masks_for
from jobsecrets.resolved import Resolution
from jobsecrets.session import Session, Terminated, install_signal_handlers, signals_deferred


def _jwt() -> str:
    import base64
    import json

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"iss": "https://ci.example", "aud": "vault", "exp": int(time.time()) + 600}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


def test_the_ci_identity_token_is_masked(tmp_path: Path) -> None:
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        "version: 1\nidentity: {variable: MY_ID_TOKEN}\n"
        'backends: {v: {type: vault, address: "http://127.0.0.1:9"}}\n'
        "secrets:\n  A: v:kv/app#a\n"
    )
    token = _jwt()
    session = Session(str(spec), None, env={"MY_ID_TOKEN": token})
    assert session.context.identity is not None
    assert session.context.identity("vault") == token
    assert session.identity_audiences() == ["vault"]
    masks = masks_for(session, Resolution())
    printed = masks.redact_text(f"login with {token} done")
    assert token not in printed, "the identity token was not masked"


def test_signals_are_held_while_revoking() -> None:
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    install_signal_handlers()
    try:
        with signals_deferred() as arrived:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs between bytecodes: it must not raise here
            finished = True
        assert finished and arrived == [signal.SIGTERM]
        # Outside, the signal terminates again.
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_only_the_first_of_a_burst_of_signals_raises() -> None:
    """Each signal of a burst raised again, inside the ``finally`` blocks that revoke."""
    from jobsecrets._signals import LATER, TERMINATING

    previous = {sig: signal.getsignal(sig) for sig in TERMINATING}
    install_signal_handlers()
    try:
        with pytest.raises(Terminated) as first:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        assert first.value.signum == signal.SIGINT
        burst_survived = False
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            os.kill(os.getpid(), sig)
            time.sleep(0.02)
        burst_survived = True
        assert burst_survived and LATER == [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
        install_signal_handlers()  # a new command starts afresh
        assert LATER == []
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_export_refuses_an_unsafe_state_directory_before_writing_secret_files(
    tmp_path: Path,
) -> None:
    """`file: true` values go beside the state file by default: a directory other users may
    write to is refused before any value is fetched or written there, not after."""
    import json
    import stat

    from jobsecrets.commands.export import export_command
    from jobsecrets.errors import ConfigError

    (tmp_path / "store.json").write_text(json.dumps({"tls": {"key": "k3y-" + "x" * 20}}))
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        "version: 1\nbackends:\n  fake: {type: fake, file: store.json, journal: journal.jsonl}\n"
        "secrets:\n  TLS:\n    ref: fake:tls#key\n    file: true\n"
    )
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # world-writable, not sticky: others could swap our files
    assert not shared.stat().st_mode & stat.S_ISVTX
    with pytest.raises(ConfigError, match="writable by other users"):
        export_command(
            str(spec), None, "json",
            output=str(tmp_path / "out.json"), state=str(shared / "state.json"), files_dir=None,
        )  # fmt: skip
    journal = tmp_path / "journal.jsonl"
    reads = journal.read_text().count('"read"') if journal.exists() else 0
    assert reads == 0, "values were fetched before the state directory was checked"
    assert not any(shared.iterdir()), "a secret file was written into a shared directory"


def test_a_failed_export_keeps_what_it_could_not_revoke_for_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """export fails after recording its lease and cannot revoke it either (the store is gone):
    the state file must still name the lease, so the post step / after_script `revoke` retries
    it, instead of reporting "nothing to revoke" while the lease lives on."""
    import json

    from jobsecrets.commands.export import export_command
    from jobsecrets.errors import BackendError, ConfigError
    from jobsecrets.lifecycle.state import load_state
    from jobsecrets.testing.fake import FakeBackend

    (tmp_path / "store.json").write_text(
        json.dumps({"db/creds/ci": {"password": "pw-" + "x" * 20}})
    )
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        "version: 1\nbackends:\n  fake: {type: fake, file: store.json, lease_ttl: 600}\n"
        "secrets:\n  DB_PASS: fake:db/creds/ci#password\n"
    )

    def unreachable(self: FakeBackend, lease_id: str) -> None:
        raise BackendError(f"revoke lease {lease_id}: cannot reach the store")

    monkeypatch.setattr(FakeBackend, "revoke_lease", unreachable)
    monkeypatch.delenv("GITHUB_ENV", raising=False)  # so the github exporter fails
    monkeypatch.delenv("JOBSECRETS_GITHUB_EXPORT_ENV", raising=False)
    state = tmp_path / "state" / "state.json"
    with pytest.raises(ConfigError, match="GITHUB_ENV"):
        export_command(
            str(spec), None, "github", output=None, state=str(state), files_dir=None
        )  # fmt: skip
    ledger = load_state(str(state), {})
    assert ledger is not None, "the lease that could not be revoked is recorded nowhere"
    assert len(ledger.leases) == 1
