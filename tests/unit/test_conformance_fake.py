"""The in-memory backend and the file-backed fake shipped for tests pass the same conformance suite
as the real ones (in memory: no server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobsecrets.backends.base import Backend, BackendContext, ReadRequest
from jobsecrets.testing import FakeBackend, MemoryStore
from jobsecrets.testing.conformance import BackendConformance, StateFactory


def _refuse_logins(backend: Backend) -> Callable[[], None]:
    """Make a memory (or fake) backend's logins fail; returns what repairs it."""
    store: MemoryStore = backend.store  # type: ignore[attr-defined]
    store.fail_login = "refused by the test"

    def repair() -> None:
        store.fail_login = ""

    return repair


class TestMemoryConformance(BackendConformance):
    """The in-memory store: leases under ``dynamic/``, a token of its own, dated documents."""

    SUPPORTS_PREFIX = True
    DATES_METADATA = True
    LEASES = True
    OWN_TOKEN = True
    REGISTERED = False

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore(
            lease_ttl=60,
            leased_prefix="dynamic/",
            token=True,
            updated=datetime(2024, 1, 1, tzinfo=timezone.utc),
            documents={"dynamic/creds": {"password": "p"}},
        )

    @pytest.fixture
    def make_backend(self, store: MemoryStore) -> Callable[[], Backend]:
        return store.backend

    @pytest.fixture
    def break_login(self) -> Callable[[Backend], Callable[[], None]]:
        return _refuse_logins

    @pytest.fixture
    def seed(self, store: MemoryStore) -> Callable[[str, dict[str, str]], None]:
        return store.put

    @pytest.fixture
    def missing_path(self) -> str:
        return "no/such/path"

    @pytest.fixture
    def leased_request(self) -> ReadRequest:
        return ReadRequest("dynamic/creds", variables=("DB",), ref="memory:dynamic/creds")

    @pytest.fixture
    def state_factory(self, store: MemoryStore) -> StateFactory:
        return store.state_factory


class TestFakeConformance(BackendConformance):
    """The file-backed fake (``type: fake``), as a ``jobsecrets`` subprocess would use it."""

    SUPPORTS_PREFIX = True
    OWN_TOKEN = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Path:
        path = tmp_path / "store.json"
        path.write_text("{}")
        return path

    @pytest.fixture
    def make_backend(self, store: Path) -> Callable[[], Backend]:
        def make() -> Backend:
            context = BackendContext(env={}, spec_dir=str(store.parent))
            return FakeBackend("fake", {"file": store.name, "token": True}, context)

        return make

    @pytest.fixture
    def break_login(self) -> Callable[[Backend], Callable[[], None]]:
        return _refuse_logins

    @pytest.fixture
    def seed(self, store: Path) -> Callable[[str, dict[str, str]], None]:
        def put(path: str, data: dict[str, str]) -> None:
            documents = json.loads(store.read_text())
            documents[path] = data
            store.write_text(json.dumps(documents))

        return put

    @pytest.fixture
    def missing_path(self) -> str:
        return "no/such/path"
