"""The github backend passes the backend conformance suite against the local GitHub REST server."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from jobsecrets.backends.base import Backend, BackendContext, ReadRequest
from jobsecrets.backends.github import GithubBackend
from jobsecrets.testing.conformance import BackendConformance
from jobsecrets.testing.github_api import GithubApiServer
from support.github_app import APP_ID, AppKey

KEY_REF = "vault:secret/ci/github-app#pem"


@pytest.fixture(scope="module")
def app() -> AppKey:
    return AppKey()


@pytest.fixture(scope="module")
def other_app() -> AppKey:
    return AppKey()


@pytest.fixture(scope="module")
def server(app: AppKey) -> Iterator[GithubApiServer]:
    with GithubApiServer(APP_ID, app.public) as running:
        running.install("acme", ["leased"], {"contents": "read"})
        yield running


class TestGithubConformance(BackendConformance):
    """Each seeded path is a repository the App is installed on; a read mints a token."""

    PATH_TEMPLATE = "acme/{name}"
    MINTS_CREDENTIALS = True
    LEASES = True
    READ_OPTIONS: ClassVar[dict[str, dict[str, str]]] = {"permissions": {"contents": "read"}}

    @pytest.fixture
    def make_backend(self, server: GithubApiServer, app: AppKey) -> Callable[[], Backend]:
        def make() -> Backend:
            keys = {"pem": app.pem}
            context = BackendContext(env={}, lookup=lambda ref: keys["pem"])
            backend = GithubBackend(
                "github",
                {"app_id": APP_ID, "private_key": KEY_REF, "api_url": server.url},
                context,
            )
            backend.keys = keys  # type: ignore[attr-defined]
            return backend

        return make

    @pytest.fixture
    def break_login(self, other_app: AppKey) -> Callable[[Backend], Callable[[], None]]:
        """The key in the store is another App's: GitHub refuses the JWT."""

        def brk(backend: Backend) -> Callable[[], None]:
            keys: dict[str, str] = backend.keys  # type: ignore[attr-defined]
            good = keys["pem"]
            keys["pem"] = other_app.pem

            def repair() -> None:
                keys["pem"] = good

            return repair

        return brk

    @pytest.fixture
    def seed(self, server: GithubApiServer) -> Callable[[str, dict[str, str]], None]:
        def install(path: str, fields: dict[str, str]) -> None:
            owner, repo = path.split("/", 1)
            server.install(owner, [repo], {"contents": "read"})

        return install

    @pytest.fixture
    def missing_path(self) -> str:
        return f"acme/missing-{secrets.token_hex(4)}"

    @pytest.fixture
    def leased_request(self) -> ReadRequest:
        return ReadRequest(
            "acme/leased",
            options={"permissions": {"contents": "read"}},
            variables=("GH_TOKEN",),
            ref="github:acme/leased",
        )
