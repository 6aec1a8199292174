"""Shared fixtures. Logic lives in ``tests/support``; this file only wires it to pytest.

Servers are real processes started by the tests themselves (see ``tests/support``). Session
scope where a shared server is harmless (tests use their own mounts/roles), function scope
where a test needs a server nobody else touched.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support.moto_server import MotoServer
from support.oidc import GithubTokenServer, generate_key
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer


@pytest.fixture(scope="session")
def oidc_key() -> rsa.RSAPrivateKey:
    """The RSA key test identity tokens are signed with (one per session: keygen is slow-ish)."""
    return generate_key()


@pytest.fixture
def github_oidc(oidc_key: rsa.RSAPrivateKey) -> Iterator[GithubTokenServer]:
    """A GitHub-style token endpoint signing with ``oidc_key``; ``.env()`` for the job's env."""
    with GithubTokenServer(oidc_key) as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBaoServer]:
    """One OpenBao dev server for the session; give each test its own mount/role names."""
    with OpenBaoServer() as server:
        yield server


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    """A moto server (Secrets Manager, STS, IAM) for the module's tests."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The module's moto server, emptied for this test (modules may define their own)."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def fresh_openbao() -> Iterator[OpenBaoServer]:
    """An OpenBao dev server of this test's own (starts in well under a second)."""
    with OpenBaoServer() as server:
        yield server


@pytest.fixture
def openbao_tls() -> Iterator[OpenBaoServer]:
    """An OpenBao dev server with ``-dev-tls``; ``.ca_cert`` is its CA."""
    with OpenBaoServer(tls=True) as server:
        yield server
