"""Canary test: every command, at every log level, with known values in real stores.

Nothing jobsecrets prints, and no file it writes (other than the one the user asked for with ``-o``),
may hold a canary value or any encoding of it. Assertions are booleans, so a failure never shows a value.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobsecrets.redact import mask_forms
from support.cli import jobsecrets
from support.moto_server import REGION, MotoServer
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration


class Canaries:
    """Stores seeded with canary values, and the environment that reaches them."""

    def __init__(self, bao: OpenBaoServer, moto: MotoServer) -> None:
        self.kv = "kv-canary-" + secrets.token_hex(12)
        self.multi = (
            "multi-canary-" + secrets.token_hex(8) + "\nsecond-line-" + secrets.token_hex(8)
        )
        self.aws = "aws-canary-" + secrets.token_hex(12)
        self.aws_whole = json.dumps({"k": self.aws, "other": "aws-other-" + secrets.token_hex(10)})
        client = bao.client()
        client.secrets.kv.v2.create_or_update_secret(
            "canary", {"kv": self.kv, "multi": self.multi}, mount_point="secret"
        )
        # AppRole: jobsecrets obtains (and must revoke) its own token, which lands in the state file.
        client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy("reader", 'path "secret/*" { capabilities = ["read"] }')
        client.write("auth/approle/role/ci", token_policies="reader", token_ttl="5m")
        self.role_id = client.read("auth/approle/role/ci/role-id")["data"]["role_id"]
        self.secret_id = client.write("auth/approle/role/ci/secret-id")["data"]["secret_id"]
        sm = moto.client("secretsmanager")
        sm.create_secret(Name="canary/app", SecretString=self.aws_whole)
        self.env = {
            "VAULT_ADDR": bao.address,
            "VAULT_ROLE_ID": self.role_id,
            "VAULT_SECRET_ID": self.secret_id,
            "AWS_ENDPOINT_URL": moto.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    @property
    def values(self) -> list[str]:
        return [self.kv, self.multi, self.aws, self.aws_whole, self.secret_id]

    def leaked(self, data: str | bytes) -> bool:
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        for value in self.values:
            for form in mask_forms(value.encode()) | {value.encode()}:
                if form in raw:
                    return True
        return False


@pytest.fixture(scope="module")
def canaries() -> Iterator[Canaries]:
    with OpenBaoServer() as bao, MotoServer() as moto:
        yield Canaries(bao, moto)


SPEC = """\
version: 1
backends:
  vault:
    type: vault
    auth: {method: approle}
  aws: {type: aws}
secrets:
  KV: vault:secret/canary#kv
  MULTI: vault:secret/canary#multi
  AWS_FIELD: aws:canary/app#k
  AWS_WHOLE: aws:canary/app
  KV_FILE:
    ref: vault:secret/canary#kv
    file: true
"""


def files_under(root: Path, exclude: set[Path]) -> list[Path]:
    """Files the tool wrote, less the ones the user asked for: ``-o`` and ``file: true`` values
    (those must be 0600 in a 0700 directory)."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path in exclude:
            continue
        if path.parent.name.startswith("jobsecrets-files-"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            continue
        found.append(path)
    return found


def test_no_command_leaks_a_canary(tmp_path: Path, canaries: Canaries) -> None:
    work = tmp_path / "work"
    private_tmp = tmp_path / "tmp"
    work.mkdir()
    private_tmp.mkdir()
    (work / "jobsecrets.yml").write_text(SPEC)
    (work / "missing.yml").write_text(SPEC + "  GONE: vault:secret/canary#nofield\n")
    (work / "bad.yml").write_text(SPEC + "  LD_PRELOAD: vault:secret/canary#kv\n  X: nope:a#b\n")
    env = {
        **canaries.env,
        "TMPDIR": str(private_tmp),
        "JOBSECRETS_STATE": str(private_tmp / "state" / "s.json"),
    }
    out_file = work / "values.json"
    child = textwrap.dedent(
        """
        import base64, os, urllib.parse, json
        names = ["KV", "MULTI", "AWS_FIELD", "AWS_WHOLE"]
        for n in names:
            v = os.environ[n]
            print(v)
            print(base64.b64encode(v.encode()).decode())
            print(v.encode().hex())
            print(urllib.parse.quote(v))
            print(json.dumps(v))
        print(open(os.environ["KV_FILE"]).read())
        argv = open(f"/proc/{os.getppid()}/cmdline", "rb").read()
        ok = all(os.environ[n].encode() not in argv for n in names)
        print("ARGV-CLEAN" if ok else "ARGV-DIRTY")
        """
    )
    runs = {
        "plan": ["plan", "-c", "jobsecrets.yml"],
        "plan-json": ["-vv", "plan", "--format", "json"],
        "plan-check": ["-vv", "plan", "--check"],
        "run": ["-vv", "run", "--", sys.executable, "-c", child],
        "export-file": ["-vv", "export", "--format", "json", "-o", str(out_file)],
        "revoke": ["-vv", "revoke"],
        "revoke-again": ["-vv", "revoke"],
        "missing": ["-vv", "export", "--format", "shell", "-c", "missing.yml"],
        "bad-spec": ["-vv", "run", "-c", "bad.yml", "--", "true"],
        "denied": ["-vv", "run", "--", "true"],
    }
    results = {}
    for label, args in runs.items():
        run_env = (
            env
            if label != "denied"
            else {**env, "VAULT_SECRET_ID": "wrong-" + secrets.token_hex(4)}
        )
        result = jobsecrets(args, cwd=work, env=run_env)
        results[label] = result
        leaked = canaries.leaked(result.stdout) or canaries.leaked(result.stderr)
        assert not leaked, f"`{label}` printed a canary or an encoding of one"
        written = files_under(tmp_path, exclude={out_file})
        leaked_files = [
            str(p.relative_to(tmp_path)) for p in written if canaries.leaked(p.read_bytes())
        ]
        assert not leaked_files, f"`{label}` left a canary in {leaked_files}"

    assert results["run"].returncode == 0, results["run"].stderr
    assert "ARGV-CLEAN" in results["run"].stdout
    assert results["export-file"].returncode == 0, results["export-file"].stderr
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    exported = json.loads(out_file.read_text())
    assert exported["KV"] == canaries.kv and exported["AWS_FIELD"] == canaries.aws, (
        "export lost a value"
    )
    assert not os.path.exists(exported["KV_FILE"]), "revoke did not remove the secret file"
    assert results["revoke"].returncode == 0 and results["revoke-again"].returncode == 0
    assert results["missing"].returncode == 4 and results["missing"].stdout == ""
    assert results["bad-spec"].returncode == 2
    assert results["denied"].returncode == 3
    # The canary scan must be able to fail: the export file holds the values in clear.
    assert canaries.leaked(out_file.read_bytes())
    assert canaries.leaked(base64.b64encode(canaries.kv.encode()))
