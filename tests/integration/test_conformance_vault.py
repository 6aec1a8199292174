"""The Vault/OpenBao backend passes the whole backend conformance suite against a real OpenBao.

It signs in with AppRole (a token of its own, to revoke), reads KV v1 and v2 mounts (detected, not
configured), and gets leases from a PKI role that issues them (``generate_lease``), so renewal,
revocation and resuming from a state file run against the real server.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from jobsecrets.backends.base import Backend, BackendContext, ReadRequest
from jobsecrets.backends.vault import VaultBackend
from jobsecrets.testing.conformance import BackendConformance
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

POLICY = """
path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
"""


@pytest.fixture(scope="module")
def approle(openbao: OpenBaoServer) -> dict[str, str]:
    """An AppRole whose tokens may do everything (the suite tests the backend, not policies)."""
    client = openbao.client()
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
    openbao.write_policy("conformance", POLICY)
    client.write_data(
        "auth/approle/role/conformance",
        data={"token_policies": ["conformance"], "token_ttl": "10m", "token_max_ttl": "30m"},
    )
    role_id = client.read("auth/approle/role/conformance/role-id")["data"]["role_id"]
    secret_id = client.write_data("auth/approle/role/conformance/secret-id")["data"]["secret_id"]
    return {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}


@pytest.fixture(scope="module")
def pki_mount(openbao: OpenBaoServer) -> str:
    """A PKI mount whose ``issue/ci`` role hands out leased certificates."""
    client = openbao.client()
    mount = f"pki-{secrets.token_hex(3)}"
    client.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": "1h"})
    client.write_data(f"{mount}/root/generate/internal", data={"common_name": "conformance"})
    client.write_data(
        f"{mount}/roles/ci",
        data={"allow_any_name": True, "generate_lease": True, "max_ttl": "30m"},
    )
    return mount


class _VaultKvConformance(BackendConformance):
    """The suite on a KV mount of its own, of version ``KV_VERSION``."""

    KV_VERSION: ClassVar[int] = 2
    LEASES = True
    OWN_TOKEN = True

    @pytest.fixture(scope="class")
    @classmethod
    def kv_mount(cls, openbao: OpenBaoServer) -> str:
        mount = f"conf{cls.KV_VERSION}-{secrets.token_hex(3)}"
        openbao.enable_kv(mount, cls.KV_VERSION)
        return mount

    @pytest.fixture
    def make_backend(
        self, openbao: OpenBaoServer, kv_mount: str, approle: dict[str, str]
    ) -> Callable[[], Backend]:
        self.PATH_TEMPLATE = kv_mount + "/{name}"

        def make() -> Backend:
            env = {"VAULT_ADDR": openbao.address, **approle}
            return VaultBackend("vault", {"auth": {"method": "approle"}}, BackendContext(env=env))

        return make

    @pytest.fixture
    def break_login(self) -> Callable[[Backend], Callable[[], None]]:
        def brk(backend: Backend) -> Callable[[], None]:
            env: dict[str, Any] = backend.context.env  # type: ignore[assignment]
            good = env["VAULT_SECRET_ID"]
            env["VAULT_SECRET_ID"] = "00000000-0000-0000-0000-000000000000"

            def repair() -> None:
                env["VAULT_SECRET_ID"] = good

            return repair

        return brk

    @pytest.fixture
    def seed(self, openbao: OpenBaoServer, kv_mount: str) -> Callable[[str, dict[str, str]], None]:
        kv = openbao.client().secrets.kv
        engine = kv.v2 if self.KV_VERSION == 2 else kv.v1

        def put(path: str, data: dict[str, str]) -> None:
            engine.create_or_update_secret(path[len(kv_mount) + 1 :], data, mount_point=kv_mount)

        return put

    @pytest.fixture
    def missing_path(self, kv_mount: str) -> str:
        return f"{kv_mount}/missing-{secrets.token_hex(4)}"

    @pytest.fixture
    def leased_request(self, pki_mount: str) -> ReadRequest:
        return ReadRequest(
            f"{pki_mount}/issue/ci",
            params={"common_name": "ci.example.com", "ttl": "10m"},
            variables=("TLS_KEY",),
            ref=f"vault:{pki_mount}/issue/ci#private_key",
        )


class TestVaultKv2Conformance(_VaultKvConformance):
    """KV v2: metadata dates a secret (its version's created_time)."""

    KV_VERSION = 2
    DATES_METADATA = True


class TestVaultKv1Conformance(_VaultKvConformance):
    """KV v1: no dates."""

    KV_VERSION = 1
