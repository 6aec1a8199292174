"""The AWS Secrets Manager backend against moto's in-process ``mock_aws`` (fast, no server).

Denials are real moto IAM evaluations (see ``support.moto_server``), except per-secret ``Errors``
entries of ``BatchGetSecretValue``, which moto never produces and are injected with a botocore hook.
Assertions about secret values are booleans: a failing test must not print a value either.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from jobsecrets.backends import BackendContext, Document, ReadRequest, get_backend_class
from jobsecrets.backends.aws import AwsBackend
from jobsecrets.errors import (
    AccessDenied,
    AuthError,
    BackendError,
    ConfigError,
    IdentityError,
    JobSecretsError,
    SecretNotFound,
)
from support.moto_server import (
    REGION,
    admin_session_kwargs,
    allow,
    create_user,
    create_web_identity_role,
    deny,
    iam_enforced,
    policy,
    seed_secrets,
)

BASE_ENV = {
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "AKIATESTTESTTESTTEST",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
}
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm8vcjpyZWYifQ.c2lnbmF0dXJl"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def sm(aws: None) -> Any:
    return boto3.client("secretsmanager", **admin_session_kwargs())


@pytest.fixture
def iam(aws: None) -> Any:
    return boto3.client("iam", **admin_session_kwargs())


def make_backend(
    options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    identity: Any = None,
    deadline: float | None = None,
    sleep: Any = None,
) -> AwsBackend:
    context = BackendContext(
        env=dict(BASE_ENV if env is None else env),
        identity=identity,
        timeout=5.0,
        deadline=deadline,
        sleep=sleep or (lambda _seconds: None),  # retries without waiting
    )
    return AwsBackend("aws", options or {}, context)


def logged_in(**kwargs: Any) -> AwsBackend:
    backend = make_backend(**kwargs)
    backend.login()
    return backend


def req(path: str, var: str = "VAR", **options: Any) -> ReadRequest:
    return ReadRequest(path=path, options=options, variables=(var,), ref=f"aws:{path}")


def count_calls(backend: AwsBackend) -> Counter[str]:
    """Count API calls actually sent, through botocore's event system."""
    calls: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    backend.client.meta.events.register("before-call.secretsmanager.*", hook)
    return calls


def throttle(times: int, code: str = "ThrottlingException", status: int = 400) -> Any:
    """A before-call hook failing the first ``times`` calls like AWS does when throttling."""
    state = {"left": times}

    def hook(model: Any, **_: Any) -> None:
        if state["left"] > 0:
            state["left"] -= 1
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                model.name,
            )

    return hook


# ---- values ------------------------------------------------------------------------------


def test_json_secret_string_is_returned_as_text(sm: Any) -> None:
    value = '{"password": "s3cr3t-Ω", "nested": {"k": 1}}'
    seed_secrets(sm, {"prod/db": value})
    doc = logged_in().read(req("prod/db", "DB"))
    assert isinstance(doc.data, str)
    assert doc.data == value, "SecretString differs"
    assert doc.version and doc.updated is not None
    assert doc.details["name"] == "prod/db"
    assert "AWSCURRENT" in doc.details["version_stages"]


def test_binary_secret_is_byte_exact(sm: Any) -> None:
    value = bytes(range(256)) + b"\x00\r\n\xff"
    seed_secrets(sm, {"blob": value, "other": "x"})
    backend = logged_in()
    single = backend.read(req("blob"))
    batched = backend.read_many([req("blob"), req("other")])[0]
    for doc in (single, batched):
        assert isinstance(doc, Document) and isinstance(doc.data, bytes)
        assert doc.data == value, "SecretBinary not byte-exact"


def test_version_stage_and_version_id(sm: Any) -> None:
    seed_secrets(sm, {"rotating": "old-value"})
    old_id = sm.describe_secret(SecretId="rotating")["VersionIdsToStages"]
    old_version = next(iter(old_id))
    new_version = sm.put_secret_value(SecretId="rotating", SecretString="new-value")["VersionId"]
    backend = logged_in()
    results = backend.read_many(
        [
            req("rotating", "CUR"),
            req("rotating", "PREV", version_stage="AWSPREVIOUS"),
            req("rotating", "BYID", version_id=old_version),
        ]
    )
    assert all(isinstance(r, Document) for r in results)
    data = [r.data for r in results if isinstance(r, Document)]
    assert data == ["new-value", "old-value", "old-value"], "wrong versions"
    assert isinstance(results[0], Document) and results[0].version == new_version
    assert isinstance(results[2], Document) and results[2].version == old_version
    missing = backend.read_many([req("rotating", "GONE", version_stage="NOPE")])[0]
    assert isinstance(missing, JobSecretsError)


def test_batch_of_45_ids_makes_three_batch_calls(sm: Any) -> None:
    secrets = {f"app/s{i:02d}": f"value-{i}" for i in range(45)}
    seed_secrets(sm, secrets)
    backend = logged_in()
    calls = count_calls(backend)
    requests = [req(name, f"V{i}") for i, name in enumerate(secrets)]
    results = backend.read_many(requests)
    assert calls == Counter({"BatchGetSecretValue": 3})
    assert [r.data if isinstance(r, Document) else None for r in results] == list(
        secrets.values()
    ), "values out of order"


def test_batch_matches_arns_and_partial_arns(sm: Any) -> None:
    arns = seed_secrets(sm, {"by-arn": "a", "by-partial": "b", "by-name": "c"})
    backend = logged_in()
    calls = count_calls(backend)
    results = backend.read_many([req(arns["by-arn"]), req(arns["by-partial"][:-7]), req("by-name")])
    assert [r.data if isinstance(r, Document) else r for r in results] == ["a", "b", "c"]
    assert calls["GetSecretValue"] == 0


def test_batch_off_uses_get_secret_value(sm: Any) -> None:
    seed_secrets(sm, {"a": "1", "b": "2"})
    backend = logged_in(options={"batch": False})
    calls = count_calls(backend)
    assert all(isinstance(r, Document) for r in backend.read_many([req("a"), req("b")]))
    assert calls == Counter({"GetSecretValue": 2})


def test_batch_denied_falls_back_to_get_secret_value(sm: Any, iam: Any) -> None:
    secrets = {f"fb/s{i}": f"v{i}" for i in range(5)}
    seed_secrets(sm, secrets)
    creds = create_user(
        iam,
        "no-batch",
        policy(allow("secretsmanager:*"), deny("secretsmanager:BatchGetSecretValue")),
    )
    with iam_enforced():
        backend = logged_in(env={"AWS_REGION": REGION, **creds})
        calls = count_calls(backend)
        results = backend.read_many([req(name) for name in secrets])
        assert [r.data if isinstance(r, Document) else None for r in results] == list(
            secrets.values()
        )
        assert calls == Counter({"BatchGetSecretValue": 1, "GetSecretValue": 5})
        assert backend.batch_fallback == "AccessDenied"
        # Once denied, later reads go straight to GetSecretValue.
        backend.read_many([req("fb/s0"), req("fb/s1")])
        assert calls["BatchGetSecretValue"] == 1


def test_missing_secret_names_variable_and_id(sm: Any) -> None:
    seed_secrets(sm, {"here": "present-value"})
    backend = logged_in()
    results = backend.read_many([req("here", "OK_VAR"), req("not/there", "MISSING_VAR")])
    assert isinstance(results[0], Document)
    error = results[1]
    assert isinstance(error, SecretNotFound)
    assert "MISSING_VAR" in str(error) and "not/there" in str(error)
    with pytest.raises(SecretNotFound) as raised:
        backend.read(req("not/there", "ALONE"))
    assert "ALONE" in str(raised.value) and raised.value.__cause__ is None


def test_denied_secret_is_access_denied_without_value(sm: Any, iam: Any) -> None:
    seed_secrets(sm, {"locked/a": "locked-value-a", "locked/b": "locked-value-b"})
    creds = create_user(
        iam,
        "denied",
        policy(
            allow("secretsmanager:*"),
            deny("secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"),
        ),
    )
    with iam_enforced():
        backend = logged_in(env={"AWS_REGION": REGION, **creds})
        results = backend.read_many([req("locked/a", "A"), req("locked/b", "B")])
        single = backend.read_many([req("locked/a", "ONE")])
    assert all(isinstance(r, AccessDenied) for r in [*results, *single])
    assert "A (aws:locked/a)" in str(results[0]) and "locked/b" in str(results[1])
    leaked = any("locked-value" in str(r) or "locked-value" in r.hint for r in results)
    assert not leaked, "value leaked"


def test_per_secret_batch_errors_map_to_their_request(sm: Any) -> None:
    seed_secrets(sm, {"ok": "fine", "forbidden": "hidden-value", "broken": "x"})
    backend = logged_in()

    def inject(parsed: dict[str, Any], **_: Any) -> None:
        # Real AWS reports per-secret failures in Errors; moto never does, so rewrite its answer.
        kept = [e for e in parsed["SecretValues"] if e["Name"] == "ok"]
        parsed["SecretValues"] = kept
        parsed["Errors"] = [
            {"SecretId": "forbidden", "ErrorCode": "AccessDeniedException", "Message": "no"},
            {"SecretId": "broken", "ErrorCode": "InternalServiceError", "Message": "oops"},
        ]

    backend.client.meta.events.register("after-call.secretsmanager.BatchGetSecretValue", inject)
    calls = count_calls(backend)
    results = backend.read_many([req("ok"), req("forbidden", "F"), req("broken", "BR")])
    assert isinstance(results[0], Document)
    assert isinstance(results[1], AccessDenied) and "F (aws:forbidden)" in str(results[1])
    # A retryable per-secret error is retried on its own.
    assert isinstance(results[2], Document)
    assert calls["GetSecretValue"] == 1


def test_deleted_secret_is_not_found(sm: Any) -> None:
    seed_secrets(sm, {"doomed": "x", "alive": "y"})
    sm.delete_secret(SecretId="doomed", RecoveryWindowInDays=7)
    backend = logged_in()
    results = backend.read_many([req("doomed", "D"), req("alive")])
    assert isinstance(results[0], SecretNotFound) and "D (aws:doomed)" in str(results[0])
    assert isinstance(results[1], Document)
    assert backend.list_prefix("") == ["alive"]


# ---- prefix listing -------------------------------------------------------------------------


def test_prefix_listing_pages_through_150_secrets(sm: Any) -> None:
    wanted = {f"prod/payments/k{i:03d}": "v" for i in range(150)}
    others = {"prod/paymentsx/k": "v", "staging/prod/payments/k": "v", "prod/pay": "v"}
    seed_secrets(sm, {**wanted, **others})
    backend = logged_in()
    backend.LIST_PAGE_SIZE = 40  # type: ignore[misc]
    calls = count_calls(backend)
    names = backend.list_prefix("prod/payments/")
    assert names == sorted(wanted)
    assert calls["ListSecrets"] >= 4  # 150 at 40 a page
    backend.LIST_PAGE_SIZE = 100  # type: ignore[misc]
    calls.clear()
    assert backend.list_prefix("prod/payments/") == sorted(wanted)
    assert calls["ListSecrets"] >= 2


# ---- retries -------------------------------------------------------------------------------


def test_throttling_is_retried(sm: Any) -> None:
    seed_secrets(sm, {"t1": "a", "t2": "b"})
    sleeps: list[float] = []
    backend = logged_in(sleep=sleeps.append)
    backend.client.meta.events.register("before-call.secretsmanager.*", throttle(3))
    results = backend.read_many([req("t1"), req("t2")])
    assert all(isinstance(r, Document) for r in results)
    assert backend.api_calls["BatchGetSecretValue"] == 4
    assert len(sleeps) == 3 and all(0 <= s <= backend.RETRY_CAP for s in sleeps)


def test_5xx_is_retried_then_reported(sm: Any) -> None:
    seed_secrets(sm, {"flaky": "v"})
    backend = logged_in(options={"max_attempts": 3})
    backend.client.meta.events.register(
        "before-call.secretsmanager.*", throttle(10, "InternalServiceError", 500)
    )
    with pytest.raises(BackendError) as raised:
        backend.read(req("flaky", "FLAKY"))
    message = str(raised.value)
    assert "FLAKY" in message and "flaky" in message and "InternalServiceError" in message
    assert "3 attempt" in message
    assert backend.api_calls["GetSecretValue"] == 3


def test_retries_stop_at_the_deadline(sm: Any) -> None:
    seed_secrets(sm, {"slow": "v"})
    backend = logged_in(options={"max_attempts": 20}, deadline=time.monotonic() + 0.05)
    backend.RETRY_BASE = 1.0  # type: ignore[misc]  # any backoff step overshoots the deadline
    backend.client.meta.events.register("before-call.secretsmanager.*", throttle(100))
    with pytest.raises(BackendError):
        backend.read(req("slow"))
    assert backend.api_calls["GetSecretValue"] < 20


# ---- sign-in and credentials ----------------------------------------------------------------


class FakeIdentity:
    """Stands in for the CI identity provider; records the audiences asked for."""

    def __init__(self) -> None:
        self.audiences: list[str | None] = []

    def __call__(self, audience: str | None) -> str:
        self.audiences.append(audience)
        return TOKEN


def test_role_arn_assumes_role_and_exports_credentials(sm: Any, iam: Any) -> None:
    seed_secrets(sm, {"r/a": "1", "r/b": "2"})
    role_arn = create_web_identity_role(
        iam,
        "ci-deploy",
        policy(allow("secretsmanager:*"), deny("secretsmanager:BatchGetSecretValue")),
    )
    identity = FakeIdentity()
    seen: dict[str, Any] = {}

    def capture(params: dict[str, Any], **_: Any) -> None:
        seen.update(params)

    backend = make_backend(
        options={"role_arn": role_arn, "credentials": True, "session_name": "gh-42"},
        env={"AWS_REGION": REGION, "GITHUB_RUN_ID": "42"},
        identity=identity,
    )
    # The STS client is made inside login(); catch its parameters on the class-wide event bus.
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build.sts.*", capture)
        return client

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(botocore.session.Session, "create_client", create_client)
        # The first request (the unsigned STS call) passes unchecked; then the role's policy rules.
        with iam_enforced(free_requests=1):
            backend.login()
            results = backend.read_many([req("r/a"), req("r/b")])
    assert identity.audiences == ["sts.amazonaws.com"]
    assert seen["RoleArn"] == role_arn and seen["RoleSessionName"] == "gh-42"
    assert seen["DurationSeconds"] == 3600  # credentials: true defaults to 1h
    assert [r.data if isinstance(r, Document) else None for r in results] == ["1", "2"]
    assert backend.batch_fallback == "AccessDenied"  # the role's own policy, enforced by moto
    exported = backend.exported_variables()
    assert set(exported) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert exported["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    info = backend.identity_info()
    assert info["assumed_role_arn"].endswith(":assumed-role/ci-deploy/gh-42")
    assert info["account"] == "123456789012" and info["session_name"] == "gh-42"
    assert info["expiration"]
    shown = repr(info)
    assert not any(v in shown for v in exported.values()), "credential in identity_info"
    assert TOKEN not in shown


def test_role_defaults(sm: Any, iam: Any) -> None:
    role_arn = create_web_identity_role(iam, "ci-read", policy(allow("secretsmanager:*")))
    identity = FakeIdentity()
    backend = logged_in(
        options={"role_arn": role_arn, "audience": "my-aud"},
        env={"AWS_REGION": REGION, "CI_JOB_ID": "777"},
        identity=identity,
    )
    assert identity.audiences == ["my-aud"]
    assert backend.identity_info()["session_name"] == "jobsecrets-gl-777"
    assert backend.exported_variables() == {}  # credentials not asked for


def test_role_without_identity_is_identity_error(aws: None) -> None:
    backend = make_backend(options={"role_arn": "arn:aws:iam::123456789012:role/x"})
    with pytest.raises(IdentityError):
        backend.login()


def test_identity_is_fetched_while_boto3_loads_and_its_failure_still_raised(
    sm: Any, iam: Any
) -> None:
    """The CI identity token is asked for from its own thread as login starts (its round trips
    overlap boto3's import and the STS client's construction), once; an identity that fails
    fails the login with its own error, as when it was asked for inline."""
    import threading

    role_arn = create_web_identity_role(iam, "ci-soon", policy(allow("secretsmanager:*")))
    threads: list[str] = []

    def identity(audience: str | None) -> str:
        threads.append(threading.current_thread().name)
        return TOKEN

    logged_in(options={"role_arn": role_arn}, identity=identity)
    assert threads == ["jobsecrets-identity-aws"]

    def refused(audience: str | None) -> str:
        raise IdentityError("the token endpoint said no")

    backend = make_backend(options={"role_arn": role_arn}, identity=refused)
    with pytest.raises(IdentityError, match="said no"):
        backend.login()


def test_refused_web_identity_is_auth_error_without_token(aws: None) -> None:
    backend = make_backend(
        options={"role_arn": "arn:aws:iam::123456789012:role/x"}, identity=FakeIdentity()
    )
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register(
            "before-call.sts.AssumeRoleWithWebIdentity", throttle(1, "InvalidIdentityToken")
        )
        return client

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(botocore.session.Session, "create_client", create_client)
        with pytest.raises(AuthError) as raised:
            backend.login()
    text = str(raised.value) + raised.value.hint
    assert "InvalidIdentityToken" in text and "role/x" in text
    assert TOKEN not in text and raised.value.__cause__ is None


def test_default_chain_identity_info(aws: None) -> None:
    backend = logged_in()
    info = backend.identity_info()
    assert info["account"] == "123456789012" and info["arn"]
    assert backend.exported_variables() == {}


def test_region_and_endpoint_from_env(aws: None) -> None:
    env = {
        **BASE_ENV,
        "AWS_REGION": "",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://generic.invalid:1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm.invalid:2",
    }
    backend = logged_in(env=env)
    assert backend.region == "eu-west-1"
    assert backend.client.meta.endpoint_url == "http://sm.invalid:2"
    spec_wins = logged_in(
        options={"region": "ap-south-1", "endpoint_url": "http://spec.invalid:3"}, env=env
    )
    assert spec_wins.region == "ap-south-1"
    assert spec_wins.client.meta.endpoint_url == "http://spec.invalid:3"


def test_unreachable_endpoint_is_backend_error(aws: None) -> None:
    backend = logged_in(options={"endpoint_url": "http://127.0.0.1:9", "max_attempts": 2})
    with pytest.raises(BackendError) as raised:
        backend.read(req("x", "UNREACHABLE"))
    assert "UNREACHABLE" in str(raised.value) and "127.0.0.1:9" in str(raised.value)


def test_no_region_is_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    backend = make_backend(env={"AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "y"})
    with pytest.raises(ConfigError):
        backend.login()


# ---- access checks --------------------------------------------------------------------------


def test_check_access(sm: Any, iam: Any) -> None:
    seed_secrets(sm, {"chk": "v"})
    backend = logged_in()
    assert backend.check_access(req("chk")).allowed
    assert not backend.check_access(req("nope")).allowed
    assert not backend.check_access(req("chk", version_stage="AWSPREVIOUS")).allowed
    creds = create_user(iam, "nodescribe", policy(deny("secretsmanager:DescribeSecret")))
    with iam_enforced():
        denied = logged_in(env={"AWS_REGION": REGION, **creds}).check_access(req("chk", "C"))
    assert not denied.allowed and "C (aws:chk)" in denied.detail


# ---- static validation ----------------------------------------------------------------------


def test_registered_under_aws() -> None:
    assert get_backend_class("aws") is AwsBackend


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"region": 5}, "region"),
        ({"region": "EU West"}, "region"),
        ({"endpoint_url": "ftp://x"}, "endpoint_url"),
        ({"role_arn": "arn:aws:iam::12:user/x"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::123456789012:role/r", "session_name": "a b"}, "session_name"),
        ({"role_arn": "arn:aws:iam::123456789012:role/r", "duration": "5m"}, "duration"),
        ({"role_arn": "arn:aws:iam::123456789012:role/r", "duration": "13h"}, "duration"),
        ({"role_arn": "arn:aws:iam::123456789012:role/r", "duration": "soon"}, "duration"),
        ({"credentials": "yes"}, "credentials"),
        ({"credentials": True}, "needs role_arn"),
        ({"batch": 1}, "batch"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"audience": "x"}, "only meaningful with role_arn"),
    ],
)
def test_validate_options_problems(options: dict[str, Any], fragment: str) -> None:
    problems = AwsBackend.validate_options(options)
    assert any(fragment in p for p in problems), problems


def test_validate_options_accepts_a_full_spec() -> None:
    options = {
        "region": "eu-west-1",
        "endpoint_url": "http://127.0.0.1:5000",
        "role_arn": "arn:aws:iam::123456789012:role/ci-deploy",
        "audience": "sts.amazonaws.com",
        "session_name": "ci-run-1",
        "duration": "1h",
        "credentials": True,
        "batch": False,
        "max_attempts": 3,
    }
    assert AwsBackend.validate_options(options) == []
    assert set(options) <= set(AwsBackend.OPTIONS)
    assert "web identity" in AwsBackend.describe_auth(options)
    assert AwsBackend.describe_auth({}) == "default AWS credential chain"


@pytest.mark.parametrize(
    ("path", "options", "fragment"),
    [
        ("", {}, "empty"),
        ("has space", {}, "not a Secrets Manager name"),
        ("x", {"version_stage": ""}, "version_stage"),
        ("x", {"version_id": "short"}, "version_id"),
        ("x", {"version_stage": "AWSCURRENT", "version_id": "a" * 36}, "mutually exclusive"),
        ("prod/*", {"version_stage": "AWSCURRENT"}, "prefix"),
    ],
)
def test_validate_secret_problems(path: str, options: dict[str, Any], fragment: str) -> None:
    assert any(fragment in p for p in AwsBackend.validate_secret(path, options))


def test_validate_secret_accepts_names_arns_and_prefixes() -> None:
    for path in (
        "prod/payments",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a-AbCdEf",
        "prod/payments/*",
        "a+b=c.d@e-f_g",
    ):
        assert AwsBackend.validate_secret(path, {}) == [], path
    assert AwsBackend.validate_secret("x", {"version_id": "a" * 36}) == []


def test_plan_path_does_not_import_boto3() -> None:
    code = (
        "import sys\n"
        "from jobsecrets.backends import get_backend_class\n"
        "cls = get_backend_class('aws')\n"
        "cls.validate_options({'region': 'eu-west-1'}); cls.validate_secret('a', {})\n"
        "cls.describe_auth({})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'botocore'})\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unexpected_error_in_one_read_does_not_lose_the_others() -> None:
    """One odd answer becomes that read's error (type only, no text); the other reads still
    return their documents, so nothing obtained is dropped on the floor."""
    backend = AwsBackend("aws", {"region": REGION, "batch": False}, BackendContext(env={}))

    def read(request: ReadRequest) -> Document:
        if request.path == "odd":
            raise ValueError("s3cr3t-in-the-message")
        return Document(data="fine")

    backend.read = read  # type: ignore[method-assign]
    results = backend.read_many(
        [ReadRequest("odd", variables=("ODD",)), ReadRequest("ok", variables=("OK",))]
    )
    assert isinstance(results[0], BackendError)
    assert "ODD" in results[0].message and "ValueError" in results[0].message
    assert "s3cr3t" not in str(results[0])
    assert isinstance(results[1], Document)
