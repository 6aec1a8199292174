"""Answers of a shape the Vault API never has, from a stand-in store (tests/support/vault_stub.py).

Each was found by a hostile-store test: ``plan --check`` crashed with "internal error" (exit 1),
or read a string as a list ("nonroot-read" contains "root"; "xxappxx" contains "app") and said
``ok``. A malformed answer is the store's failure: exit 6, named, never an internal error and
never an "ok".

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and never a value it
compared.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from support.cli import jobsecrets
from support.vault_stub import KV1_MOUNT, KV2_MOUNT, Route, VaultStub

SPEC = "version: 1\nbackends:\n  vault: {type: vault}\nsecrets:\n  A: vault:secret/app#a\n"
POLICY_SPEC = (
    "version: 1\npolicy: {max_age: 90d}\nbackends:\n  vault: {type: vault}\n"
    "secrets:\n  A: vault:secret/app#a\n"
)
YESTERDAY = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
CAPS = ("POST", "sys/capabilities-self")
MOUNTS = ("GET", "sys/internal/ui/mounts/*")
META = ("GET", "secret/metadata/app")
LIST = ("LIST", "secret")
GOOD_META: Route = (
    200,
    {"data": {"current_version": 1, "versions": {"1": {"created_time": YESTERDAY}}}},
)


def _kv2(caps: Any, meta: Route = GOOD_META) -> dict[tuple[str, str], Route]:
    return {MOUNTS: KV2_MOUNT, CAPS: (200, {"data": {"secret/data/app": caps}}), META: meta}


def _kv1(listing: Any) -> dict[tuple[str, str], Route]:
    return {
        MOUNTS: KV1_MOUNT,
        CAPS: (200, {"data": {"secret/app": ["read"]}}),
        LIST: (200, listing),
    }


def _plan_check(tmp_path: Path, vault: VaultStub, spec: str = SPEC) -> tuple[int, str]:
    (tmp_path / "jobsecrets.yml").write_text(spec)
    env = {"VAULT_ADDR": vault.url, "VAULT_TOKEN": "user-token-for-the-stub"}
    result = jobsecrets(["plan", "--check"], cwd=tmp_path, env=env)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    "routes",
    [
        pytest.param(_kv2(5), id="capabilities-a-number"),
        pytest.param(_kv2("nonroot-read"), id="capabilities-a-string"),
        pytest.param(_kv2(["read", 7]), id="capabilities-not-all-names"),
        pytest.param({MOUNTS: KV2_MOUNT, CAPS: (200, {"data": [1]})}, id="capabilities-a-list"),
        pytest.param(
            _kv2(["read"], (200, {"data": {"current_version": 1, "versions": [1]}})),
            id="metadata-versions-a-list",
        ),
        pytest.param(
            _kv2(["read"], (200, {"data": {"current_version": 1, "versions": {"1": 5}}})),
            id="metadata-version-a-number",
        ),
        pytest.param(
            _kv2(["read"], (200, {"data": {"current_version": {}, "versions": {}}})),
            id="metadata-current-version-a-mapping",
        ),
        pytest.param(_kv2(["read"], (200, {"data": "x"})), id="metadata-data-a-string"),
        pytest.param(_kv1([1]), id="list-a-list"),
        pytest.param(_kv1({"data": [1]}), id="list-data-a-list"),
        pytest.param(_kv1({"data": {"keys": 5}}), id="list-keys-a-number"),
        pytest.param(_kv1({"data": {"keys": "xxappxx"}}), id="list-keys-a-string"),
        pytest.param(_kv1({"data": {"keys": [["app"]]}}), id="list-keys-not-names"),
        pytest.param({MOUNTS: (200, {"data": [1]})}, id="mount-lookup-data-a-list"),
        pytest.param(
            {MOUNTS: (200, {"data": {"path": "secret/", "type": "kv", "options": [2]}})},
            id="mount-lookup-options-a-list",
        ),
    ],
)
def test_plan_check_calls_a_malformed_answer_the_stores_failure(
    tmp_path: Path, routes: dict[tuple[str, str], Route]
) -> None:
    with VaultStub(routes) as vault:
        code, shown = _plan_check(tmp_path, vault)
    assert "internal error" not in shown, shown[-800:]
    assert code == 6, shown[-800:]
    assert "malformed answer" in shown, shown[-800:]
    assert " ok " not in shown and "\nok" not in shown, shown[-800:]
    # The summary does not call a store that answered "unreachable".
    assert "could not reach" not in shown, shown[-800:]
    if "plan --check:" in shown:  # the summary, where the checks ran (not a preflight stop)
        assert "no usable answer from the store" in shown, shown[-800:]


@pytest.mark.parametrize(
    "meta",
    [
        pytest.param((200, {"data": {"current_version": 1, "versions": [1]}}), id="versions-list"),
        pytest.param((200, {"data": {"current_version": 1, "versions": {"1": []}}}), id="entry"),
        pytest.param((200, {"data": {"current_version": [], "versions": {}}}), id="current"),
    ],
)
def test_a_malformed_metadata_answer_is_named_by_the_policy_check(
    tmp_path: Path, meta: Route
) -> None:
    """metadata() (max_age) had the same pattern: an AttributeError, "internal error"."""
    routes = {**_kv2(["read"]), META: meta}
    with VaultStub(routes) as vault:
        code, shown = _plan_check(tmp_path, vault, POLICY_SPEC)
    assert "internal error" not in shown, shown[-800:]
    assert code == 6, shown[-800:]
    assert "malformed answer" in shown, shown[-800:]


def test_the_api_shapes_still_check_ok(tmp_path: Path) -> None:
    """The same stand-in with answers of the API's shape: both KV versions are ``ok``."""
    with VaultStub(_kv2(["read", "list"])) as vault:
        code, shown = _plan_check(tmp_path, vault, POLICY_SPEC)
    assert code == 0, shown[-800:]
    with VaultStub(_kv1({"data": {"keys": ["other", "app", "dir/"]}})) as vault:
        code, shown = _plan_check(tmp_path, vault)
    assert code == 0, shown[-800:]


def test_capability_names_with_control_characters_are_shown_clean(tmp_path: Path) -> None:
    """The capability names are the store's text, written to the job log."""
    with VaultStub(_kv2(["read", "x\n::stop-commands::t\x1b[2J"])) as vault:
        code, shown = _plan_check(tmp_path, vault)
    assert code == 0, shown[-800:]
    assert "\x1b" not in shown
    assert "\n::stop-commands::" not in shown


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"data": {"data": "a-string", "metadata": {}}}, id="data-a-string"),
        pytest.param({"data": {"data": {"a": "x"}, "metadata": [1]}}, id="metadata-a-list"),
    ],
)
def test_a_malformed_kv2_read_is_the_stores_failure(tmp_path: Path, body: Any) -> None:
    """The read itself had the pattern too: dict("a-string") and [1].get(...) crashed."""
    (tmp_path / "jobsecrets.yml").write_text(SPEC)
    routes = {MOUNTS: KV2_MOUNT, ("GET", "secret/data/app"): (200, body)}
    with VaultStub(routes) as vault:
        env = {"VAULT_ADDR": vault.url, "VAULT_TOKEN": "user-token-for-the-stub"}
        result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
    assert "internal error" not in result.stderr, result.stderr[-800:]
    assert result.returncode == 6, result.stderr[-800:]
    assert "malformed answer" in result.stderr, result.stderr[-800:]
    assert result.stdout == ""


#: Any other path read answers a value: the old code exported it.
ANY_READ = ("GET", "*")
ELSEWHERE: Route = (200, {"data": {"data": {"a": "read-elsewhere"}, "metadata": {}}})


def _export(
    tmp_path: Path, routes: dict[tuple[str, str], Route], ref: str, namespace: str = ""
) -> tuple[int, str, str, list[str]]:
    """``export`` of ``A: ref``: exit code, stdout, stderr and the paths read with GET."""
    (tmp_path / "jobsecrets.yml").write_text(
        f"version: 1\nbackends:\n  vault: {{type: vault}}\nsecrets:\n  A: {ref}\n"
    )
    with VaultStub(routes) as vault:
        env = {"VAULT_ADDR": vault.url, "VAULT_TOKEN": "user-token-for-the-stub"}
        if namespace:
            env["VAULT_NAMESPACE"] = namespace
        result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
        reads = [p for p in vault.paths("GET") if not p.startswith(("sys/", "auth/"))]
    return result.returncode, result.stdout, result.stderr, reads


def _mount(path: str) -> Route:
    return 200, {"data": {"path": path, "type": "kv", "options": {"version": "2"}}}


@pytest.mark.parametrize(
    "mount",
    ["other/", "sys/", "sec/", "secret/app/deeper/", "/secret/", "/", "secret/ap/"],
)
def test_a_mount_the_path_is_not_under_is_refused(tmp_path: Path, mount: str) -> None:
    """The mount lookup's answer was taken as given: a store naming ``other/`` for secret/app
    was read at other/data/t/app (the path cut at the mount's length), ``sec/`` at
    sec/data/ret/app: another path than the spec names."""
    routes = {MOUNTS: _mount(mount), ANY_READ: ELSEWHERE}
    code, out, err, reads = _export(tmp_path, routes, "vault:secret/app#a")
    assert reads == [], f"read {reads}"
    assert code == 6, err[-800:]
    assert "malformed answer" in err and "which the path is not under" in err, err[-800:]
    assert "internal error" not in err, err[-800:]
    assert out == ""


@pytest.mark.parametrize(
    ("mount", "namespace", "ref", "read"),
    [
        ("secret/", "", "vault:secret/app#a", "secret/data/app"),
        ("secret", "", "vault:secret/app#a", "secret/data/app"),  # no trailing "/"
        ("team/kv/", "", "vault:team/kv/app/db#a", "team/kv/data/app/db"),
        # A mount in a namespace below the request's: named with that namespace's full path.
        ("ns1/ns2/secret/", "ns1", "vault:ns2/secret/app#a", "ns2/secret/data/app"),
        ("ns1/ns2/secret/", "/ns1/", "vault:ns2/secret/app#a", "ns2/secret/data/app"),
    ],
)
def test_a_mount_the_path_is_under_is_read(
    tmp_path: Path, mount: str, namespace: str, ref: str, read: str
) -> None:
    routes = {MOUNTS: _mount(mount), ("GET", read): ELSEWHERE}
    code, out, err, reads = _export(tmp_path, routes, ref, namespace)
    assert code == 0, err[-800:]
    assert reads == [read], f"read {reads}"
    assert '"A"' in out, "A was not exported"
