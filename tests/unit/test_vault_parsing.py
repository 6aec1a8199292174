"""The Vault backend's parsing of server answers: hostile numbers and text."""

from __future__ import annotations

from jobsecrets.backends.vault.answers import clean_text, seconds


def test_seconds_tolerates_hostile_ttls() -> None:
    assert seconds(3600) == 3600
    assert seconds("60") == 60
    for bad in ("soon", None, [], {}, True, -5, 10**12, float("nan")):
        assert seconds(bad, 7) == 7


def test_clean_strips_c0_c1_and_bounds_length() -> None:
    cleaned = clean_text("a\x1b[31mb\x9bc\nd" + "x" * 500)
    assert "\x1b" not in cleaned and "\x9b" not in cleaned and "\n" not in cleaned
    assert len(cleaned) <= 203


def test_a_half_done_login_can_be_retried() -> None:
    """A login that fails before it has a token leaves no client behind to short-circuit a retry."""
    import pytest

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
