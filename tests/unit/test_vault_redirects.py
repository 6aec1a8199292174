"""A store address that redirects elsewhere gets neither the token nor a login body sent there.

hvac's client followed any redirect (requests: 30 hops, https -> http too) and requests strips
only ``Authorization`` on a change of host: ``307 Location: http://other-host/<same path>``
made jobsecrets send ``X-Vault-Token``, or an approle login's secret_id, to the other host.
A stand-in store (stdlib HTTP server) answers the redirect; the "other host" is a second one
that records whatever reaches it.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and no value it compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobsecrets.backends.base import BackendContext
from jobsecrets.backends.vault import VaultBackend
from jobsecrets.errors import StoreUnavailable
from jobsecrets.redirects import same_origin, shown_origin
from support.cli import jobsecrets
from support.http_stubs import Answer, AnsweringServer, Seen, redirect_to


def shown(text: str) -> str:
    """The tail of the tool's output for a failure message, with any canary in it hidden."""
    return re.sub(r"\S*canary\S*", "***", text[-500:])


# Canaries, not secrets: what must never reach the other origin or any output.
TOKEN = "hvs.canary-token-7Qx2"
SECRET_ID = "canary-secret-id-91kd"


def _anything(seen: Seen) -> Answer:
    """What a server that wanted the credentials would answer: a login, a KV read."""
    body = {
        "auth": {"client_token": "hvs.other", "accessor": "a", "lease_duration": 60},
        "data": {"data": {"a": "x"}, "metadata": {"version": 1}, "path": "secret/"},
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.fixture
def other() -> Iterator[AnsweringServer]:
    """The other origin: records what reaches it."""
    with AnsweringServer(_anything) as server:
        yield server


def _spec(tmp_path: Path, address: str, auth: str) -> None:
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n"
        f"  vault: {{type: vault, address: '{address}', auth: {auth}}}\n"
        "secrets:\n  A: vault:secret/app#a\n"
    )


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize(
    ("auth", "env", "canary"),
    [
        ("{method: token}", {"VAULT_TOKEN": TOKEN}, TOKEN),
        (
            "{method: approle}",
            {"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": SECRET_ID},
            SECRET_ID,
        ),
    ],
    ids=["token", "approle"],
)
def test_a_redirect_to_another_origin_is_refused(
    tmp_path: Path,
    other: AnsweringServer,
    status: int,
    auth: str,
    env: dict[str, str],
    canary: str,
) -> None:
    with AnsweringServer(redirect_to(other.url, status)) as store:
        _spec(tmp_path, store.url, auth)
        result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
    assert other.seen == [], "a request followed the redirect to the other origin"
    assert len(store.seen) == 1, "the first request was retried after a refused redirect"
    assert result.returncode == 6, f"exit {result.returncode}: {shown(result.stderr)}"
    assert f"redirected the request to http://127.0.0.1:{other.port}" in result.stderr, shown(
        result.stderr
    )
    output = result.stdout + result.stderr
    assert (canary in output) is False, "the credential is in the output"


def test_a_redirect_on_the_same_origin_is_followed(tmp_path: Path) -> None:
    """A server that moves a path on itself (same scheme, host and port) still signs us in,
    with the login body carried over (307 keeps the method and body)."""

    def answer(seen: Seen) -> Answer:
        if "moved" not in seen.path:
            return 307, {"Location": "/v1/auth/approle/login?moved=1"}, b""
        return _anything(seen)

    env = {"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": SECRET_ID}
    with AnsweringServer(answer) as store:
        options = {"address": store.url, "auth": {"method": "approle"}}
        backend = VaultBackend("vault", options, BackendContext(env=env))
        try:
            backend.login()
        finally:
            backend.close()
    assert [s.path for s in store.seen] == [
        "/v1/auth/approle/login",
        "/v1/auth/approle/login?moved=1",
    ]
    assert (SECRET_ID.encode() in store.seen[1].body) is True, "the login body was not carried"
    record = backend.token_record()
    assert record is not None and record.token == "hvs.other"


def test_the_refusal_names_the_origin_only(other: AnsweringServer) -> None:
    """The message names where the answer pointed, without the path or query a hostile store
    could have echoed the token into, nor a user:password."""

    def answer(seen: Seen) -> Answer:
        token = seen.headers.get("x-vault-token", "")
        return 307, {"Location": f"http://u:pw@127.0.0.1:{other.port}/x?t={token}"}, b""

    with AnsweringServer(answer) as store:
        backend = VaultBackend("vault", {"address": store.url}, BackendContext(env={}))
        backend._client = backend._new_client(TOKEN)
        try:
            with pytest.raises(StoreUnavailable) as caught:
                backend._request("GET", "secret/data/app", what="read of 'secret/app'")
        finally:
            backend.close()
    message = str(caught.value)
    assert other.seen == [], "the redirect was followed"
    assert f"http://127.0.0.1:{other.port}" in message, shown(message)
    assert (TOKEN in message) is False, "the token is in the message"
    assert ("pw" in message) is False, "the password of the redirect is in the message"


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("https://vault:8200/v1/a", "https://VAULT:8200/v1/b?x=1", True),
        ("https://vault/v1/a", "https://vault:443/v1/b", True),
        ("http://vault/v1/a", "http://u:p@vault:80/v1/a", True),
        ("https://vault:8200/v1/a", "http://vault:8200/v1/a", False),  # a downgrade
        ("https://vault:8200/v1/a", "https://vault:8201/v1/a", False),
        ("https://vault:8200/v1/a", "https://vault.evil:8200/v1/a", False),
        ("https://vault:8200/v1/a", "https://vault:99999/v1/a", False),  # no port at all
        ("https://vault/v1/a", "ftp://vault/v1/a", False),
    ],
)
def test_same_origin_is_scheme_host_and_port(first: str, second: str, same: bool) -> None:
    assert same_origin(first, second) is same


def test_shown_origin_leaves_out_credentials_path_and_query() -> None:
    assert shown_origin("http://u:p@[::1]:8200/v1/x?token=t") == "http://[::1]:8200"
    assert shown_origin("https://Vault.Example/v1") == "https://vault.example:443"
    assert shown_origin("file:///etc/passwd") == "an address that is no http(s) URL"
