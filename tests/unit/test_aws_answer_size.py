"""An AWS endpoint that answers without end: the answer is refused at a size, memory stays bounded.

botocore reads a whole answer before it parses it; at ``AWS_ENDPOINT_URL`` (or behind a proxy) a
hostile endpoint sending a body that never ends grew the process until the machine's memory ran
out. The stand-in answers Secrets Manager (JSON protocol, ``X-Amz-Target``) or STS (query protocol,
``Action=AssumeRoleWithWebIdentity``) with a body chunked without a last chunk, or with a
Content-Length it never reaches; the other service answers as AWS would. The CLI runs as a
subprocess under an address-space limit (the old read ended there, in a MemoryError) and its
peak resident memory, its forked child's included, is the kernel's count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support.cli import jobsecrets_peak
from support.http_stubs import serving
from support.oidc import default_claims, sign

MiB = 1 << 20
#: Well above a run that reads its answers (~100 MiB with the 64 MiB the bound lets in), well
#: below one that reads on (the 2 GiB the address space is limited to).
PEAK = 300 * MiB

ROLE = "arn:aws:iam::123456789012:role/ci"
STS_ANSWER = (
    b'<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    b"<AssumeRoleWithWebIdentityResult><Credentials>"
    b"<AccessKeyId>ASIASTANDIN</AccessKeyId><SecretAccessKey>stand-in-key</SecretAccessKey>"
    b"<SessionToken>stand-in-token</SessionToken><Expiration>2100-01-01T00:00:00Z</Expiration>"
    b"</Credentials></AssumeRoleWithWebIdentityResult>"
    b"<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
    b"</AssumeRoleWithWebIdentityResponse>"
)
NOT_FOUND = b'{"__type": "ResourceNotFoundException", "message": "no such secret"}'


class _Endless(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "chunked"
    endless = "secretsmanager"
    targets: list[str]  # the X-Amz-Target of each Secrets Manager request, in order

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        sts = b"Action=AssumeRoleWithWebIdentity" in body
        if not sts:
            self.targets.append(self.headers.get("X-Amz-Target", ""))
        if sts != (self.endless == "sts"):
            kind = "text/xml" if sts else "application/x-amz-json-1.1"
            answer = STS_ANSWER if sts else NOT_FOUND
            self.send_response(200 if sts else 400)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/xml" if sts else "application/x-amz-json-1.1")
        chunked = self.mode == "chunked"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(10**10))
        self.end_headers()
        piece = b"x" * MiB
        try:
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        except OSError:
            return


@pytest.fixture
def endless(request: pytest.FixtureRequest) -> Iterator[str]:
    """A stand-in endpoint; ``request.param``: (mode, the service answering without end)."""
    mode, service = request.param
    handler = type("Handler", (_Endless,), {"mode": mode, "endless": service, "targets": []})
    with serving(handler) as url:
        request.node.targets = handler.targets
        yield url


def run(tmp_path: Path, spec: str, env: dict[str, str]) -> tuple[int, str, int]:
    """``export`` of ``spec`` under a 2 GiB address-space limit: exit code, stderr, peak RSS."""
    (tmp_path / "jobsecrets.yml").write_text(spec)
    result, peak = jobsecrets_peak(
        ["-vv", "export", "--format", "json"],
        cwd=tmp_path,
        env={"AWS_ACCESS_KEY_ID": "AKIASTANDIN", "AWS_SECRET_ACCESS_KEY": "stand-in", **env},
        timeout=120,
        memory_limit=2 << 30,
    )
    assert result.stdout == "", "a value was exported"
    return result.returncode, result.stderr, peak


def refused(code: int, stderr: str, peak: int) -> None:
    assert code == 6, stderr[-800:]
    assert "sent an answer of more than 64 MiB: not read" in stderr, stderr[-800:]
    assert "unexpectedly" not in stderr and "internal error" not in stderr, stderr[-800:]
    assert "Traceback" not in stderr, stderr[-800:]
    assert peak < PEAK, f"peak resident memory {peak // MiB} MiB"


ENDLESS_SECRETS = [("chunked", "secretsmanager"), ("content-length", "secretsmanager")]


@pytest.mark.parametrize("endless", ENDLESS_SECRETS, indirect=True, ids=lambda p: p[0])
def test_a_secret_read_without_end_is_refused_at_its_limit(tmp_path: Path, endless: str) -> None:
    spec = (
        "version: 1\nsettings: {deadline: 60s, timeout: 20s}\n"
        "backends: {aws: {type: aws, region: eu-west-1}}\n"
        "secrets: {A: 'aws:prod/app#k'}\n"
    )
    refused(*run(tmp_path, spec, {"AWS_ENDPOINT_URL": endless}))


@pytest.mark.parametrize("endless", ENDLESS_SECRETS[:1], indirect=True, ids=lambda p: p[0])
def test_a_batch_read_without_end_is_refused_at_its_limit(
    tmp_path: Path, endless: str, request: pytest.FixtureRequest
) -> None:
    spec = (
        "version: 1\nsettings: {deadline: 60s, timeout: 20s}\n"
        "backends: {aws: {type: aws, region: eu-west-1}}\n"
        "secrets: {A: 'aws:prod/a#k', B: 'aws:prod/b#k', C: 'aws:prod/c#k'}\n"
    )
    code, stderr, peak = run(tmp_path, spec, {"AWS_ENDPOINT_URL": endless})
    refused(code, stderr, peak)
    # A refused batch answer is that batch's failure: no read of each id after it.
    targets = request.node.targets
    assert targets == ["secretsmanager.BatchGetSecretValue"], targets


@pytest.mark.parametrize("endless", [("chunked", "sts")], indirect=True, ids=lambda p: p[0])
def test_a_sign_in_answer_without_end_is_refused_at_its_limit(
    tmp_path: Path, endless: str, oidc_key: rsa.RSAPrivateKey
) -> None:
    spec = (
        "version: 1\nsettings: {deadline: 60s, timeout: 20s}\n"
        "identity: {provider: env, variable: MYJWT}\n"
        f"backends: {{aws: {{type: aws, region: eu-west-1, role_arn: '{ROLE}'}}}}\n"
        "secrets: {A: 'aws:prod/app#k'}\n"
    )
    jwt = sign(default_claims(audience="sts.amazonaws.com"), oidc_key)
    code, stderr, peak = run(tmp_path, spec, {"AWS_ENDPOINT_URL": endless, "MYJWT": jwt})
    refused(code, stderr, peak)
    assert "AssumeRoleWithWebIdentity" in stderr, stderr[-800:]


@pytest.mark.parametrize("endless", ENDLESS_SECRETS[:1], indirect=True, ids=lambda p: p[0])
def test_the_refusal_crosses_from_a_forked_backend(tmp_path: Path, endless: str) -> None:
    # Two AWS backends, neither's library loaded in the parent: each runs in a child of its own.
    spec = (
        "version: 1\nsettings: {deadline: 60s, timeout: 20s}\n"
        "backends:\n"
        "  one: {type: aws, region: eu-west-1}\n"
        "  two: {type: aws, region: eu-west-1}\n"
        "secrets: {A: 'one:prod/a#k', B: 'two:prod/b#k'}\n"
    )
    code, stderr, peak = run(tmp_path, spec, {"AWS_ENDPOINT_URL": endless})
    forked = re.findall(r"backend '(one|two)': signs in and reads in process", stderr)
    assert sorted(forked) == ["one", "two"], stderr[-800:]
    refused(code, stderr, peak)


def test_botocore_still_sends_through_the_session_that_bounds_its_answers() -> None:
    """The private details backends/aws/bounded.py relies on are still botocore's."""
    import botocore.session
    from botocore.awsrequest import AWSPreparedRequest
    from botocore.endpoint import Endpoint

    from jobsecrets.backends.aws.bounded import BoundedSession, bound_answers

    client = botocore.session.get_session().create_client("sts", region_name="eu-west-1")
    try:
        bound_answers(client)
        session = getattr(getattr(client, "_endpoint", None), "http_session", None)
        assert isinstance(session, BoundedSession), "botocore changed: see aws/bounded.py"
        assert isinstance(client._endpoint, Endpoint), "botocore changed: see aws/bounded.py"
        assert "stream_output" in vars(AWSPreparedRequest("GET", "http://h/", {}, None, True))
    finally:
        client.close()
