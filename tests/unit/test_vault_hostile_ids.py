"""Lease ids and token accessors are a store's text, and they reach the job log.

Found by a hostile-store test: a dynamic read answering ``"lease_id": "database/creds/a/L1\\n
::stop-commands::tok\\n\\x1b[2J"`` (and a revocation answering 500) made ``run``/``export``/
``revoke`` print a ``::stop-commands::`` line (GitHub workflow-command injection) and terminal
escapes. A lease id must be text of bounded length without control characters, else the read
fails as a malformed answer; ids and accessors are shown cleaned wherever they are shown.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and never a value it
compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobsecrets.backends.base import Lease, TokenRecord
from jobsecrets.errors import StoreUnavailable
from jobsecrets.lifecycle.ledger import Ledger
from jobsecrets.testing import MemoryBackend, MemoryStore
from support.cli import jobsecrets
from support.vault_stub import Route, VaultStub

INJECTION = "\n::stop-commands::tok\n\x1b[2J\x1b]0;title\x07"
HOSTILE_LEASE = "database/creds/a/L1" + INJECTION
SPEC = "version: 1\nbackends:\n  vault: {type: vault}\nsecrets:\n  A: vault:database/creds/a#password\n"
APPROLE_SPEC = (
    "version: 1\nbackends:\n  vault: {type: vault, auth: {method: approle}}\n"
    "secrets:\n  A: vault:database/creds/a#password\n"
)
LOGIN: Route = (
    200,
    {"auth": {"client_token": "login-token-4c1e9a", "accessor": "acc-1", "lease_duration": 60}},
)
APPROLE_ENV = {"VAULT_ROLE_ID": "role-id", "VAULT_SECRET_ID": "secret-id-77aa"}


def _creds(lease_id: Any) -> Route:
    return (
        200,
        {
            "lease_id": lease_id,
            "lease_duration": 60,
            "renewable": True,
            "data": {"username": "u-1", "password": "dynamic-password-5b2f"},
        },
    )


def _injected(shown: str) -> bool:
    """Whether output carries a workflow command or a terminal escape from the store."""
    return any(line.startswith("::stop-commands::") for line in shown.splitlines()) or any(
        ch in shown for ch in ("\x1b", "\x07", "\x9b")
    )


def _run(tmp_path: Path, vault: VaultStub, args: list[str], spec: str, env: dict[str, str]) -> Any:
    (tmp_path / "jobsecrets.yml").write_text(spec)
    return jobsecrets(args, cwd=tmp_path, env={"VAULT_ADDR": vault.url, **env})


@pytest.mark.parametrize(
    "lease_id",
    [
        pytest.param(HOSTILE_LEASE, id="control-characters"),
        pytest.param("database/creds/a/" + "L" * 2000, id="too-long"),
        pytest.param(5, id="a-number"),
        pytest.param({"id": "x"}, id="a-mapping"),
    ],
)
@pytest.mark.parametrize(
    "args", [["export", "--format", "json"], ["run", "--", "true"]], ids=["export", "run"]
)
def test_a_lease_id_no_message_may_show_fails_the_read(
    tmp_path: Path, lease_id: Any, args: list[str]
) -> None:
    routes = {
        ("GET", "database/creds/a"): _creds(lease_id),
        ("PUT", "sys/leases/revoke"): (500, {"errors": ["down" + INJECTION]}),
    }
    with VaultStub(routes) as vault:
        result = _run(tmp_path, vault, args, SPEC, {"VAULT_TOKEN": "user-token-9d0e"})
        revoked = [body for method, path, body in vault.requests if path == "sys/leases/revoke"]
    shown = result.stdout + result.stderr
    assert not _injected(shown), "the store's lease id reached the output raw"
    assert "internal error" not in shown, shown[-800:]
    assert result.returncode == 6, shown[-800:]
    assert "malformed answer" in shown, shown[-800:]
    assert "dynamic-password-5b2f" not in result.stdout
    if isinstance(lease_id, str):
        # A token of the user's is never revoked: the lease is revoked at once, by its id in a
        # request body (never a URL, never a message).
        assert any(body == {"lease_id": lease_id} for body in revoked), "not revoked"
    assert not any(path.startswith("sys/leases/revoke/") for path in vault.paths("PUT"))


def test_our_login_token_is_revoked_after_a_read_with_a_malformed_lease_id(
    tmp_path: Path,
) -> None:
    """The lease never reaches the ledger: it ends with the token that obtained it."""
    routes = {
        ("POST", "auth/approle/login"): LOGIN,
        ("GET", "database/creds/a"): _creds(HOSTILE_LEASE),
        ("PUT", "sys/leases/revoke"): (500, {"errors": ["down"]}),
        ("POST", "auth/token/revoke-self"): (204, None),
    }
    with VaultStub(routes) as vault:
        result = _run(tmp_path, vault, ["run", "--", "true"], APPROLE_SPEC, APPROLE_ENV)
        posted = vault.paths("POST")
    shown = result.stdout + result.stderr
    assert not _injected(shown), "the store's lease id reached the output raw"
    assert result.returncode == 6, shown[-800:]
    assert "auth/token/revoke-self" in posted, shown[-800:]


def test_a_valid_lease_whose_revocation_fails_is_named_cleanly(tmp_path: Path) -> None:
    """The store's error text on a failed revocation is one line of the job log too."""
    routes = {
        ("GET", "database/creds/a"): _creds("database/creds/a/L1"),
        ("PUT", "sys/leases/revoke"): (500, {"errors": ["down" + INJECTION]}),
    }
    with VaultStub(routes) as vault:
        result = _run(
            tmp_path, vault, ["run", "--", "true"], SPEC, {"VAULT_TOKEN": "user-token-9d0e"}
        )
    shown = result.stdout + result.stderr
    assert not _injected(shown), "the store's text reached the output raw"
    assert "database/creds/a/L1" in result.stderr, shown[-800:]


class _StuckBackend(MemoryBackend):
    """A backend whose token carries a hostile accessor, and that can revoke nothing."""

    def token_record(self) -> TokenRecord | None:
        return TokenRecord(self.name, "login-token-1f2e", "acc" + INJECTION, 60, False)

    def revoke_lease(self, lease_id: str) -> None:
        raise StoreUnavailable(f"revoke lease {lease_id}: the store answered 500")

    def revoke_token(self, record: TokenRecord) -> None:
        raise StoreUnavailable(f"token {record.accessor}: the store answered 500")


def test_revocation_failures_show_ids_and_accessors_cleaned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ids from a state file (an older version, or damage) and accessors from a login: the
    report and the log show them without control characters."""
    ledger = Ledger()
    backend = _StuckBackend("vault", {}, _context(), MemoryStore())
    ledger.add_backend(backend)
    ledger.restore_lease(Lease("vault", HOSTILE_LEASE, 60, True, "database/creds/a"), None)
    ledger.restore_lease(Lease("vault", "database/creds/a/L2" + INJECTION, 60, True), "")
    with caplog.at_level("DEBUG", logger="jobsecrets"):
        report = ledger.revoke_all()
    assert not report.ok
    assert not _injected(report.summary()), "an id reached the summary raw"
    assert not any(_injected(failure) for failure in _shown_failures(report.summary()))
    assert not _injected(caplog.text), "an id reached the log raw"
    assert "database/creds/a/L1" in report.summary()


def _shown_failures(summary: str) -> list[str]:
    return summary.split("; ")


def _context() -> Any:
    from jobsecrets.backends.base import BackendContext

    return BackendContext(env={})


def _revoke_denied_by_body(lease_id: str) -> tuple[list[str], Exception | None]:
    """``revoke_lease(lease_id)`` against a store that denies ``sys/leases/revoke`` (the id in
    the body) and allows everything else: the URL paths it was sent (as sent: quoting and
    query included), and what it raised."""
    from jobsecrets.backends.base import BackendContext
    from jobsecrets.backends.vault.backend import VaultBackend
    from support.http_stubs import Answer, AnsweringServer, Seen

    def answer(seen: Seen) -> Answer:
        if seen.path == "/v1/sys/leases/revoke":
            return 403, {"Content-Type": "application/json"}, b'{"errors": ["permission denied"]}'
        return 204, {}, b""

    with AnsweringServer(answer) as store:
        backend = VaultBackend("vault", {"address": store.url}, BackendContext(env={}))
        backend._client = backend._new_client("user-token-for-the-stub")
        raised: Exception | None = None
        try:
            backend.revoke_lease(lease_id)
        except Exception as error:
            raised = error
        finally:
            backend.close()
    return [s.path for s in store.seen], raised


@pytest.mark.parametrize(
    ("lease_id", "sent"),
    [
        ("database/creds/ci/AbC123", "database/creds/ci/AbC123"),
        ("database/creds/ci/x?y=1#f", "database/creds/ci/x%3Fy%3D1%23f"),
        ("database/creds/ci/%2e%2e/%2e%2e/x", "database/creds/ci/%252e%252e/%252e%252e/x"),
        ("db+1/creds/ci@x/L 1", "db%2B1/creds/ci%40x/L%201"),
    ],
    ids=["plain", "query-fragment", "encoded-dots", "reserved"],
)
def test_the_revocation_url_carries_the_lease_id_quoted(lease_id: str, sent: str) -> None:
    """The fallback ``sys/leases/revoke/<id>`` put a state file's id into the URL as it was:
    ``?`` began a query, ``#`` a fragment, ``%2e%2e`` was read as ``..`` by the store."""
    paths, raised = _revoke_denied_by_body(lease_id)
    assert raised is None, f"raised {type(raised).__name__}"
    assert paths == ["/v1/sys/leases/revoke", f"/v1/sys/leases/revoke/{sent}"], paths


@pytest.mark.parametrize(
    "lease_id",
    [
        "database/creds/ci/../../../../../../sys/policy/x",
        "database/creds/ci/./x",
        "/database/creds/ci/x",
        "database//ci/x",
        "..",
    ],
)
def test_a_lease_id_that_would_change_the_path_goes_in_the_body_only(lease_id: str) -> None:
    """``../`` in a state file's id made the fallback PUT another path (requests removes dot
    segments: /v1/sys/leases/revoke/database/creds/ci/../../../../../../sys/policy/x went out as
    /v1/sys/policy/x)."""
    paths, raised = _revoke_denied_by_body(lease_id)
    assert paths == ["/v1/sys/leases/revoke"], paths
    assert type(raised).__name__ == "AccessDenied", f"raised {type(raised).__name__}"


@pytest.mark.parametrize("lease_id", ["database/creds/ci/x" + INJECTION, "d/" + "x" * 1100])
def test_a_lease_id_no_store_gives_is_not_sent(lease_id: str) -> None:
    """A state file's id with control characters (or absurdly long) is refused, unsent."""
    paths, raised = _revoke_denied_by_body(lease_id)
    assert paths == [], paths
    assert type(raised).__name__ == "BackendError", f"raised {type(raised).__name__}"
    assert not _injected(str(raised)), "the id was shown raw"
