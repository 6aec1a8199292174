"""The CI identity token: GitHub request (retries, deadline, caching), GitLab, file, env, claims, expiry.

Assertions about token values are computed into booleans first, so that a failing assertion
never prints a token (pytest would show the operands of ``token in text``).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jobsecrets.errors import IdentityError
from jobsecrets.identity import IdentityProvider, expiry_problem, public_claims, token_claims
from jobsecrets.platforms import detect
from jobsecrets.spec.identity import IdentityConfig
from support.oidc import GithubTokenServer, default_claims, sign


class FakeClock:
    """A clock the test moves; ``sleep`` advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def full_text(exc: IdentityError) -> str:
    return f"{exc}\n{exc.hint}\n{exc!r}"


def leaks(exc: IdentityError, *secrets: str) -> bool:
    text = full_text(exc)
    return any(secret in text for secret in secrets)


# -- platform and config -----------------------------------------------------------------


def test_detect_platform() -> None:
    assert detect({"GITHUB_ACTIONS": "true"}).name == "github"
    assert detect({"GITLAB_CI": "true"}).name == "gitlab"
    assert detect({"GITHUB_ACTIONS": "false", "CI": "true"}).name == "local"
    assert detect({}).name == "local"


def test_config_defaults_and_values() -> None:
    assert IdentityConfig.from_mapping(None) == (IdentityConfig(), [])
    config, problems = IdentityConfig.from_mapping(
        {"provider": "gitlab", "audience": "vault", "variable": "BAO_ID", "clock_skew": "2m"}
    )
    assert problems == []
    assert config == IdentityConfig(
        provider="gitlab", audience="vault", variable="BAO_ID", clock_skew=120
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([1], "expected a mapping"),
        ({"audeince": "vault"}, "unknown key 'audeince'"),
        ({"audience": 3}, "identity.audience: expected a non-empty string"),
        ({"provider": "jenkins"}, "'jenkins' is not one of"),
        ({"provider": "file"}, "needs 'file: PATH'"),
        ({"provider": "env"}, "needs 'variable: NAME'"),
        ({"file": "/t", "variable": "T"}, "either 'file' or 'variable'"),
        ({"timeout": "soon"}, "identity.timeout"),
        ({"timeout": 0}, "more than 0s"),
    ],
)
def test_config_problems(data: object, expected: str) -> None:
    config, problems = IdentityConfig.from_mapping(data)
    assert isinstance(config, IdentityConfig)
    assert len(problems) == 1
    assert expected in problems[0]


# -- GitHub ------------------------------------------------------------------------------


def test_github_requests_token_for_audience(github_oidc: GithubTokenServer) -> None:
    provider = IdentityProvider(IdentityConfig(), github_oidc.env())
    assert provider.kind == "github"
    token = provider.token("vault")
    assert token_claims(token)["aud"] == "vault"
    # The request URL already had ?api-version=2.0; the fake answers 404 if we broke it.
    assert github_oidc.requests == ["vault"]
    assert "127.0.0.1" in provider.describe()


def test_github_default_audience_and_special_characters(github_oidc: GithubTokenServer) -> None:
    provider = IdentityProvider(
        IdentityConfig(audience="https://vault.example.com"), github_oidc.env()
    )
    provider.token()
    provider.token("a b&c=d")
    assert github_oidc.requests == ["https://vault.example.com", "a b&c=d"]


def test_github_token_is_cached_per_audience(github_oidc: GithubTokenServer) -> None:
    provider = IdentityProvider(IdentityConfig(), github_oidc.env())
    first = provider.token("vault")
    same = first == provider.token("vault")
    assert same
    provider.token("sts.amazonaws.com")
    assert github_oidc.requests == ["vault", "sts.amazonaws.com"]


def test_github_concurrent_callers_share_one_request(github_oidc: GithubTokenServer) -> None:
    provider = IdentityProvider(IdentityConfig(), github_oidc.env())
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(provider.token("vault"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert github_oidc.issued == 1


def test_github_token_refreshed_when_expiry_within_skew(oidc_key: rsa.RSAPrivateKey) -> None:
    clock = FakeClock()

    def claims(audience: str | None) -> dict[str, Any]:
        now = int(clock.now)
        return default_claims(audience=audience or "x", iat=now, nbf=now, exp=now + 300)

    with GithubTokenServer(oidc_key, claims_factory=claims) as server:
        provider = IdentityProvider(
            IdentityConfig(clock_skew=60), server.env(), clock=clock, sleep=clock.sleep
        )
        first = provider.token("vault")
        clock.now += 200  # 100s left: still outside the 60s tolerance
        kept = provider.token("vault") == first
        assert kept
        clock.now += 50  # 50s left: inside the tolerance, so a new token is requested
        refreshed = provider.token("vault") != first
        assert refreshed
        assert server.issued == 2


def test_github_retries_5xx_with_backoff(oidc_key: rsa.RSAPrivateKey) -> None:
    clock = FakeClock()
    with GithubTokenServer(oidc_key, fail_first=3) as server:
        provider = IdentityProvider(IdentityConfig(), server.env(), clock=clock, sleep=clock.sleep)
        provider.token("vault")
        assert len(server.requests) == 4
        assert server.issued == 1
        assert clock.sleeps == [0.25, 0.5, 1.0]


def test_github_gives_up_at_deadline(oidc_key: rsa.RSAPrivateKey) -> None:
    clock = FakeClock()
    with GithubTokenServer(oidc_key, fail_first=1000, fail_status=503) as server:
        provider = IdentityProvider(
            IdentityConfig(timeout=10), server.env(), clock=clock, sleep=clock.sleep
        )
        with pytest.raises(IdentityError) as info:
            provider.token("vault")
        assert "HTTP 503" in str(info.value)
        assert sum(clock.sleeps) <= 10
        assert len(server.requests) >= 4
        assert not leaks(info.value, server.request_token)


def test_github_connection_errors_are_retried_then_reported() -> None:
    clock = FakeClock()
    with GithubTokenServer() as server:
        env = server.env()
    # The server is gone: every attempt is refused.
    provider = IdentityProvider(IdentityConfig(timeout=3), env, clock=clock, sleep=clock.sleep)
    with pytest.raises(IdentityError) as info:
        provider.token("vault")
    assert "failed" in str(info.value)
    assert len(clock.sleeps) >= 2
    assert not leaks(info.value, env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])


def test_github_wrong_request_token_is_not_retried(github_oidc: GithubTokenServer) -> None:
    env = {**github_oidc.env(), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "expired-request-token"}
    provider = IdentityProvider(IdentityConfig(), env, sleep=lambda _: None)
    with pytest.raises(IdentityError) as info:
        provider.token("vault")
    assert "HTTP 401" in str(info.value)
    assert "id-token: write" in info.value.hint
    assert len(github_oidc.requests) == 1
    assert not leaks(info.value, "expired-request-token")


@pytest.mark.parametrize(
    "missing", ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
)
def test_github_missing_variables_names_permission(missing: str) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
    }
    del env[missing]
    provider = IdentityProvider(IdentityConfig(), env)
    assert "not available" in provider.describe()
    with pytest.raises(IdentityError) as info:
        provider.token("vault")
    assert missing in str(info.value)
    assert "permissions: id-token: write" in full_text(info.value)
    assert info.value.exit_code == 3


def test_github_token_without_exp_is_accepted(oidc_key: rsa.RSAPrivateKey) -> None:
    with GithubTokenServer(oidc_key) as server:
        server.claims_for = lambda audience: {}  # type: ignore[method-assign]
        provider = IdentityProvider(IdentityConfig(), server.env())
        # An empty-claims token still decodes; it has no exp, so it is accepted as is.
        assert token_claims(provider.token("vault")) == {}


# -- GitLab, env, file -------------------------------------------------------------------


def test_gitlab_reads_default_variable(oidc_key: rsa.RSAPrivateKey) -> None:
    token = sign(default_claims(audience="vault", project_path="acme/app"), oidc_key)
    provider = IdentityProvider(IdentityConfig(), {"GITLAB_CI": "true", "VAULT_ID_TOKEN": token})
    assert provider.kind == "gitlab"
    same = provider.token("vault") == token
    assert same
    assert provider.describe() == "GitLab CI id_tokens variable $VAULT_ID_TOKEN"
    assert provider.claims("vault")["project_path"] == "acme/app"


def test_gitlab_custom_variable_and_missing(oidc_key: rsa.RSAPrivateKey) -> None:
    token = sign(default_claims(audience="bao"), oidc_key)
    env = {"GITLAB_CI": "true", "BAO_ID_TOKEN": token}
    found = IdentityProvider(IdentityConfig(variable="BAO_ID_TOKEN"), env).token("bao") == token
    assert found
    with pytest.raises(IdentityError) as info:
        IdentityProvider(IdentityConfig(), env).token("bao")
    assert "$VAULT_ID_TOKEN is not set" in str(info.value)
    assert "id_tokens:" in info.value.hint


def test_static_token_audience_mismatch(oidc_key: rsa.RSAPrivateKey) -> None:
    token = sign(default_claims(audience=["other", "more"]), oidc_key)
    provider = IdentityProvider(IdentityConfig(), {"GITLAB_CI": "true", "VAULT_ID_TOKEN": token})
    with pytest.raises(IdentityError) as info:
        provider.token("vault")
    assert "does not include 'vault'" in str(info.value)
    assert not leaks(info.value, token, token.split(".")[2])
    provider.token("more")  # a list audience containing the one asked for is fine


def test_env_provider_anywhere(oidc_key: rsa.RSAPrivateKey) -> None:
    token = sign(default_claims(), oidc_key)
    provider = IdentityProvider(IdentityConfig(variable="MY_OIDC"), {"MY_OIDC": token + "\n"})
    assert provider.kind == "env"
    stripped = provider.token() == token
    assert stripped


def test_file_provider_rereads_rotated_file(oidc_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "token"
    first = sign(default_claims(exp=int(clock.now) + 120), oidc_key)
    path.write_text(first)
    provider = IdentityProvider(IdentityConfig(file=str(path)), {}, clock=clock)
    assert provider.describe() == f"token file {path}"
    same = provider.token() == first
    assert same
    second = sign(default_claims(exp=int(clock.now) + 3600), oidc_key)
    path.write_text(second)
    clock.now += 90  # the cached token is now inside the skew: the file is read again
    rotated = provider.token() == second
    assert rotated


def test_file_provider_errors(tmp_path: Path) -> None:
    missing = IdentityProvider(IdentityConfig(file=str(tmp_path / "nope")), {})
    with pytest.raises(IdentityError, match="cannot read token file"):
        missing.token()
    # A device was read without end, a FIFO blocked the open: each is no token file.
    os.mkfifo(tmp_path / "fifo")
    for odd in ("/dev/zero", str(tmp_path / "fifo"), str(tmp_path)):
        with pytest.raises(IdentityError, match="not a regular file"):
            IdentityProvider(IdentityConfig(file=odd), {}).token()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(IdentityError, match="is empty"):
        IdentityProvider(IdentityConfig(file=str(tmp_path / "empty")), {}).token()
    (tmp_path / "garbage").write_text("not-a-jwt-but-secret")
    with pytest.raises(IdentityError) as info:
        IdentityProvider(IdentityConfig(file=str(tmp_path / "garbage")), {}).token()
    assert "not a JWT" in str(info.value)
    assert not leaks(info.value, "not-a-jwt-but-secret")


def test_static_expired_token_is_refused(oidc_key: rsa.RSAPrivateKey) -> None:
    now = time.time()
    expired = sign(default_claims(exp=int(now) - 10), oidc_key)
    provider = IdentityProvider(IdentityConfig(variable="T"), {"T": expired})
    with pytest.raises(IdentityError) as info:
        provider.token()
    assert "token expired at" in str(info.value)
    assert not leaks(info.value, expired, expired.split(".")[2])

    almost = sign(default_claims(exp=int(now) + 30), oidc_key)
    provider = IdentityProvider(IdentityConfig(variable="T"), {"T": almost})
    with pytest.raises(IdentityError, match="within the 1m clock-skew tolerance"):
        provider.token()
    lenient = IdentityProvider(IdentityConfig(variable="T", clock_skew=5), {"T": almost})
    accepted = lenient.token() == almost
    assert accepted


def test_local_without_configuration_explains_options() -> None:
    provider = IdentityProvider(IdentityConfig(), {"CI": "true"})
    assert provider.kind == "none"
    with pytest.raises(IdentityError) as info:
        provider.token("vault")
    text = full_text(info.value)
    assert "identity: {file: PATH}" in text
    assert "identity: {variable: NAME}" in text


def test_explicit_provider_overrides_platform(oidc_key: rsa.RSAPrivateKey) -> None:
    token = sign(default_claims(), oidc_key)
    env = {"GITHUB_ACTIONS": "true", "CI_TOKEN": token}
    assert IdentityProvider(IdentityConfig(variable="CI_TOKEN"), env).kind == "env"
    assert IdentityProvider(IdentityConfig(provider="github", variable="X"), env).kind == "github"
    assert IdentityProvider(IdentityConfig(provider="gitlab"), {}).kind == "gitlab"


# -- claims ------------------------------------------------------------------------------


def test_token_claims_decodes_without_verification(oidc_key: rsa.RSAPrivateKey) -> None:
    claims = default_claims(environment="prod")
    token = sign(claims, oidc_key)
    assert token_claims(token) == claims
    # Padding-free base64url with characters that differ from standard base64.
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "??>>"}).encode()).rstrip(b"=")
    assert token_claims(f"e30.{payload.decode()}.sig") == {"sub": "??>>"}


@pytest.mark.parametrize(
    "text", ["secretvalue", "a.b", "a.!!!.c", "a.bm90IGpzb24.c", "a.WzFd.c", "a..c"]
)
def test_token_claims_rejects_non_jwts_without_quoting(text: str) -> None:
    with pytest.raises(IdentityError) as info:
        token_claims(text)
    assert not leaks(info.value, text)
    assert info.value.__cause__ is None


def test_public_claims_keeps_only_binding_claims() -> None:
    claims = default_claims(
        environment="prod",
        job_workflow_ref="acme/app/.github/workflows/ci.yml@refs/heads/main",
        project_path="acme/app",
        user_email="dev@example.com",
        signature_of_sorts="zzz",
    )
    kept = public_claims(claims)
    assert set(kept) == {
        "iss", "sub", "aud", "iat", "nbf", "exp", "repository", "repository_owner", "ref",
        "ref_type", "workflow", "actor", "run_id", "environment", "job_workflow_ref",
        "project_path",
    }  # fmt: skip
    assert list(kept) == sorted(kept)


def test_expiry_problem() -> None:
    now = 1_700_000_000.0
    assert expiry_problem({}, now=now) is None
    assert expiry_problem({"exp": "soon"}, now=now) is None
    assert expiry_problem({"exp": now + 61}, skew=60, now=now) is None
    assert "within the 1m clock-skew" in (expiry_problem({"exp": now + 60}, skew=60, now=now) or "")
    assert expiry_problem({"exp": now - 1}, now=now) == "token expired at 2023-11-14T22:13:19Z"


def test_describe_and_repr_never_hold_the_token(oidc_key: rsa.RSAPrivateKey) -> None:
    token = sign(default_claims(), oidc_key)
    provider = IdentityProvider(IdentityConfig(variable="T"), {"T": token})
    provider.token()
    shown = token in provider.describe() or token in repr(provider)
    assert not shown


_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**80), 2**80),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    claims=st.dictionaries(
        st.sampled_from(["exp", "iat", "nbf", "aud", "sub", "iss", "repository", "ref"]),
        _JSON,
    ),
    audience=st.one_of(st.none(), st.just("vault")),
)
@example(claims={"exp": -1e300}, audience=None)  # no date: iso_utc's OverflowError (found)
@example(claims={"exp": 10**400 // 10**300}, audience="vault")
def test_any_claims_give_a_token_or_an_identity_error(
    claims: dict[str, Any], audience: str | None
) -> None:
    """A static token (from a variable or file) is read, not verified: its claims are whatever
    the file holds. Any of them gives the token or an IdentityError, never another exception."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    token = f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"
    provider = IdentityProvider(
        IdentityConfig(provider="env", variable="MY_TOKEN"), {"MY_TOKEN": token}
    )
    try:
        assert provider.token(audience) == token
    except IdentityError as error:
        assert error.message
    public_claims(token_claims(token))
