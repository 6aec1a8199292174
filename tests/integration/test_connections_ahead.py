"""Connections opened while signing in, used by the reads (jobsecrets.backends.preconnect).

Counted from outside: every store sits behind ``support.faults.FaultProxy`` in ``pass`` mode, which
counts the TCP connections it accepts. Resolution tells a backend how many paths it will read
(``expect_reads``); once signed in, the reads must open no connection of their own. Without the
connections opened ahead each read of a wave opens one (the proxy would count them), so each test
fails on the code before the change. Values never appear in an assertion's message.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import hvac
import pytest

from jobsecrets.backends import BackendContext, Document, ReadRequest, TokenRecord
from jobsecrets.backends.aws import AwsBackend
from jobsecrets.backends.vault import VaultBackend
from jobsecrets.errors import BackendError, JobSecretsError
from support.faults import FaultProxy, free_port
from support.moto_server import (
    REGION,
    MotoServer,
    allow,
    create_web_identity_role,
    policy,
    seed_secrets,
)
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm8vcjpyZWYifQ.c2lnbmF0dXJl"
READS = 12


def settle(proxy: FaultProxy, at_least: int) -> int:
    """The proxy's connection count once it has reached ``at_least`` and stopped growing."""
    end = time.monotonic() + 10
    last = -1
    while time.monotonic() < end:
        count = proxy.connections
        if count >= at_least and count == last:
            return count
        last = count
        time.sleep(0.1)
    return proxy.connections


def vault_paths(server: OpenBaoServer, count: int) -> list[str]:
    """``count`` KV v2 secrets under a fresh prefix of ``secret/``."""
    client = server.client()
    prefix = f"ahead-{secrets.token_hex(4)}"
    for i in range(count):
        client.secrets.kv.v2.create_or_update_secret(
            path=f"{prefix}/s{i}", secret={"v": secrets.token_hex(8)}
        )
    return [f"secret/{prefix}/s{i}" for i in range(count)]


def vault_backend(address: str, server: OpenBaoServer, deadline: float = 8) -> VaultBackend:
    env = {"VAULT_TOKEN": server.root_token}
    if server.ca_cert:
        env["VAULT_CACERT"] = server.ca_cert
    # A deadline: a read of a store that refuses connections retries until it.
    context = BackendContext(env=env, timeout=5.0, deadline=time.monotonic() + deadline)
    return VaultBackend("vault", {"address": address}, context)


def request(path: str) -> ReadRequest:
    return ReadRequest(path=path, options={}, variables=("V",), ref=f"x:{path}")


def read_all(backend: Any, paths: list[str]) -> list[bool]:
    """Whether each read gave a document (booleans only: no value in a failure message)."""
    results = backend.read_many([request(p) for p in paths], max_workers=len(paths))
    return [isinstance(r, Document) for r in results]


@pytest.mark.parametrize("server_fixture", ["openbao", "openbao_tls"])
def test_vault_reads_use_the_connections_opened_while_signing_in(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    server: OpenBaoServer = request.getfixturevalue(server_fixture)
    paths = vault_paths(server, READS)
    scheme = "https" if server.tls else "http"
    with FaultProxy(server.port) as proxy:
        backend = vault_backend(f"{scheme}://127.0.0.1:{proxy.port}", server)
        backend.expect_reads(READS)
        backend.login()  # a token: no request, the connections open on their own
        opened = settle(proxy, READS + 1)
        assert opened == READS + 1  # the reads' and the mount lookup's
        assert read_all(backend, paths) == [True] * READS
        # Every read (and the mount lookup) went over a connection opened ahead; with TLS that
        # also says they were opened with the very settings (CA) the requests use.
        assert proxy.connections == opened
        backend.close()


def test_vault_opens_nothing_unless_told_of_reads(openbao: OpenBaoServer) -> None:
    with FaultProxy(openbao.port) as proxy:
        backend = vault_backend(f"http://127.0.0.1:{proxy.port}", openbao)
        backend.login()
        time.sleep(0.5)
        assert proxy.connections == 0
        backend.close()


def test_vault_opens_nothing_ahead_through_a_proxy(
    openbao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests takes the proxy from the environment: the connections would be the proxy's.
    with FaultProxy(openbao.port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        backend = vault_backend("http://vault.invalid:8200", openbao)
        backend.expect_reads(READS)
        backend.login()
        time.sleep(0.5)
        assert proxy.connections == 0
        backend.close()


def test_vault_nothing_listening_is_the_reads_own_error(openbao: OpenBaoServer) -> None:
    # The connections opened ahead fail without a word; each read reports what it always did.
    port = free_port()
    outcomes = []
    for told in (True, False):
        # Each made just before its use, with a deadline its retries reach (2 s: both end
        # "retried until the deadline"). Made together with one 8 s deadline, the second
        # sometimes had too little left after the first's retries to retry at all ("not
        # retried"), which is not what this test compares (found by CI, ~1 run in 8).
        backend = vault_backend(f"http://127.0.0.1:{port}", openbao, deadline=2)
        if told:
            backend.expect_reads(3)
        backend.login()
        results = backend.read_many([request("secret/a/b")], max_workers=1)
        outcomes.append([(type(r).__name__, getattr(r, "message", "")) for r in results])
        backend.close()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0][0] != "Document"


def token_of(server: OpenBaoServer) -> TokenRecord:
    """A fresh token, recorded as a sign-in's is for a later process to revoke."""
    made = server.client().auth.token.create(policies=["default"], ttl="5m")["auth"]
    return TokenRecord("vault", made["client_token"], made["accessor"], 300, True)


def revoke_after_slow_imports(
    backend: VaultBackend, record: TokenRecord, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Resume and revoke as a later process, its imports made to take 0.4 s (the test process
    has them already); returns how many connections ``proxy`` had seen when they were done."""
    seen: list[int] = []
    original = VaultBackend._new_client

    def slow_imports(self: VaultBackend, token: str | None = None) -> Any:
        time.sleep(0.4)
        seen.append(proxy.connections)
        return original(self, token)

    monkeypatch.setattr(VaultBackend, "_new_client", slow_imports)
    backend.resume(record)
    backend.revoke_token(record)
    backend.close()
    return seen


@pytest.mark.parametrize("server_fixture", ["openbao", "openbao_tls"])
def test_vault_revocation_goes_out_on_a_connection_opened_before_the_imports(
    server_fixture: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later process (the post step's ``revoke``) connects while requests and hvac import.

    By the end of those imports the store has seen the connection, and the revocation goes out
    on it, no second one. On the code before, nothing connected until the imports were done.
    With TLS, the handshake on that connection is urllib3's, checked against the CA as any other.
    """
    server: OpenBaoServer = request.getfixturevalue(server_fixture)
    record = token_of(server)
    scheme = "https" if server.tls else "http"
    with FaultProxy(server.port) as proxy:
        backend = vault_backend(f"{scheme}://127.0.0.1:{proxy.port}", server)
        assert revoke_after_slow_imports(backend, record, proxy, monkeypatch) == [1]
        assert proxy.connections == 1
    with pytest.raises(hvac.exceptions.Forbidden):
        server.client(record.token).auth.token.lookup_self()


def test_vault_connects_nothing_early_where_a_proxy_is_set(
    openbao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a proxy variable set, requests decides which way a request goes: nothing early."""
    record = token_of(openbao)
    with FaultProxy(openbao.port) as target:
        # The store bypasses the proxy (NO_PROXY): requests goes straight to it, after imports.
        monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        backend = vault_backend(f"http://127.0.0.1:{target.port}", openbao)
        assert revoke_after_slow_imports(backend, record, target, monkeypatch) == [0]
        assert target.connections == 1  # the revocation's own


@pytest.fixture(scope="module")
def moto_server() -> Any:
    with MotoServer() as server:
        yield server


def aws_backend(endpoint: str, **options: Any) -> Callable[[], AwsBackend]:
    context = BackendContext(
        env={"AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint},
        identity=lambda _audience: TOKEN,
        timeout=10.0,
    )
    return lambda: AwsBackend("aws", options, context)


@pytest.mark.parametrize(("batch", "ahead"), [(True, 2), (False, 8)])
def test_aws_reads_use_the_connections_opened_while_assuming_the_role(
    moto_server: MotoServer, batch: bool, ahead: int
) -> None:
    moto_server.reset()
    ids = [f"ahead/s{i}" for i in range(READS * 2)]  # 24: two batches of 20 and 4
    seed_secrets(moto_server.client("secretsmanager"), {i: secrets.token_hex(8) for i in ids})
    role_arn = create_web_identity_role(
        moto_server.client("iam"), "ahead", policy(allow("secretsmanager:*"))
    )
    port = int(moto_server.endpoint.rsplit(":", 1)[1])
    # The first request (the unsigned AssumeRoleWithWebIdentity) passes; the rest are IAM-checked:
    # signed with the role's credentials or refused.
    with FaultProxy(port) as proxy, moto_server.enforce_iam(free_requests=1):
        backend = aws_backend(proxy.url, role_arn=role_arn, batch=batch)()
        backend.expect_reads(len(ids))
        backend.login()
        # STS's own connection, then one per batch of ids (or, without batches, one per read
        # running at once: the backend's 8).
        opened = settle(proxy, 1 + ahead)
        assert opened == 1 + ahead
        assert read_all(backend, ids) == [True] * len(ids)
        # The first wave went over connections opened ahead, signed with the role's credentials,
        # which arrived after the client was made. (moto answers one request per connection: a
        # later read opens its own.)
        calls = 2 if batch else len(ids)  # BatchGetSecretValue of 20 + 4, or one per id
        assert proxy.connections == opened + calls - ahead
        backend.close()


def test_aws_role_not_assumed_leaves_no_client(moto_server: MotoServer) -> None:
    # The client made before the role's credentials is not the backend's until they arrived.
    moto_server.reset()
    port = free_port()  # nothing listens: STS cannot answer
    context = BackendContext(
        env={"AWS_REGION": REGION, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"},
        identity=lambda _audience: TOKEN,
        timeout=2.0,
        deadline=time.monotonic() + 3,
    )
    backend = AwsBackend("aws", {"role_arn": "arn:aws:iam::123456789012:role/ci"}, context)
    backend.expect_reads(5)
    with pytest.raises(JobSecretsError, match="AssumeRoleWithWebIdentity"):
        backend.login()
    with pytest.raises(BackendError, match="login"):
        backend.read(request("ahead/s0"))
