"""An AssumeRoleWithWebIdentity answer without usable credentials is a sign-in failure.

``response["Credentials"]`` and ``credentials["AccessKeyId"]`` were taken as given: a 200 answer
without them was a KeyError, "internal error" (exit 1). A stand-in STS (stdlib HTTP server at
``AWS_ENDPOINT_URL``) answers as a broken or hostile endpoint could; moto always answers whole
credentials. The identity is a test JWT from an environment variable (``provider: env``).

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and no value it compared.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support.cli import jobsecrets
from support.http_stubs import Answer, AnsweringServer, Seen
from support.oidc import default_claims, sign

SPEC = (
    "version: 1\nidentity: {provider: env, variable: MYJWT}\nbackends:\n"
    "  aws: {type: aws, region: eu-west-1, role_arn: 'arn:aws:iam::123456789012:role/ci'}\n"
    "secrets:\n  A: aws:prod/app#k\n"
)
GOOD = {
    "AccessKeyId": "ASIAGOODKEYID",
    "SecretAccessKey": "canary-secret-key",
    "SessionToken": "canary-session-token",
}


def shown(text: str) -> str:
    """The tail of the tool's output for a failure message, with any canary in it hidden."""
    return re.sub(r"\S*canary\S*", "***", text[-500:])


def sts_answer(credentials: str | None) -> bytes:
    """An AssumeRoleWithWebIdentity answer whose <Credentials> element is ``credentials``."""
    inner = "" if credentials is None else f"<Credentials>{credentials}</Credentials>"
    return (
        '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<AssumeRoleWithWebIdentityResult>{inner}"
        "<SubjectFromWebIdentityToken>repo:acme/app</SubjectFromWebIdentityToken>"
        "</AssumeRoleWithWebIdentityResult>"
        "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
        "</AssumeRoleWithWebIdentityResponse>"
    ).encode()


def fields(**changed: str | None) -> str:
    """The three credential fields and an expiration (``None``: left out), as XML."""
    soon = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {**GOOD, "Expiration": soon, **changed}
    return "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v is not None)


def run(
    tmp_path: Path, key: rsa.RSAPrivateKey, credentials: str | None
) -> tuple[int, str, list[Seen]]:
    """``export`` against a stand-in endpoint answering STS with ``credentials`` and Secrets
    Manager with "not found"; exit code, output, the requests it got."""

    def answer(seen: Seen) -> Answer:
        if seen.headers.get("x-amz-target", "").startswith("secretsmanager."):
            body = b'{"__type": "ResourceNotFoundException", "message": "no such secret"}'
            return 400, {"Content-Type": "application/x-amz-json-1.1"}, body
        return 200, {"Content-Type": "text/xml"}, sts_answer(credentials)

    (tmp_path / "jobsecrets.yml").write_text(SPEC)
    jwt = sign(default_claims(audience="sts.amazonaws.com"), key)
    with AnsweringServer(answer) as endpoint:
        env = {"MYJWT": jwt, "AWS_ENDPOINT_URL": endpoint.url}
        result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
    return result.returncode, result.stdout + result.stderr, endpoint.seen


@pytest.mark.parametrize(
    ("credentials", "why"),
    [
        (None, "no Credentials in the answer"),
        ("", "no AccessKeyId"),
        (fields(SessionToken=None), "no SessionToken"),
        (fields(AccessKeyId=""), "no AccessKeyId"),
        (fields(SecretAccessKey="canary-sk\u00fc\u20ac"), "SecretAccessKey holds"),
        (fields(AccessKeyId="ASIA KEY"), "AccessKeyId holds"),
        # botocore's parser raised ValueError (quoting the value): "failed unexpectedly", exit 6.
        (fields(Expiration="canary-not-a-time"), "Expiration is no date and time"),
        (fields(Expiration="99999999999999999999"), "Expiration is no date and time"),
        (fields(Expiration="2030-13-45T99:00:00Z"), "Expiration is no date and time"),
        (fields(Expiration="2100-01-01T00:00:00"), "Expiration has no time zone"),
        (fields(Expiration="2000-01-01T00:00:00Z"), "Expiration has passed already"),
    ],
    ids=[
        "no-credentials",
        "empty-credentials",
        "no-token",
        "empty-key-id",
        "non-ascii",
        "space",
        "expiration-text",
        "expiration-overflow",
        "expiration-no-date",
        "expiration-naive",
        "expiration-past",
    ],
)
def test_an_answer_without_usable_credentials_is_a_sign_in_failure(
    tmp_path: Path, oidc_key: rsa.RSAPrivateKey, credentials: str | None, why: str
) -> None:
    code, output, seen = run(tmp_path, oidc_key, credentials)
    assert code == 3, f"exit {code}: {shown(output)}"
    assert "AssumeRoleWithWebIdentity for role" in output, shown(output)
    assert f"returned no usable credentials ({why}" in output, shown(output)
    assert "internal error" not in output, shown(output)
    assert len(seen) == 1, "a request went out after STS (with what credentials?)"
    assert ("canary" in output) is False, "a credential is in the output"


def test_whole_credentials_sign_the_reads(tmp_path: Path, oidc_key: rsa.RSAPrivateKey) -> None:
    """The check lets a well-formed answer through: the read is signed with its key id."""
    code, output, seen = run(tmp_path, oidc_key, fields())
    assert code == 4, f"exit {code}: {shown(output)}"  # the stand-in has no such secret
    reads = [s for s in seen if s.headers.get("x-amz-target", "").startswith("secretsmanager.")]
    assert reads, "no Secrets Manager call"
    signed = "Credential=ASIAGOODKEYID/" in reads[0].headers.get("authorization", "")
    assert signed is True, "the read was not signed with the role's key id"
    assert ("canary" in output) is False, "a credential is in the output"


@pytest.mark.parametrize("fork", ["1", "0"], ids=["aws-in-its-own-process", "one-process"])
def test_an_error_quoting_the_roles_credentials_is_masked(
    tmp_path: Path, oidc_key: rsa.RSAPrivateKey, fork: str
) -> None:
    """The role's credentials are obtained where the AWS backend runs: with another backend in
    the spec, a process of its own, whose never-print list the CLI's does not know. AWS's error
    messages are never shown (only their codes), and at -vv that process's log lines are
    masked with its own list: neither shows a credential an error quotes."""
    from support.vault_stub import KV2_MOUNT, VaultStub

    def answer(seen: Seen) -> Answer:
        if seen.headers.get("x-amz-target", "").startswith("secretsmanager."):
            quoted = f"token {GOOD['SessionToken']} with key {GOOD['SecretAccessKey']} refused"
            body = b'{"__type": "ValidationException", "message": "%s"}' % quoted.encode()
            return 400, {"Content-Type": "application/x-amz-json-1.1"}, body
        return 200, {"Content-Type": "text/xml"}, sts_answer(fields())

    spec = SPEC.replace("backends:\n", "backends:\n  vault: {type: vault}\n")
    (tmp_path / "jobsecrets.yml").write_text(spec + "  B: vault:secret/b#v\n")
    jwt = sign(default_claims(audience="sts.amazonaws.com"), oidc_key)
    routes = {
        ("GET", "sys/internal/ui/mounts/*"): KV2_MOUNT,
        ("GET", "secret/data/b"): (200, {"data": {"data": {"v": "vee-1"}, "metadata": {}}}),
    }
    with AnsweringServer(answer) as endpoint, VaultStub(routes) as vault:
        env = {
            "MYJWT": jwt,
            "AWS_ENDPOINT_URL": endpoint.url,
            "VAULT_ADDR": vault.url,
            "VAULT_TOKEN": "hvs.user-token",
            "JOBSECRETS_FORK": fork,
        }
        result = jobsecrets(["-vv", "export", "--format", "json"], cwd=tmp_path, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 6, f"exit {result.returncode}: {shown(output)}"
    assert "(ValidationException)" in output, shown(output)
    assert ("canary" in output) is False, "a credential is in the output"


@pytest.mark.parametrize(
    "created", ["yesterday", 1e300, [1]], ids=["text", "past-any-year", "list"]
)
def test_a_secret_with_an_unreadable_date_is_read_without_it(
    tmp_path: Path, created: object
) -> None:
    """botocore parses every time of an answer: a Secrets Manager answer whose CreatedDate it
    cannot read was "failed unexpectedly (ValueError)", exit 6, for a value that was there. The
    date only feeds the audit log's ``updated`` (and a policy's max_age, which then says it
    cannot tell): the value is read, the date unknown."""
    import json

    def answer(seen: Seen) -> Answer:
        target = seen.headers.get("x-amz-target", "")
        entry = {
            "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app-AbCdEf",
            "Name": "prod/app",
            "VersionId": "v1",
            "SecretString": '{"k": "canary-value"}',
            "CreatedDate": created,
        }
        if target.endswith("BatchGetSecretValue"):
            body = {"SecretValues": [entry], "Errors": []}
        else:
            body = entry
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(body).encode()

    spec = "version: 1\nbackends:\n  aws: {type: aws, region: eu-west-1}\nsecrets:\n  A: aws:prod/app#k\n"
    (tmp_path / "jobsecrets.yml").write_text(spec)
    with AnsweringServer(answer) as endpoint:
        env = {
            "AWS_ENDPOINT_URL": endpoint.url,
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "canary-static-key",
        }
        result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode}: {shown(output)}"
    assert json.loads(result.stdout).get("A") == "canary-value", "the value was not read"
