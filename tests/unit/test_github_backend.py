"""The github backend against the local GitHub REST server (jobsecrets.testing.github_api).

The App's key is handed to the backend through ``BackendContext.lookup``, as the session does; the
server verifies every JWT with the App's public key. Assertions never show a token or a key.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from jobsecrets.backends.base import BackendContext, ReadRequest
from jobsecrets.backends.github import GithubBackend
from jobsecrets.errors import (
    AccessDenied,
    AuthError,
    BackendError,
    ConfigError,
    RevokeError,
    SecretNotFound,
)
from jobsecrets.lifecycle.cipher import StateCipher
from jobsecrets.lifecycle.ledger import Ledger
from jobsecrets.lifecycle.state import load_state, write_state
from jobsecrets.spec import parse_spec
from jobsecrets.testing.github_api import GithubApiServer
from support.github_app import APP_ID, AppKey, server_for

KEY_REF = "vault:secret/ci/github-app#pem"
READ = {"permissions": {"contents": "read"}}


@pytest.fixture(scope="module")
def app() -> AppKey:
    return AppKey()


@pytest.fixture(scope="module")
def other_key() -> AppKey:
    return AppKey()


@pytest.fixture
def server(app: AppKey) -> Iterator[GithubApiServer]:
    with server_for(app) as running:
        yield running


def backend_for(
    server: GithubApiServer, pem: str, *, deadline: float | None = None, **options: Any
) -> GithubBackend:
    looked_up: list[str] = []

    def lookup(ref: str) -> str:
        looked_up.append(ref)
        assert ref == KEY_REF
        return pem

    context = BackendContext(env={}, lookup=lookup, deadline=deadline, timeout=5)
    merged = {"app_id": APP_ID, "private_key": KEY_REF, "api_url": server.url, **options}
    backend = GithubBackend("github", merged, context)
    backend.looked_up = looked_up  # type: ignore[attr-defined]
    return backend


def request(path: str = "acme/app", variable: str = "GH_TOKEN", **options: Any) -> ReadRequest:
    return ReadRequest(
        path, options={**READ, **options}, variables=(variable,), ref=f"github:{path}"
    )


def use(server: GithubApiServer, token: str) -> int:
    """What a job does with its token: list the repositories it may see; returns the HTTP status."""
    req = urllib.request.Request(  # noqa: S310 - local server
        server.url + "/installation/repositories",
        headers={"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": "2022-11-28"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_mints_a_scoped_token_the_job_can_use_and_revokes_it(
    server: GithubApiServer, app: AppKey
) -> None:
    backend = backend_for(server, app.pem)
    backend.login()
    document = backend.read(request(permissions={"contents": "read", "issues": "write"}))
    token = document.data
    assert isinstance(token, str) and token in server.tokens
    issued = server.tokens[token]
    assert issued.permissions == {"contents": "read", "issues": "write", "metadata": "read"}
    assert issued.repositories == ["app"], "the token was not narrowed to the reference's repo"
    assert document.lease is not None and not document.lease.renewable
    assert 3500 < document.lease.ttl <= 3600
    assert use(server, token) == 200
    backend.revoke_lease(document.lease.lease_id)
    assert issued.revoked_at is not None, "the server did not see the revocation"
    assert use(server, token) == 401
    backend.revoke_lease(document.lease.lease_id)  # again: quiet
    # Every request pinned the API version; the JWT went to App endpoints, the token to its own.
    assert all(seen.api_version == "2022-11-28" for seen in server.requests[:-2])
    assert {s.auth for s in server.seen("POST", "access_tokens")} == {"jwt"}
    assert {s.auth for s in server.seen("DELETE", "/installation/token")} == {"token"}


def test_key_is_looked_up_for_signing_and_not_kept(server: GithubApiServer, app: AppKey) -> None:
    backend = backend_for(server, app.pem)
    backend.login()
    backend.read(request())
    assert backend.looked_up == [KEY_REF]  # type: ignore[attr-defined]
    held = [value for value in vars(backend).values() if isinstance(value, str)]
    assert (app.pem in held) is False, "the backend kept the private key"


def test_equal_requests_share_a_token_and_different_ones_do_not(
    server: GithubApiServer, app: AppKey
) -> None:
    backend = backend_for(server, app.pem)
    backend.login()
    both = {"contents": "read", "issues": "write"}
    reversed_order = {"issues": "write", "contents": "read"}
    results = backend.read_many(
        [
            request(variable="A", permissions=both),
            request(variable="B", permissions=reversed_order),
            request(variable="C", permissions={"contents": "write"}),
            request(variable="D", permissions=both, repositories=["app", "other"]),
        ]
    )
    tokens = [r.data for r in results]  # type: ignore[union-attr]
    assert tokens[0] == tokens[1], "the same request minted two tokens"
    assert len({tokens[0], tokens[2], tokens[3]}) == 3, "different requests shared a token"
    assert len(server.tokens) == 3
    assert server.tokens[tokens[3]].repositories == ["app", "other"]  # type: ignore[index]


def test_not_installed_is_a_clear_404(server: GithubApiServer, app: AppKey) -> None:
    backend = backend_for(server, app.pem)
    backend.login()
    with pytest.raises(SecretNotFound) as caught:
        backend.read(request("acme/elsewhere"))
    message = caught.value.message
    assert (
        "jobsecrets-test" in message and "acme/elsewhere" in message and "not installed" in message
    )
    assert "install" in caught.value.hint


def test_a_key_of_another_app_fails_sign_in_clearly(
    server: GithubApiServer, other_key: AppKey
) -> None:
    backend = backend_for(server, other_key.pem)
    with pytest.raises(AuthError) as caught:
        backend.login()
    assert str(APP_ID) in caught.value.message
    assert "could not be decoded" in caught.value.message
    assert KEY_REF in caught.value.hint
    assert (other_key.pem in str(caught.value) + caught.value.hint) is False


def test_not_a_pem_key_names_where_it_came_from_not_what(server: GithubApiServer) -> None:
    backend = backend_for(server, "not-a-key-but-secret-text")
    with pytest.raises(ConfigError) as caught:
        backend.login()
    assert KEY_REF in caught.value.message
    assert ("not-a-key-but-secret-text" in caught.value.message) is False


@pytest.mark.parametrize("offset", [-50.0, 50.0])
def test_clock_skew_of_under_a_minute_is_allowed(
    server: GithubApiServer, app: AppKey, offset: float
) -> None:
    server.clock_offset = offset
    backend = backend_for(server, app.pem)
    backend.login()
    assert isinstance(backend.read(request()).data, str)


def test_without_backdating_a_slow_server_clock_would_refuse(
    server: GithubApiServer, app: AppKey
) -> None:
    # The reason for iat - 60 s: a server clock behind ours refuses a JWT "issued in the future".
    server.clock_offset = -50.0
    now = int(time.time())
    naive = jwt.encode(
        {"iat": now, "exp": now + 540, "iss": str(APP_ID)}, app.key, algorithm="RS256"
    )
    assert server.jwt_problem(naive) is not None
    assert (
        server.jwt_problem(
            jwt.encode(
                {"iat": now - 60, "exp": now + 540, "iss": str(APP_ID)}, app.key, algorithm="RS256"
            )
        )
        is None
    )


def test_enterprise_server_api_url(app: AppKey) -> None:
    with server_for(app, prefix="/api/v3") as ghes:
        assert ghes.url.endswith("/api/v3")
        backend = backend_for(ghes, app.pem)
        backend.login()
        document = backend.read(request())
        assert document.lease is not None
        backend.revoke_lease(document.lease.lease_id)
        assert all(seen.path.startswith("/api/v3/") for seen in ghes.requests)
        assert len(ghes.revoked()) == 1


@pytest.mark.parametrize(
    ("kind", "status"), [("primary", 403), ("primary", 429), ("secondary", 403), ("secondary", 429)]
)
def test_rate_limits_are_waited_out_within_the_deadline(
    server: GithubApiServer, app: AppKey, kind: str, status: int
) -> None:
    backend = backend_for(server, app.pem, deadline=time.monotonic() + 30)
    backend.login()
    server.rate_limit(1, kind=kind, wait=1, status=status)
    started = time.monotonic()
    document = backend.read(request())
    assert isinstance(document.data, str)
    assert time.monotonic() - started >= 0.9, "the retry did not wait"
    assert len(server.seen("GET", "/installation$")) == 2  # the limited call, then the retry


@pytest.mark.parametrize("kind", ["primary", "secondary"])
def test_a_rate_limit_past_the_deadline_fails_at_once(
    server: GithubApiServer, app: AppKey, kind: str
) -> None:
    backend = backend_for(server, app.pem, deadline=time.monotonic() + 5)
    backend.login()
    server.rate_limit(1, kind=kind, wait=120)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        backend.read(request())
    assert time.monotonic() - started < 3, "it slept although the wait was past the deadline"
    assert "rate-limited" in caught.value.message and "deadline" in caught.value.message


def test_permissions_beyond_the_installation_are_refused(
    server: GithubApiServer, app: AppKey
) -> None:
    backend = backend_for(server, app.pem)
    backend.login()
    with pytest.raises(AccessDenied) as caught:
        backend.read(request(permissions={"administration": "write"}))
    assert "administration: write" in caught.value.message
    assert "not granted" in caught.value.message
    assert not server.tokens


def test_a_token_broader_than_asked_is_revoked_and_refused(
    server: GithubApiServer, app: AppKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = server.handle

    def broader(*args: Any) -> Any:
        status, headers, body = answer(*args)
        if isinstance(body, dict) and "token" in body:
            body["permissions"]["administration"] = "write"
        return status, headers, body

    monkeypatch.setattr(server, "handle", broader)
    backend = backend_for(server, app.pem)
    backend.login()
    with pytest.raises(AccessDenied) as caught:
        backend.read(request())
    assert "more than asked" in caught.value.message and "administration" in caught.value.message
    assert len(server.tokens) == 1 and len(server.revoked()) == 1


def test_check_access_reads_nothing(server: GithubApiServer, app: AppKey) -> None:
    backend = backend_for(server, app.pem)
    backend.login()
    assert backend.check_access(request()).allowed
    assert not backend.check_access(request(permissions={"administration": "read"})).allowed
    missing = backend.check_access(request("acme/elsewhere"))
    assert not missing.allowed and missing.missing
    assert not server.tokens, "plan --check minted a token"


def test_an_expired_token_counts_as_revoked(server: GithubApiServer, app: AppKey) -> None:
    backend = backend_for(server, app.pem)
    backend.login()
    document = backend.read(request())
    assert document.lease is not None
    server.clock_offset = 3700.0  # an hour later on the server
    backend.revoke_lease(document.lease.lease_id)
    assert server.revoked() == []  # GitHub answered 401: nothing left to revoke
    assert backend.token_record() is None


def test_state_file_seals_the_tokens_and_a_later_process_revokes_them(
    server: GithubApiServer, app: AppKey, tmp_path: Any
) -> None:
    key = "k" * 40
    backend = backend_for(server, app.pem)
    backend.login()
    ledger = Ledger()
    ledger.add_backend(backend)
    first = backend.read(request(variable="A"))
    second = backend.read(request(variable="B", permissions={"issues": "write"}))
    for document in (first, second):
        assert document.lease is not None
        ledger.add_lease(document.lease)
    path = tmp_path / "state.json"
    write_state(ledger, str(path), cipher=StateCipher(key))
    text = path.read_text()
    assert (first.data in text or second.data in text) is False, "a token is in clear in the state"
    state = json.loads(text)
    assert len(state["leases"]) == 2 and "token_sealed" in state["tokens"][0]

    # Without the key, `revoke` cannot end live tokens, and says so instead of claiming success.
    blind = load_state(str(path), {})
    assert blind is not None
    report = blind.revoke_all()
    assert not report.ok and not server.revoked()

    later = load_state(str(path), {"JOBSECRETS_STATE_KEY": key})
    assert later is not None
    report = later.revoke_all()
    assert report.ok, report.summary()
    assert report.leases_revoked == 2
    assert len(server.revoked()) == 2 and not server.active()


def test_two_exports_merged_into_one_state_file_are_all_revoked(
    server: GithubApiServer, app: AppKey, tmp_path: Any
) -> None:
    path = tmp_path / "state.json"
    for step in range(2):
        backend = backend_for(server, app.pem)
        backend.login()
        ledger = Ledger()
        ledger.add_backend(backend)
        for permissions in ({"contents": "read"}, {"issues": "write"}):
            document = backend.read(request(variable=f"V{step}", permissions=permissions))
            assert document.lease is not None
            ledger.add_lease(document.lease)
        write_state(ledger, str(path))
    assert len(server.active()) == 4
    later = load_state(str(path), {})
    assert later is not None
    report = later.revoke_all()
    assert report.ok, report.summary()
    assert not server.active(), "a token of the first export outlived revoke"


def test_an_unknown_live_lease_of_ours_is_not_claimed_revoked(
    server: GithubApiServer, app: AppKey
) -> None:
    backend = backend_for(server, app.pem)
    future = int(time.time()) + 1800
    with pytest.raises(RevokeError):
        backend.revoke_lease(f"github-token/10001/{future}/abcdef")
    backend.revoke_lease(f"github-token/10001/{int(time.time()) - 5}/abcdef")  # expired: fine
    backend.revoke_lease("no/such/lease")  # not ours: fine


SPEC = """\
version: 1
backends:
  vault: {{type: vault, address: "http://127.0.0.1:1"}}
  gh:
    type: github
    app_id: 4242
    private_key: {key}
secrets:
  GH_TOKEN: {secret}
"""


def spec_problems(key: str = "vault:secret/ci/app#pem", secret: str = "") -> str:
    secret = secret or '{ref: "gh:acme/app", permissions: {contents: read}}'
    try:
        parse_spec(SPEC.format(key=key, secret=secret))
    except ConfigError as error:
        return "\n".join(p.message for p in error.problems)
    return ""


def test_spec_accepts_the_documented_form() -> None:
    assert spec_problems() == ""


@pytest.mark.parametrize(
    ("key", "secret", "expected"),
    [
        ("vault:secret/ci/app#pem", "gh:acme/app", "'permissions' is required"),
        (
            "vault:secret/ci/app#pem",
            '{ref: "gh:acme/app#token", permissions: {contents: read}}',
            "take no '#field'",
        ),
        (
            "vault:secret/ci/app#pem",
            '{ref: "gh:acme", permissions: {contents: read}}',
            "names no repository",
        ),
        (
            "vault:secret/ci/app#pem",
            '{ref: "gh:acme/app", permissions: {contents: all}}',
            "level must be",
        ),
        (
            "-----BEGIN",
            '{ref: "gh:acme/app", permissions: {contents: read}}',
            "never the key itself",
        ),
        (
            "nowhere:secret/ci/app#pem",
            '{ref: "gh:acme/app", permissions: {contents: read}}',
            "must name a backend declared",
        ),
        (
            "gh:acme/app",
            '{ref: "gh:acme/app", permissions: {contents: read}}',
            "itself reads its options",
        ),
    ],
)
def test_spec_problems(key: str, secret: str, expected: str) -> None:
    assert expected in spec_problems(key, secret)


def test_plan_warns_when_the_job_may_outlive_the_tokens_hour() -> None:
    options = {"app_id": 1, "private_key": KEY_REF}
    assert GithubBackend.plan_warnings({**options, "job_timeout": "2h"}, {})
    assert GithubBackend.plan_warnings(options, {"CI_JOB_TIMEOUT": "7200"})
    assert not GithubBackend.plan_warnings({**options, "job_timeout": "45m"}, {})
    assert not GithubBackend.plan_warnings(options, {})


def test_the_app_jwt_and_minted_tokens_are_never_printed(
    server: GithubApiServer, app: AppKey
) -> None:
    """A store's error text may quote the bearer it was sent: the App JWT and every token minted
    are remembered (jobsecrets.unshown) the moment they exist, so messages mask them."""
    from jobsecrets import unshown

    unshown.forget_all()
    try:
        backend = backend_for(server, app.pem)
        backend.login()
        document = backend.read(request())
        signed = backend._jwt
        assert signed is not None, "no App JWT was kept"
        values, _ = unshown.remembered()
        assert signed[0] in values, "the App JWT is not remembered"
        assert document.data in values, "the minted token is not remembered"
        shown = unshown.scrub(f"bad credentials {signed[0]} / {document.data!s}")
        assert shown.startswith("bad credentials "), "the message itself was lost"
        assert signed[0] not in shown and str(document.data) not in shown, "not masked"
    finally:
        unshown.forget_all()


@pytest.mark.parametrize(
    "token",
    ["ghs_abc\r\nX-Injected: 1", " ghs_leading-space", "ghs_\u00e9t\u00e9"],
    ids=["line-break", "leading-space", "non-ascii"],
)
def test_a_minted_token_no_header_can_carry_is_refused(
    server: GithubApiServer, app: AppKey, token: str
) -> None:
    """The job sends the token in an Authorization header, and revocation does too: one with a
    line break, a leading space or non-ASCII text was handed to the job as it was (a header
    injection in every later request), and revoking it failed deep in http.client."""
    backend = backend_for(server, app.pem)
    backend.login()
    server.next_token = token
    with pytest.raises(BackendError) as info:
        backend.read(request())
    message = info.value.message
    assert "cannot be sent in an HTTP header" in message, message
    assert "X-Injected" not in message and "ghs_" not in message, "the token is in the message"
