"""The fake backend shipped for tests passes the same conformance suite as the real ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from jobsecrets.backends.base import BackendContext
from jobsecrets.testing.conformance import BackendConformance
from jobsecrets.testing.fake import FakeBackend


class TestFakeConformance(BackendConformance):
    SUPPORTS_PREFIX = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Path:
        path = tmp_path / "store.json"
        path.write_text("{}")
        return path

    @pytest.fixture
    def backend(self, store: Path) -> FakeBackend:
        backend = FakeBackend(
            "fake", {"file": store.name}, BackendContext(env={}, spec_dir=str(store.parent))
        )
        backend.login()
        return backend

    @pytest.fixture
    def seed(self, store: Path, backend: FakeBackend) -> Callable[[str, dict[str, str]], None]:
        def put(path: str, data: dict[str, str]) -> None:
            documents = json.loads(store.read_text())
            documents[path] = data
            store.write_text(json.dumps(documents))
            backend._data = None  # reload on next read

        return put

    @pytest.fixture
    def missing_path(self) -> str:
        return "no/such/path"
