"""The test fixtures start real servers that really do what the integration tests rely on.

OpenBao verifies our locally signed CI tokens through ``auth/jwt`` (bound claims included), and
its database engine creates and drops real PostgreSQL roles.
"""

from __future__ import annotations

import os
import socket
import threading

import hvac
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jobsecrets.identity import IdentityProvider
from jobsecrets.spec.identity import IdentityConfig
from support.moto_server import MotoServer
from support.oidc import GithubTokenServer, default_claims, public_pem, sign
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_openbao_dev_server_serves_kv(openbao: OpenBaoServer) -> None:
    openbao.enable_kv("kv-support", version=2)
    client = openbao.client()
    client.secrets.kv.v2.create_or_update_secret(
        "app", secret={"password": "pw"}, mount_point="kv-support"
    )
    read = client.secrets.kv.v2.read_secret_version(
        "app", mount_point="kv-support", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"password": "pw"}
    assert openbao.address.startswith("http://127.0.0.1:")


def test_openbao_tls(openbao_tls: OpenBaoServer) -> None:
    assert openbao_tls.address.startswith("https://127.0.0.1:")
    assert openbao_tls.ca_cert is not None
    assert openbao_tls.client().is_authenticated()
    # Without the CA the certificate is not trusted: the CA path really is needed.
    untrusting = hvac.Client(url=openbao_tls.address, token="root", verify=True)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.sys.read_health_status(method="GET")


def test_openbao_stops_by_pid() -> None:
    server = OpenBaoServer()
    with server:
        pid = server.pid
        assert pid is not None
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_jwt_login_with_bound_claims(
    openbao: OpenBaoServer, oidc_key: rsa.RSAPrivateKey, github_oidc: GithubTokenServer
) -> None:
    openbao.write_policy("support-read", 'path "kv-support/*" { capabilities = ["read"] }')
    openbao.enable_jwt(
        public_pem(oidc_key),
        "deploy-main",
        bound_claims={"repository": "acme/app", "ref": "refs/heads/main"},
        policies=["support-read"],
        ttl="2m",
        mount="jwt-support",
    )
    # End to end: the identity module asks the GitHub-style endpoint for a "vault" token.
    token = IdentityProvider(IdentityConfig(), github_oidc.env()).token("vault")
    client = hvac.Client(url=openbao.address)
    login = client.auth.jwt.jwt_login("deploy-main", token, path="jwt-support")
    assert "support-read" in login["auth"]["policies"]
    assert login["auth"]["lease_duration"] == 120
    assert openbao.token_valid(login["auth"]["client_token"])

    wrong_ref = sign(default_claims(ref="refs/heads/feature"), oidc_key)
    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        client.auth.jwt.jwt_login("deploy-main", wrong_ref, path="jwt-support")
    # OpenBao names the claim that did not match: what users need to debug a bound-claims 403.
    assert 'claim "ref" does not match' in str(info.value)

    foreign = sign(default_claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.jwt.jwt_login("deploy-main", foreign, path="jwt-support")


def test_database_engine_issues_and_drops_postgres_roles(
    openbao: OpenBaoServer, postgres: PostgresServer
) -> None:
    openbao.enable_database(postgres, mount="db-support", default_ttl="30s", max_ttl="2m")
    client = openbao.client()
    creds = client.read("db-support/creds/ci")
    username = creds["data"]["username"]
    lease_id = creds["lease_id"]
    assert creds["lease_duration"] == 30
    assert creds["renewable"] is True
    assert postgres.role_exists(username)
    assert openbao.lease_exists(lease_id)

    # The issued credentials log in for real; the session stays open to prove revocation
    # terminates it (DROP ROLE would fail on a connected role otherwise).
    conn = psycopg.connect(
        host=postgres.host,
        port=postgres.port,
        dbname=postgres.database,
        user=username,
        password=creds["data"]["password"],
        autocommit=True,
    )
    try:
        assert conn.execute("SELECT current_user").fetchone() == (username,)
        client.sys.revoke_lease(lease_id)
    finally:
        conn.close()
    assert not postgres.role_exists(username)
    assert not openbao.lease_exists(lease_id)


def test_postgres_server_lifecycle() -> None:
    with PostgresServer() as pg:
        pid = pg.pid
        assert pg.query("SELECT current_setting('listen_addresses')") == [("127.0.0.1",)]
        assert pg.role_exists(pg.user)
        assert not pg.role_exists("nobody_here")
    with pytest.raises(ProcessLookupError):
        os.kill(pid or 0, 0)


def test_moto_server_stops_even_when_stuck_in_accept() -> None:
    """The race seen once in a full run: the serving loop blocked in ``accept`` with nothing to
    accept, so ``ThreadedMotoServer.stop`` waited forever. Put the loop there on purpose."""
    moto = MotoServer().start()
    server = moto._server._server  # werkzeug's server, the socketserver loop
    assert server is not None
    real = server._handle_request_noblock
    stuck = threading.Event()

    def accept_twice() -> None:
        if stuck.is_set():
            real()
            return
        stuck.set()
        first, _ = server.socket.accept()  # the connection the poll saw
        first.close()
        second, _ = server.socket.accept()  # nothing pending: blocks, as in the race
        second.close()

    server._handle_request_noblock = accept_twice  # type: ignore[method-assign]
    host, port = moto._server.get_host_and_port()
    socket.create_connection((host, port), timeout=5).close()
    assert stuck.wait(10), "the serving loop never reached accept"
    stopper = threading.Thread(target=moto._shutdown, daemon=True)
    stopper.start()
    stopper.join(20)
    assert not stopper.is_alive(), "MotoServer did not stop while its loop was stuck in accept"
