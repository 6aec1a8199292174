"""The AWS backend passes the whole backend conformance suite against a real moto server.

Secrets Manager has no leases and, with the default credential chain, no token of ours to revoke: the
suite checks that it hands out neither, and that ``DescribeSecret`` dates a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobsecrets.backends import Backend, BackendContext
from jobsecrets.backends.aws import AwsBackend
from jobsecrets.testing.conformance import BackendConformance
from support.moto_server import REGION, MotoServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


class TestAwsConformance(BackendConformance):
    """Secrets live under ``conformance/``; prefix listing is supported."""

    PATH_TEMPLATE = "conformance/{name}"
    SUPPORTS_PREFIX = True
    DATES_METADATA = True

    @pytest.fixture
    def make_backend(self, moto_server: MotoServer) -> Callable[[], Backend]:
        def make() -> Backend:
            env = {
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": moto_server.endpoint,
                "AWS_ACCESS_KEY_ID": "AKIACONFORMANCE00001",
                "AWS_SECRET_ACCESS_KEY": "conformance-key",
                # No shared config file may supply a region when the test takes it away.
                "AWS_CONFIG_FILE": "/nonexistent/jobsecrets-conformance",
            }
            return AwsBackend("aws", {}, BackendContext(env=env, timeout=10.0))

        return make

    @pytest.fixture
    def break_login(self) -> Callable[[Backend], Callable[[], None]]:
        """Without a region there is nowhere to sign in to."""

        def brk(backend: Backend) -> Callable[[], None]:
            env: dict[str, Any] = backend.context.env  # type: ignore[assignment]
            region = env.pop("AWS_REGION")

            def repair() -> None:
                env["AWS_REGION"] = region

            return repair

        return brk

    @pytest.fixture
    def seed(self, moto_server: MotoServer) -> Callable[[str, dict[str, str]], None]:
        client = moto_server.client("secretsmanager")

        def store(path: str, fields: dict[str, str]) -> None:
            # A JSON SecretString: the resolver (and the suite) pick fields out of it.
            client.create_secret(Name=path, SecretString=json.dumps(fields))

        return store

    @pytest.fixture
    def missing_path(self) -> str:
        return "conformance/does-not-exist"
