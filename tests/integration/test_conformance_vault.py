"""The Vault/OpenBao backend passes the backend conformance suite against a real OpenBao."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from jobsecrets.backends.base import BackendContext
from jobsecrets.backends.vault import VaultBackend
from jobsecrets.testing.conformance import BackendConformance
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration


class _VaultKvConformance(BackendConformance):
    """The suite on a KV mount of its own, of version ``KV_VERSION`` (detected, not configured)."""

    KV_VERSION: ClassVar[int] = 2

    @pytest.fixture(scope="class")
    @classmethod
    def kv_mount(cls, openbao: OpenBaoServer) -> str:
        mount = f"conf{cls.KV_VERSION}-{secrets.token_hex(3)}"
        openbao.enable_kv(mount, cls.KV_VERSION)
        return mount

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
        kv = openbao.client().secrets.kv
        engine = kv.v2 if self.KV_VERSION == 2 else kv.v1

        def put(path: str, data: dict[str, str]) -> None:
            engine.create_or_update_secret(path[len(kv_mount) + 1 :], data, mount_point=kv_mount)

        return put

    @pytest.fixture
    def missing_path(self, kv_mount: str) -> str:
        return f"{kv_mount}/missing-{secrets.token_hex(4)}"


class TestVaultKv2Conformance(_VaultKvConformance):
    """KV v2."""

    KV_VERSION = 2


class TestVaultKv1Conformance(_VaultKvConformance):
    """KV v1."""

    KV_VERSION = 1
