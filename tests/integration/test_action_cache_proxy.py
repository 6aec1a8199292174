"""The action's cache client behind an HTTP proxy (actions/inject/cache.js: proxyFor, tunnel).

A self-hosted runner that reaches the internet only through a proxy gives its jobs ``https_proxy``
and ``no_proxy`` (actions/runner, docs/adrs/0263-proxy-support.md), and @actions/cache's client
honours them (@actions/http-client, proxy.ts). So does ours: the rules are checked against that
contract, and a lookup is made for real through a CONNECT proxy (tests/support/http_stubs.py) to
a TLS server whose certificate names the cache's host, the way a lookup reaches GitHub's cache.

PYTEST_DONT_REWRITE: plain asserts, so a failing one shows its message and no token it compared.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from support.http_stubs import MISS, ConnectProxy, ScriptedServer, self_signed

pytestmark = pytest.mark.integration

CACHE_JS = Path(__file__).resolve().parents[2] / "actions" / "inject" / "cache.js"
TOKEN = "runtime-token-for-the-cache"

RULES_DRIVER = """
const { proxyFor } = require(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
process.stdout.write(JSON.stringify(cases.map(([url, env]) => {
  const proxy = proxyFor(new URL(url), env);
  return proxy ? proxy.href : null;
})));
"""

# One lookup (a v1 cache) in a node process with exactly this environment.
LOOKUP_DRIVER = """
const cache = require(process.argv[1]);
const [base, token, root] = JSON.parse(process.argv[2]);
cache.restore({ version: 'v1', base, token }, root, 'install', 'key').then(
  (result) => process.stdout.write(JSON.stringify({ result })),
  (err) => process.stdout.write(JSON.stringify({ error: err.message }))
);
"""

P = "http://proxy.internal:3128/"


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        # The scheme's own variable, lower case first; never http's for https or the reverse.
        ("https://results.example.com/", {"https_proxy": P}, P),
        ("https://results.example.com/", {"HTTPS_PROXY": P}, P),
        ("https://results.example.com/", {"https_proxy": P, "HTTPS_PROXY": "http://other:1/"}, P),
        ("https://results.example.com/", {"http_proxy": P}, None),
        ("http://cache.example.com/", {"http_proxy": P}, P),
        ("http://cache.example.com/", {"https_proxy": P}, None),
        # A proxy without a scheme is http://; its user and password are kept (Basic auth).
        ("https://results.example.com/", {"https_proxy": "proxy.internal:3128"}, P),
        (
            "https://results.example.com/",
            {"https_proxy": "http://ci:s3cret@proxy.internal:3128"},
            "http://ci:s3cret@proxy.internal:3128/",
        ),
        # Loopback is never proxied.
        ("http://127.0.0.1:8080/", {"http_proxy": P}, None),
        ("http://localhost:8080/", {"http_proxy": P}, None),
        ("http://[::1]:8080/", {"http_proxy": P}, None),
        # no_proxy: *, the host, host:port, a domain (with or without a dot), any case.
        ("https://results.example.com/", {"https_proxy": P, "no_proxy": "*"}, None),
        (
            "https://results.example.com/",
            {"https_proxy": P, "no_proxy": "a.org, results.example.com"},
            None,
        ),
        (
            "https://results.example.com/",
            {"https_proxy": P, "NO_PROXY": "RESULTS.EXAMPLE.COM"},
            None,
        ),
        (
            "https://results.example.com/",
            {"https_proxy": P, "no_proxy": "results.example.com:443"},
            None,
        ),
        (
            "https://results.example.com/",
            {"https_proxy": P, "no_proxy": "results.example.com:8443"},
            P,
        ),
        ("https://results.example.com/", {"https_proxy": P, "no_proxy": "example.com"}, None),
        ("https://results.example.com/", {"https_proxy": P, "no_proxy": ".example.com"}, None),
        ("https://results.example.com/", {"https_proxy": P, "no_proxy": "ample.com"}, P),
        ("https://results.example.com/", {"https_proxy": P, "no_proxy": "results.example.co"}, P),
    ],
)
def test_which_requests_go_through_the_proxy(
    url: str, env: dict[str, str], expected: str | None
) -> None:
    """proxyFor follows @actions/http-client's getProxyUrl and checkBypass."""
    out = subprocess.run(
        ["node", "-e", RULES_DRIVER, str(CACHE_JS), json.dumps([[url, env]])],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == [expected]


def lookup(base: str, env: dict[str, str], root: Path) -> dict[str, object]:
    result = subprocess.run(
        ["node", "-e", LOOKUP_DRIVER, str(CACHE_JS), json.dumps([base, TOKEN, str(root)])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"], **env},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome: dict[str, object] = json.loads(result.stdout)
    return outcome


def tls_lookup_via_proxy(
    tmp_path: Path, cert_name: str, userinfo: str = ""
) -> tuple[dict[str, object], ScriptedServer, ConnectProxy]:
    """A lookup of https://cache.example.test:PORT through a CONNECT proxy (``userinfo`` in its
    URL) to a TLS server whose certificate names ``cert_name``; the outcome and both peers."""
    cert, context = self_signed(tmp_path, cert_name)
    origin = ScriptedServer([MISS], tls=context)
    proxy = ConnectProxy()
    try:
        outcome = lookup(
            f"https://cache.example.test:{origin.port}/",
            {"https_proxy": proxy.url(userinfo), "NODE_EXTRA_CA_CERTS": str(cert)},
            tmp_path / "root",
        )
    finally:
        origin.close()
        proxy.close()
    return outcome, origin, proxy


def test_the_lookup_goes_through_the_proxy_in_tls_to_the_caches_name(tmp_path: Path) -> None:
    """https_proxy with a user: one CONNECT to the cache's host and port with the proxy's Basic
    credentials; inside it TLS, the certificate checked against the cache's name, and the
    lookup with its bearer token, which the proxy never sees in clear."""
    outcome, origin, proxy = tls_lookup_via_proxy(tmp_path, "cache.example.test", "ci:p%40ss@")
    assert outcome == {"result": None}, outcome  # a miss, answered by the origin
    assert len(proxy.connects) == 1
    connect = proxy.connects[0]
    assert connect["method"] == "CONNECT"
    assert connect["authority"] == f"cache.example.test:{origin.port}"
    assert connect["proxy-authorization"] == "Basic " + base64.b64encode(b"ci:p@ss").decode()
    assert origin.requests[0]["request-line"].startswith("GET /_apis/artifactcache/cache?keys=key")
    assert origin.requests[0]["authorization"] == f"Bearer {TOKEN}"
    assert "proxy-authorization" not in origin.requests[0]
    assert (TOKEN.encode() in proxy.relayed) is False, "the proxy saw the token in clear"


def test_a_certificate_for_another_name_is_refused_through_the_proxy(tmp_path: Path) -> None:
    """TLS through the tunnel checks the certificate as a direct connection does."""
    outcome, origin, _ = tls_lookup_via_proxy(tmp_path, "other.example.test")
    error = str(outcome.get("error"))
    assert "cache.example.test" in error and "altnames" in error.lower(), outcome
    assert origin.requests == []  # nothing was sent over the connection it refused


def test_a_proxy_that_refuses_the_tunnel_is_an_error_not_a_direct_connection(
    tmp_path: Path,
) -> None:
    origin = ScriptedServer([MISS])
    proxy = ConnectProxy(refuse=407)
    try:
        outcome = lookup(
            f"http://cache.example.test:{origin.port}/",
            {"http_proxy": proxy.url()},
            tmp_path / "root",
        )
    finally:
        origin.close()
        proxy.close()
    assert "refused the tunnel: HTTP 407" in str(outcome.get("error")), outcome
    assert origin.accepted == []


def test_no_proxy_reaches_the_cache_directly(tmp_path: Path) -> None:
    """The cache on loopback (act's) is reached directly even with http_proxy set, and so is a
    host no_proxy names."""
    origin = ScriptedServer([MISS, MISS])
    proxy = ConnectProxy()
    try:
        first = lookup(origin.url, {"http_proxy": proxy.url()}, tmp_path / "a")
        second = lookup(
            f"http://localhost:{origin.port}/",
            {"http_proxy": proxy.url(), "no_proxy": "localhost"},
            tmp_path / "b",
        )
    finally:
        origin.close()
        proxy.close()
    assert first == {"result": None} and second == {"result": None}, (first, second)
    assert proxy.connects == [] and len(origin.requests) == 2


def test_a_proxy_that_never_answers_does_not_hold_the_step(tmp_path: Path) -> None:
    """The lookup's 10 s bound (cache.js API_TIMEOUT_MS) covers the tunnel too: the restore fails
    (the step then installs), it does not wait on a silent proxy."""
    proxy = ConnectProxy(silent=True)
    started = time.monotonic()
    try:
        outcome = lookup(
            "https://cache.example.test:1/", {"https_proxy": proxy.url()}, tmp_path / "root"
        )
    finally:
        proxy.close()
    elapsed = time.monotonic() - started
    assert "timed out" in str(outcome.get("error")), outcome
    assert len(proxy.connects) == 1 and 9 < elapsed < 20, elapsed
