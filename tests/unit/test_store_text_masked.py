"""A store's error text is shown, and masked: it may quote our token or another variable's value.

Found by a hostile-store test: a read answering 400 ``{"errors": ["token hvs.LOGINTOKEN123 cannot
read; value VALUE-OF-A"]}`` printed ``rejected by 'vault': token hvs.LOGINTOKEN123 cannot read;
value VALUE-OF-A``: the login token and another variable's value in the job log (invariant 1).
Whatever the process must never print (the tokens in use, every value obtained so far) is
remembered (jobsecrets.unshown) and masked in every message, log record and plan report.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and never a value it
compared.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from support.cli import jobsecrets
from support.vault_stub import KV2_MOUNT, Route, VaultStub

USER_TOKEN = "hvs.USERTOKEN-5e1d0c"
LOGIN_TOKEN = "hvs.LOGINTOKEN123-a9f0"
SECRET_ID = "approle-secret-id-33b1"
VALUE_A = "VALUE-OF-A-7c3e19"
MOUNTS = ("GET", "sys/internal/ui/mounts/*")
SPEC = "version: 1\nbackends:\n  vault: {type: vault%s}\nsecrets:\n  A: vault:secret/a#v\n  B: %s\n"
LOGIN: Route = (200, {"auth": {"client_token": LOGIN_TOKEN, "accessor": "acc-1"}})


def _echo(token: str) -> Route:
    """A 400 whose text quotes the token in use, A's value and both in other forms."""
    quoted = f"{token} {VALUE_A} b64:{base64.b64encode(VALUE_A.encode()).decode()}"
    return (400, {"errors": [f"token {token} cannot read; value {VALUE_A}", quoted]})


def _spec(approle: bool, optional: bool) -> str:
    auth = ", auth: {method: approle}" if approle else ""
    b = "{ref: 'vault:secret/b#v', optional: true}" if optional else "vault:secret/b#v"
    return SPEC % (auth, b)


def _routes(token: str) -> dict[tuple[str, str], Route]:
    return {
        MOUNTS: KV2_MOUNT,
        ("POST", "auth/approle/login"): LOGIN,
        ("GET", "secret/data/a"): (200, {"data": {"data": {"v": VALUE_A}, "metadata": {}}}),
        ("GET", "secret/data/b"): _echo(token),
        ("POST", "sys/capabilities-self"): _echo(token),
    }


def _env(vault: VaultStub, approle: bool) -> dict[str, str]:
    env = {"VAULT_ADDR": vault.url}
    if approle:
        env.update({"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": SECRET_ID})
    else:
        env["VAULT_TOKEN"] = USER_TOKEN
    return env


def _leaked(shown: str) -> bool:
    encoded = base64.b64encode(VALUE_A.encode()).decode()
    return any(v in shown for v in (USER_TOKEN, LOGIN_TOKEN, SECRET_ID, VALUE_A, encoded))


@pytest.mark.parametrize("approle", [False, True], ids=["user-token", "login-token"])
@pytest.mark.parametrize(
    "args", [["export", "--format", "json"], ["run", "--", "true"]], ids=["export", "run"]
)
def test_a_store_error_quoting_a_token_or_a_value_is_masked(
    tmp_path: Path, approle: bool, args: list[str]
) -> None:
    token = LOGIN_TOKEN if approle else USER_TOKEN
    (tmp_path / "jobsecrets.yml").write_text(_spec(approle, optional=False))
    with VaultStub(_routes(token)) as vault:
        result = jobsecrets(args, cwd=tmp_path, env=_env(vault, approle))
    shown = result.stdout + result.stderr
    assert not _leaked(shown), "a token or a value reached the output"
    assert result.returncode == 6, shown[-800:]
    assert "rejected by 'vault': token *** cannot read; value ***" in result.stderr, shown[-800:]


def test_a_store_error_in_a_log_record_is_masked(tmp_path: Path) -> None:
    """A lease the store will not revoke is ended with our token: an info record quoting the
    store's answer, which quotes the token."""
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  vault: {type: vault, auth: {method: approle}}\n"
        "secrets:\n  D: vault:database/creds/ci#password\n"
    )
    routes = {
        ("POST", "auth/approle/login"): LOGIN,
        ("GET", "database/creds/ci"): (
            200,
            {
                "lease_id": "database/creds/ci/L1",
                "lease_duration": 60,
                "data": {"password": "pw-1"},
            },
        ),
        ("PUT", "sys/leases/revoke"): (500, {"errors": [f"token {LOGIN_TOKEN} is busy"]}),
        ("POST", "auth/token/revoke-self"): (204, None),
    }
    with VaultStub(routes) as vault:
        result = jobsecrets(["-v", "run", "--", "true"], cwd=tmp_path, env=_env(vault, True))
    shown = result.stdout + result.stderr
    assert not _leaked(shown), "the token reached the log"
    assert result.returncode == 0, shown[-800:]
    assert "token *** is busy" in result.stderr, shown[-800:]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_plan_check_masks_the_token_a_store_quotes(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "jobsecrets.yml").write_text(_spec(approle=False, optional=False))
    with VaultStub(_routes(USER_TOKEN)) as vault:
        result = jobsecrets(
            ["plan", "--check", "--format", fmt], cwd=tmp_path, env=_env(vault, False)
        )
    shown = result.stdout + result.stderr
    # plan reads no value: A's is not known, and only the token can be masked.
    assert USER_TOKEN not in shown, "the token reached the plan"
    assert "token *** cannot read" in result.stdout, shown[-800:]


def test_nothing_remembered_costs_nothing_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobsecrets import redact, unshown

    calls: list[Any] = []
    monkeypatch.setattr(unshown, "_values", {})
    monkeypatch.setattr(redact, "mask_remembered", lambda *args: calls.append(args) or "masked")
    unshown.remember(None)
    unshown.remember("")
    unshown.remember(42)
    assert unshown.scrub("plain text") == "plain text"
    assert not calls  # the masking library is not even asked
    unshown.remember(b"remembered-bytes-\xff")
    assert unshown.scrub("plain text") == "masked" and len(calls) == 1


def test_the_mask_is_rebuilt_when_a_value_is_added() -> None:
    from jobsecrets.redact import mask_remembered

    first = mask_remembered("a secret-one b", ["secret-one"], 1)
    second = mask_remembered("secret-one secret-two", ["secret-one", "secret-two"], 2)
    assert first == "a *** b"
    assert second == "*** ***"
