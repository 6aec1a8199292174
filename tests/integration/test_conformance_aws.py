"""The AWS backend passes the conformance suite every backend passes, against a real moto server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from jobsecrets.backends import BackendContext
from jobsecrets.backends.aws import AwsBackend
from jobsecrets.testing.conformance import BackendConformance
from support.moto_server import REGION, MotoServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def backend(moto_server: MotoServer) -> Iterator[AwsBackend]:
    context = BackendContext(
        env={
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": moto_server.endpoint,
            "AWS_ACCESS_KEY_ID": "AKIACONFORMANCE00001",
            "AWS_SECRET_ACCESS_KEY": "conformance-key",
        },
        timeout=10.0,
    )
    instance = AwsBackend("aws", {}, context)
    instance.login()
    yield instance
    instance.close()


@pytest.fixture
def seed(moto_server: MotoServer) -> Callable[[str, dict[str, str]], None]:
    client = moto_server.client("secretsmanager")

    def store(path: str, fields: dict[str, str]) -> None:
        # A JSON SecretString: the resolver (and the suite) pick fields out of it.
        client.create_secret(Name=path, SecretString=json.dumps(fields))

    return store


@pytest.fixture
def missing_path() -> str:
    return "conformance/does-not-exist"


class TestAwsConformance(BackendConformance):
    """Secrets live under ``conformance/``; prefix listing is supported."""

    PATH_TEMPLATE = "conformance/{name}"
    SUPPORTS_PREFIX = True
