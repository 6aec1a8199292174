"""A login answer whose token no HTTP header can carry is a sign-in failure, not a crash.

``auth.client_token`` was checked for truthiness only: ``"hvs.ü€"`` ended in "internal error:
UnicodeEncodeError" (exit 1), an int, a list or a token with a line break in a misleading
"cannot reach ... InvalidHeader" (exit 6). The accessor, shown in messages and audit records,
was taken as ``str()`` of anything. A stand-in store (stdlib HTTP server) answers the approle
login.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and no value it compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from jobsecrets.backends.base import BackendContext
from jobsecrets.backends.vault import VaultBackend
from jobsecrets.errors import AuthError
from support.cli import jobsecrets
from support.http_stubs import Answer, AnsweringServer, Seen


def shown(text: str) -> str:
    """The tail of the tool's output for a failure message, with any canary in it hidden."""
    return re.sub(r"\S*canary\S*", "***", text[-500:])


ENV = {"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": "secret-id-1"}


def login_answering(auth: dict[str, Any]) -> Any:
    """A store answering the login with ``auth``, revoke-self with 204, anything else 404."""

    def answer(seen: Seen) -> Answer:
        if seen.path == "/v1/auth/approle/login":
            body = json.dumps({"auth": auth}).encode()
            return 200, {"Content-Type": "application/json"}, body
        if seen.path == "/v1/auth/token/revoke-self":
            return 204, {}, b""
        return 404, {"Content-Type": "application/json"}, b'{"errors": []}'

    return answer


@pytest.mark.parametrize(
    "token",
    ["hvs.canaryü€", 12345, ["hvs.canary"], {"t": "hvs.canary"}, "hvs.can\r\nX-Evil: 1", " hvs.c"],
    ids=["non-ascii", "int", "list", "object", "crlf", "leading-space"],
)
def test_an_unusable_login_token_is_a_sign_in_failure(tmp_path: Path, token: object) -> None:
    with AnsweringServer(login_answering({"client_token": token, "accessor": "a1"})) as store:
        (tmp_path / "jobsecrets.yml").write_text(
            "version: 1\nbackends:\n"
            f"  vault: {{type: vault, address: '{store.url}', auth: {{method: approle}}}}\n"
            "secrets:\n  A: vault:secret/app#a\n"
        )
        result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=ENV)
    assert result.returncode == 3, f"exit {result.returncode}: {shown(result.stderr)}"
    assert "approle login returned an unusable token" in result.stderr, shown(result.stderr)
    assert "internal error" not in result.stderr, shown(result.stderr)
    # Only the login went out: the token was never sent anywhere.
    assert [s.path for s in store.seen] == ["/v1/auth/approle/login"]
    output = result.stdout + result.stderr
    assert ("canary" in output) is False, "the token is in the output"


@pytest.mark.parametrize(
    "accessor",
    [7, ["a"], "acc\x1b[31mred", "acc\nline", "a" * 300],
    ids=["int", "list", "escape", "newline", "long"],
)
def test_an_unusable_accessor_fails_the_sign_in_and_the_token_is_revoked(
    accessor: object,
) -> None:
    auth = {"client_token": "hvs.good", "accessor": accessor, "lease_duration": 60}
    with AnsweringServer(login_answering(auth)) as store:
        options = {"address": store.url, "auth": {"method": "approle"}}
        backend = VaultBackend("vault", options, BackendContext(env=ENV))
        try:
            with pytest.raises(AuthError) as caught:
                backend.login()
        finally:
            backend.close()
    message = str(caught.value)
    assert "login returned an unusable token (its accessor:" in message, shown(message)
    assert ("\x1b" in message or "\n" in message or "aaaa" in message) is False, (
        "the accessor is shown as it came"
    )
    assert backend.token_record() is None
    revoked = [s for s in store.seen if s.path == "/v1/auth/token/revoke-self"]
    assert len(revoked) == 1, "the working token was not revoked"
    assert revoked[0].headers.get("x-vault-token") == "hvs.good"


def test_a_usable_answer_still_signs_in() -> None:
    """A batch token has no accessor: signed in, recorded without one."""
    auth = {"client_token": "hvs.good", "accessor": "", "lease_duration": 60, "renewable": True}
    with AnsweringServer(login_answering(auth)) as store:
        options = {"address": store.url, "auth": {"method": "approle"}}
        backend = VaultBackend("vault", options, BackendContext(env=ENV))
        try:
            backend.login()
        finally:
            backend.close()
    record = backend.token_record()
    assert record is not None
    assert (record.token, record.accessor, record.ttl) == ("hvs.good", "", 60)
