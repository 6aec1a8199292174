"""Log records and the never-print list: masked, except records made of names and timings only.

At -vv the Vault client logs one line per request, each after a read remembered new values: each
line rebuilt the whole mask list (500 reads: 8.4 s instead of 0.8 s). Those lines say they hold
no value (``unshown.PLAIN``) and are written as they are; every other record is still masked.
"""

from __future__ import annotations

import logging

import pytest

from jobsecrets import unshown
from jobsecrets.backends.base import BackendContext, ReadRequest
from jobsecrets.backends.vault.backend import VaultBackend
from jobsecrets.cli import _ScrubbingFormatter
from support.vault_stub import KV2_MOUNT, VaultStub

VALUE = "unshown-log-value-5f1e2d"


@pytest.fixture(autouse=True)
def _forget() -> None:
    unshown.forget_all()


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("jobsecrets", logging.DEBUG, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_a_plain_record_is_not_scrubbed_and_any_other_is(monkeypatch: pytest.MonkeyPatch) -> None:
    unshown.remember(VALUE)
    calls = []
    real = unshown.scrub

    def counted(text: str) -> str:
        calls.append(1)
        return real(text)

    monkeypatch.setattr(unshown, "scrub", counted)
    formatter = _ScrubbingFormatter("%(message)s")
    assert formatter.format(_record("GET /v1/secret/data/app (3 ms)", **unshown.PLAIN))
    assert calls == []
    masked = formatter.format(_record(f"the store said: {VALUE}"))
    assert calls == [1]
    leaked = VALUE in masked
    assert not leaked


def test_the_vault_client_s_request_lines_say_they_hold_no_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    routes = {
        ("GET", "sys/internal/ui/mounts/secret/app"): KV2_MOUNT,
        ("GET", "secret/data/app"): (200, {"data": {"data": {"k": VALUE}, "metadata": {}}}),
    }
    with VaultStub(routes) as vault, caplog.at_level(logging.DEBUG, logger="jobsecrets"):
        backend = VaultBackend(
            "v",
            {"address": vault.url, "auth": {"method": "token"}},
            BackendContext(env={"VAULT_TOKEN": "hvs.stand-in"}),
        )
        try:
            backend.login()
            backend.read(ReadRequest("secret/app"))
        finally:
            backend.close()
    lines = [r for r in caplog.records if " /v1/" in r.getMessage()]
    assert len(lines) >= 2
    assert all(getattr(r, "unshown_plain", False) for r in lines)
