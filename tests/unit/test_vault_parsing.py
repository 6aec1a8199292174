"""The Vault backend's parsing of server answers: hostile numbers and text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobsecrets.backends.vault.answers import clean_text, kv_date, parse_time, seconds
from jobsecrets.timeutil import iso_utc


def test_seconds_tolerates_hostile_ttls() -> None:
    assert seconds(3600) == 3600
    assert seconds("60") == 60
    for bad in ("soon", None, [], {}, True, -5, 10**12, float("nan")):
        assert seconds(bad, 7) == 7


@given(
    created=st.one_of(st.text(max_size=40), st.datetimes().map(lambda d: d.isoformat())),
    offset=st.sampled_from(["", "Z", "+23:59", "-23:59", "+00:00"]),
    rotated=st.one_of(st.none(), st.text(max_size=30), st.integers()),
)
def test_any_time_of_an_answer_is_one_utc_can_show_or_none(
    created: str, offset: str, rotated: object
) -> None:
    """Vault's created_time and rotated_at are the server's text: whatever they hold, the time
    taken from them can be written in UTC (messages, audit records) or is None.
    '0001-01-01T00:00:00+23:59' parsed, then every write of it was an OverflowError."""
    moment, _ = kv_date(created + offset, {"rotated_at": rotated})
    if moment is not None:
        assert iso_utc(moment)
    assert parse_time("0001-01-01T00:00:00+23:59") is None
    assert parse_time("9999-12-31T23:59:59-23:59") is None
    assert parse_time("2026-12-04T13:00:00.123456789Z") is not None


def test_clean_strips_c0_c1_and_bounds_length() -> None:
    cleaned = clean_text("a\x1b[31mb\x9bc\nd" + "x" * 500)
    assert "\x1b" not in cleaned and "\x9b" not in cleaned and "\n" not in cleaned
    assert len(cleaned) <= 203


def test_a_half_done_login_can_be_retried() -> None:
    """A login that fails before it has a token leaves no client behind to short-circuit a retry."""
    from jobsecrets.backends.base import BackendContext
    from jobsecrets.backends.vault import VaultBackend
    from jobsecrets.errors import AuthError

    env = {"VAULT_ADDR": "http://127.0.0.1:9"}
    backend = VaultBackend("vault", {"auth": {"method": "approle"}}, BackendContext(env=env))
    with pytest.raises(AuthError):
        backend.login()  # $VAULT_ROLE_ID is not set
    assert backend.token_record() is None
    with pytest.raises(AuthError):
        backend.login()  # fails again for the same reason instead of "succeeding" without a token


def test_the_environment_is_read_once_as_requests_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client does not walk the environment on every request (trust_env off), yet uses what
    requests would have found there: the proxy for its address unless NO_PROXY says otherwise,
    and REQUESTS_CA_BUNDLE when verifying."""
    from jobsecrets.backends.base import BackendContext
    from jobsecrets.backends.vault import VaultBackend

    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not read here")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    def client_for(address: str) -> Any:
        backend = VaultBackend("vault", {"address": address}, BackendContext(env={}))
        return backend._new_client("t")

    session = client_for("https://vault.example:8200").adapter.session
    assert session.trust_env is False
    assert session.proxies.get("https") == "http://proxy.example:3128"
    assert session.verify == str(bundle)

    monkeypatch.setenv("NO_PROXY", "vault.example")
    session = client_for("https://vault.example:8200").adapter.session
    assert not session.proxies
