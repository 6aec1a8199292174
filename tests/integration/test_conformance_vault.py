"""The Vault/OpenBao backend passes the backend conformance suite against a real OpenBao."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from jobsecrets.backends.base import BackendContext
from jobsecrets.backends.vault import VaultBackend
from jobsecrets.testing.conformance import BackendConformance
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kv_mount(openbao: OpenBaoServer) -> str:
    mount = f"conf-{secrets.token_hex(3)}"
    openbao.enable_kv(mount, 2)
    return mount


class TestVaultKv2Conformance(BackendConformance):
    """KV v2, mount detected."""

    @pytest.fixture
    def backend(self, openbao: OpenBaoServer, kv_mount: str) -> Iterator[VaultBackend]:
        self.PATH_TEMPLATE = kv_mount + "/{name}"
        env = {"VAULT_ADDR": openbao.address, "VAULT_TOKEN": openbao.root_token}
        backend = VaultBackend("vault", {}, BackendContext(env=env))
        backend.login()
        yield backend
        backend.close()

    @pytest.fixture
    def seed(self, openbao: OpenBaoServer, kv_mount: str) -> Callable[[str, dict[str, str]], None]:
        client = openbao.client()

        def put(path: str, data: dict[str, str]) -> None:
            client.secrets.kv.v2.create_or_update_secret(
                path[len(kv_mount) + 1 :], data, mount_point=kv_mount
            )

        return put

    @pytest.fixture
    def missing_path(self, kv_mount: str) -> str:
        return f"{kv_mount}/missing-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def kv1_mount(openbao: OpenBaoServer) -> str:
    mount = f"conf1-{secrets.token_hex(3)}"
    openbao.enable_kv(mount, 1)
    return mount


class TestVaultKv1Conformance(BackendConformance):
    """KV v1, mount detected."""

    @pytest.fixture
    def backend(self, openbao: OpenBaoServer, kv1_mount: str) -> Iterator[VaultBackend]:
        self.PATH_TEMPLATE = kv1_mount + "/{name}"
        env = {"VAULT_ADDR": openbao.address, "VAULT_TOKEN": openbao.root_token}
        backend = VaultBackend("vault", {}, BackendContext(env=env))
        backend.login()
        yield backend
        backend.close()

    @pytest.fixture
    def seed(self, openbao: OpenBaoServer, kv1_mount: str) -> Callable[[str, dict[str, str]], None]:
        client = openbao.client()

        def put(path: str, data: dict[str, str]) -> None:
            client.secrets.kv.v1.create_or_update_secret(
                path[len(kv1_mount) + 1 :], data, mount_point=kv1_mount
            )

        return put

    @pytest.fixture
    def missing_path(self, kv1_mount: str) -> str:
        return f"{kv1_mount}/missing-{secrets.token_hex(4)}"
