"""Which Actions cache service the action talks to, and how it names an entry
(actions/inject/cache.js), against @actions/cache's rules (packages/cache/src/internal/config.ts,
cacheUtils.ts). Run under node against the real cache.js; the transfers themselves are tested in
tests/integration/test_github_action_cache.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

CACHE_JS = Path(__file__).resolve().parents[2] / "actions" / "inject" / "cache.js"
LIB_JS = CACHE_JS.with_name("lib.js")

DRIVER = """
const cache = require(process.argv[1]);
const [fn, ...args] = JSON.parse(process.argv[2]);
process.stdout.write(JSON.stringify(cache[fn](...args) ?? null));
"""


def call(module: Path, fn: str, *args: object) -> object:
    result = subprocess.run(
        ["node", "-e", DRIVER, str(module), json.dumps([fn, *args])],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


V2 = {"ACTIONS_CACHE_SERVICE_V2": "true"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "v1"),
        (V2, "v2"),
        ({**V2, "GITHUB_SERVER_URL": "https://github.com"}, "v2"),
        ({**V2, "GITHUB_SERVER_URL": "https://acme.ghe.com"}, "v2"),  # GitHub Enterprise Cloud
        ({**V2, "GITHUB_SERVER_URL": "https://github.acme.internal"}, "v1"),  # GHES: no v2
        ({"GITHUB_SERVER_URL": "https://github.com"}, "v1"),
    ],
)
def test_service_version_follows_actions_cache(env: dict[str, str], expected: str) -> None:
    assert call(CACHE_JS, "serviceVersion", env) == expected


def test_service_needs_its_url_and_v2_its_token() -> None:
    v1 = call(CACHE_JS, "service", {"ACTIONS_CACHE_URL": "http://127.0.0.1:1/abc"})
    # act gives a JavaScript action no runtime token; v1 goes without, as @actions/cache does.
    assert v1 == {"version": "v1", "base": "http://127.0.0.1:1/abc/", "token": ""}
    results = {"ACTIONS_RESULTS_URL": "https://results.example/"}
    assert call(CACHE_JS, "service", {**V2, **results}) is None
    token = {"ACTIONS_RUNTIME_TOKEN": "t"}
    assert call(CACHE_JS, "service", {**V2, **results, **token}) == {
        "version": "v2",
        "base": "https://results.example/",
        "token": "t",
    }
    # ACTIONS_RESULTS_URL alone is not a v1 cache (act sets it for its artifact server).
    assert call(CACHE_JS, "service", {**results, **token}) is None
    assert call(CACHE_JS, "service", {}) is None


def test_entry_version_is_getcacheversion_of_the_install_and_compression() -> None:
    name = "0.1.0-abc-core+vault"
    for method in ("zstd-without-long", "gzip"):
        expected = hashlib.sha256(f"{name}|{method}|1.0".encode()).hexdigest()
        assert call(CACHE_JS, "entryVersion", [name], method) == expected
