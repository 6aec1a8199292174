"""The CLI end to end against a real OpenBao: plan, run, export, revoke, as a user runs them."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import clean_env, jobsecrets
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration


class Store:
    """One OpenBao seeded with KV v2, KV v1, a namespace and a PKI role, with canary values."""

    def __init__(self, server: OpenBaoServer) -> None:
        self.server = server
        self.password = "pw-" + secrets.token_urlsafe(18)
        self.user = "user-" + secrets.token_hex(6)
        self.legacy = "legacy-" + secrets.token_hex(12)
        self.team = "team-" + secrets.token_hex(12)
        self.multiline = "line-one-" + secrets.token_hex(6) + "\nline-two-" + secrets.token_hex(6)
        client = server.client()
        client.secrets.kv.v2.create_or_update_secret(
            "app",
            {"password": self.password, "user": self.user, "multi": self.multiline},
            mount_point="secret",
        )
        server.enable_kv("legacy", 1)
        client.secrets.kv.v1.create_or_update_secret(
            "old", {"token": self.legacy}, mount_point="legacy"
        )
        client.sys.create_namespace("team")
        team = server.client()
        team.adapter.namespace = "team"
        team.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
        team.secrets.kv.v2.create_or_update_secret("x", {"a": self.team}, mount_point="kv")
        client.sys.enable_secrets_engine("pki", path="pki")
        client.write("pki/root/generate/internal", common_name="example.com", ttl="24h")
        client.write(
            "pki/roles/ci", allowed_domains="example.com", allow_subdomains=True, max_ttl="1h"
        )

    @property
    def values(self) -> list[str]:
        return [self.password, self.user, self.legacy, self.team, self.multiline]

    def env(self) -> dict[str, str]:
        return {"VAULT_ADDR": self.server.address, "VAULT_TOKEN": self.server.root_token}


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with OpenBaoServer() as server:
        yield Store(server)


SPEC = """\
version: 1
backends:
  vault: {type: vault}
  team: {type: vault, namespace: team}
secrets:
  DB_PASSWORD: vault:secret/app#password
  DB_USER: vault:secret/app#user
  MULTI: vault:secret/app#multi
  LEGACY: ref+vault://legacy/old#/token
  TEAM: team:kv/x#a
  TLS_KEY:
    ref: vault:pki/issue/ci#private_key
    params: {common_name: ci.example.com, ttl: 15m}
    file: true
  MAYBE:
    ref: vault:secret/not-there#x
    optional: true
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "jobsecrets.yml").write_text(SPEC)
    return tmp_path


def leaked(output: str, values: list[str]) -> bool:
    """True if any value (or a line of a multi-line one) appears: a bool, so nothing is printed."""
    for value in values:
        for part in [value, *value.splitlines()]:
            if part and part in output:
                return True
    return False


def test_plan_reads_no_value_and_needs_no_credentials(workdir: Path, store: Store) -> None:
    # No VAULT_TOKEN and an unreachable address: plan must not need the network at all.
    result = jobsecrets(["plan"], cwd=workdir, env={"VAULT_ADDR": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stderr
    for name in ("DB_PASSWORD", "TLS_KEY", "MAYBE", "ref+vault://legacy/old#/token"):
        assert name in result.stdout
    assert "token ($VAULT_TOKEN)" in result.stdout
    as_json = jobsecrets(["plan", "--format", "json"], cwd=workdir, env={})
    data = json.loads(as_json.stdout)
    by_name = {v["name"]: v for v in data["variables"]}
    assert by_name["TLS_KEY"]["file"] and by_name["MAYBE"]["optional"]
    assert by_name["TEAM"]["backend"] == "team" and by_name["DB_USER"]["field"] == "user"


def test_plan_check_signs_in_and_checks_access(workdir: Path, store: Store) -> None:
    result = jobsecrets(["plan", "--check", "--format", "json"], cwd=workdir, env=store.env())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    checks = data["check"]["variables"]
    assert all(v["allowed"] for n, v in checks.items() if n != "MAYBE")
    # The KV metadata endpoint says secret/not-there does not exist: left out, not "ok".
    assert checks["MAYBE"]["missing"] and not checks["MAYBE"]["allowed"]
    assert not leaked(result.stdout + result.stderr, store.values), "plan --check printed a value"


def test_run_passes_values_masks_output_and_keeps_the_exit_code(
    workdir: Path, store: Store
) -> None:
    out = workdir / "seen.json"
    script = textwrap.dedent(
        f"""
        import base64, json, os, sys
        names = ["DB_PASSWORD", "DB_USER", "MULTI", "LEGACY", "TEAM", "TLS_KEY"]
        json.dump({{n: os.environ.get(n) for n in names}}, open({str(out)!r}, "w"))
        print("password:", os.environ["DB_PASSWORD"])
        print("b64:", base64.b64encode(os.environ["LEGACY"].encode()).decode())
        sys.stderr.write("team " + os.environ["TEAM"] + "\\n")
        print(os.environ["MULTI"])
        print("tls-path-mode", oct(os.stat(os.environ["TLS_KEY"]).st_mode & 0o777))
        sys.exit(7)
        """
    )
    result = jobsecrets(["run", "--", sys.executable, "-c", script], cwd=workdir, env=store.env())
    assert result.returncode == 7, result.stderr
    seen = json.loads(out.read_text())
    out.unlink()
    assert seen["DB_PASSWORD"] == store.password, "the child did not get DB_PASSWORD"
    assert (
        seen["MULTI"] == store.multiline
        and seen["TEAM"] == store.team
        and seen["LEGACY"] == store.legacy
    )
    assert "MAYBE" not in seen or seen.get("MAYBE") is None
    assert "password: ***" in result.stdout and "b64: ***" in result.stdout
    assert "team ***" in result.stderr
    assert "tls-path-mode 0o600" in result.stdout
    assert not leaked(result.stdout + result.stderr, store.values), "run let a value through"
    assert not os.path.exists(seen["TLS_KEY"]), "the file: true value outlived the run"


def test_run_with_only_gives_just_those(workdir: Path, store: Store) -> None:
    script = (
        "import os; print(sorted(k for k in os.environ if k in ('DB_USER','DB_PASSWORD','TEAM')))"
    )
    result = jobsecrets(
        ["run", "--only", "DB_USER", "--", sys.executable, "-c", script],
        cwd=workdir,
        env=store.env(),
    )
    assert result.returncode == 0, result.stderr
    assert "['DB_USER']" in result.stdout


def test_export_formats(workdir: Path, store: Store) -> None:
    env = store.env()
    shell = jobsecrets(
        ["export", "--format", "shell", "--only", "DB_PASSWORD,MULTI"], cwd=workdir, env=env
    )
    assert shell.returncode == 0, shell.stderr
    # The shell output, sourced by a real shell, gives back the exact values.
    check = subprocess.run(
        [
            "sh",
            "-c",
            shell.stdout + '\n[ "$DB_PASSWORD" = "$EXPECT_PW" ] && [ "$MULTI" = "$EXPECT_MULTI" ]',
        ],
        env=clean_env({"EXPECT_PW": store.password, "EXPECT_MULTI": store.multiline}),
        check=False,
    )
    assert check.returncode == 0, "shell export did not round-trip"
    dotenv = jobsecrets(["export", "--format", "dotenv", "--only", "DB_USER"], cwd=workdir, env=env)
    assert dotenv.stdout.strip() == f"DB_USER='{store.user}'"
    target = workdir / "out.json"
    as_json = jobsecrets(
        ["export", "--format", "json", "-o", str(target), "--only", "TEAM,LEGACY"],
        cwd=workdir,
        env=env,
    )
    assert as_json.returncode == 0, as_json.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text()) == {"TEAM": store.team, "LEGACY": store.legacy}
    assert not leaked(as_json.stdout + as_json.stderr, store.values)


def test_errors_have_exit_codes_and_hold_no_value(workdir: Path, store: Store) -> None:
    (workdir / "missing.yml").write_text(
        "version: 1\nsecrets:\n  A: vault:secret/app#password\n  B: vault:secret/app#nofield\n"
    )
    missing = jobsecrets(
        ["export", "--format", "json", "-c", "missing.yml"], cwd=workdir, env=store.env()
    )
    assert missing.returncode == 4
    assert "B (vault:secret/app#nofield)" in missing.stderr
    assert missing.stdout == "", "a failed export must export nothing"
    assert not leaked(missing.stdout + missing.stderr, store.values)

    (workdir / "bad.yml").write_text(
        "version: 1\nsecrets:\n  PATH: vault:secret/app#password\n  X: nope:a#b\n"
    )
    bad = jobsecrets(["run", "-c", "bad.yml", "--", "true"], cwd=workdir, env=store.env())
    assert bad.returncode == 2
    assert (
        "bad.yml:3" in bad.stderr
        and "bad.yml:4" in bad.stderr
        and "nothing was fetched" in bad.stderr
    )

    denied = jobsecrets(
        ["export", "--format", "json"],
        cwd=workdir,
        env={**store.env(), "VAULT_TOKEN": "not-a-token"},
    )
    # An invalid token is a sign-in failure naming its source (exit 3), said once, not a
    # "permission denied ... check the policies" (exit 5) per variable.
    assert denied.returncode == 3, denied.stderr
    for backend in ("vault", "team"):
        said = denied.stderr.count(f"{backend}': the token from $VAULT_TOKEN is invalid or expired")
        assert said == 1, denied.stderr

    down = jobsecrets(
        ["export", "--format", "json"],
        cwd=workdir,
        env={**store.env(), "VAULT_ADDR": "http://127.0.0.1:9"},
    )
    assert down.returncode == 6 and "cannot reach" in down.stderr

    not_found = jobsecrets(
        ["run", "--only", "DB_USER", "--", "/no/such/command"], cwd=workdir, env=store.env()
    )
    assert not_found.returncode == 127

    no_spec = jobsecrets(["plan", "-c", "nope.yml"], cwd=workdir, env={})
    assert no_spec.returncode == 2 and "not found" in no_spec.stderr


def test_a_kv_value_nested_too_deeply_is_the_stores_answer_not_our_crash(
    workdir: Path, store: Store
) -> None:
    """OpenBao keeps a KV value of arrays 3,000 levels deep (it refuses that many nested
    objects, by their count of strings); Python's parser gives up near 1,000 with a
    RecursionError, which was "internal error" (exit 1)."""
    import requests

    depth = 3000
    deep = "[" * depth + "]" * depth
    body = '{"data": {"a": ' + deep + ', "flat": "flat-value-1234"}}'
    written = requests.post(
        f"{store.server.address}/v1/secret/data/deep",
        data=body,
        headers={"X-Vault-Token": store.server.root_token},
        timeout=30,
    )
    assert written.status_code == 200, written.text[:200]
    (workdir / "deep.yml").write_text("version: 1\nsecrets:\n  FLAT: vault:secret/deep#flat\n")
    result = jobsecrets(
        ["export", "--format", "json", "-c", "deep.yml"], cwd=workdir, env=store.env()
    )
    assert result.returncode == 6, result.stderr
    assert "answered with JSON nested too deeply to read" in result.stderr
    assert "internal error" not in result.stderr and result.stdout == ""


def test_revoke_without_state_is_a_quiet_success(workdir: Path) -> None:
    result = jobsecrets(["revoke", "--state", str(workdir / "none.json")], cwd=workdir, env={})
    assert result.returncode == 0 and "nothing to revoke" in result.stderr


def test_help_and_version(workdir: Path) -> None:
    version = jobsecrets(["--version"], cwd=workdir, env={})
    assert version.returncode == 0 and "jobsecrets" in version.stdout
    for command in ([], ["plan"], ["run"], ["export"], ["revoke"]):
        result = jobsecrets([*command, "--help"], cwd=workdir, env={})
        assert result.returncode == 0 and "Usage:" in result.stdout


def test_tls_verification_is_on_and_takes_a_ca_bundle(tmp_path: Path) -> None:
    with OpenBaoServer(tls=True) as server:
        value = "tls-" + secrets.token_hex(10)
        server.client().secrets.kv.v2.create_or_update_secret(
            "t", {"v": value}, mount_point="secret"
        )
        (tmp_path / "jobsecrets.yml").write_text("version: 1\nsecrets:\n  V: vault:secret/t#v\n")
        env = {"VAULT_ADDR": server.address, "VAULT_TOKEN": server.root_token}
        refused = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
        assert refused.returncode == 6 and "TLS verification" in refused.stderr
        assert server.ca_cert is not None
        (tmp_path / "ca.yml").write_text(
            f"version: 1\nbackends:\n  vault: {{ca_cert: {server.ca_cert}}}\nsecrets:\n  V: vault:secret/t#v\n"
        )
        trusted = jobsecrets(["export", "--format", "json", "-c", "ca.yml"], cwd=tmp_path, env=env)
        assert trusted.returncode == 0, trusted.stderr
        assert json.loads(trusted.stdout) == {"V": value}
        # A FIFO named as the bundle blocked the first connection for good (the deadline never
        # came): now a spec problem at once, like a bundle that is not there.
        os.mkfifo(tmp_path / "ca.fifo")
        (tmp_path / "fifo.yml").write_text(
            "version: 1\nbackends:\n  vault: {ca_cert: ca.fifo}\nsecrets:\n  V: vault:secret/t#v\n"
        )
        fifo = jobsecrets(
            ["export", "--format", "json", "-c", "fifo.yml"], cwd=tmp_path, env=env, timeout=60
        )
        assert fifo.returncode == 2 and "not a regular file" in fifo.stderr
