"""A KV v2 path pasted with ``data/`` (vault-action, GitLab, the HTTP API) is refused with exit 2.

Against a real OpenBao: ``plan --check`` and ``run`` say what to write instead and read nothing;
``plan --check`` never reports ``read on MOUNT/data/data/...`` as allowed.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import jobsecrets
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

CANARY = "kv2-api-path-canary-5e1b"


@pytest.fixture
def kv2(openbao: OpenBaoServer) -> str:
    openbao.enable_kv("kvapi", version=2)
    openbao.client().secrets.kv.v2.create_or_update_secret(
        "ci/aws", secret={"key": CANARY}, mount_point="kvapi"
    )
    # A secret whose own name starts with data/: reachable with an explicit mount.
    openbao.client().secrets.kv.v2.create_or_update_secret(
        "data/odd", secret={"key": CANARY}, mount_point="kvapi"
    )
    return "kvapi"


def _spec(tmp_path: Path, address: str, secrets: str) -> None:
    (tmp_path / "jobsecrets.yml").write_text(
        f"version: 1\nbackends:\n  vault: {{type: vault, address: '{address}'}}\nsecrets:\n{secrets}"
    )


@pytest.mark.parametrize("command", [["plan", "--check"], ["run", "--", "env"]])
@pytest.mark.parametrize("segment", ["data", "metadata"])
def test_api_path_is_refused_before_any_read(
    openbao: OpenBaoServer, kv2: str, tmp_path: Path, command: list[str], segment: str
) -> None:
    _spec(tmp_path, openbao.address, f"  AWS_KEY: vault:{kv2}/{segment}/ci/aws#key\n")
    result = jobsecrets(command, cwd=tmp_path, env={"VAULT_TOKEN": "root"})
    assert result.returncode == 2, result.stderr
    assert f"write '{kv2}/ci/aws' instead" in result.stderr, result.stderr
    assert f"read on {kv2}/data/{segment}" not in result.stdout
    assert (CANARY in result.stdout + result.stderr) is False, "the value was read"


def test_static_check_with_kv_version(tmp_path: Path) -> None:
    # kv_version: 2 with no mount: known without a server, so plain `plan` refuses it too.
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  vault: {type: vault, address: 'http://127.0.0.1:9'}\n"
        "secrets:\n  K: {ref: 'vault:secret/data/app#k', kv_version: 2}\n"
    )
    result = jobsecrets(["plan"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "write 'secret/app' instead" in result.stderr
    assert "jobsecrets.yml:5:" in result.stderr, result.stderr


def test_right_path_and_explicit_mount_still_work(
    openbao: OpenBaoServer, kv2: str, tmp_path: Path
) -> None:
    _spec(
        tmp_path,
        openbao.address,
        f"  A: vault:{kv2}/ci/aws#key\n  B: {{ref: 'vault:{kv2}/data/odd#key', mount: {kv2}}}\n",
    )
    check = jobsecrets(["plan", "--check"], cwd=tmp_path, env={"VAULT_TOKEN": "root"})
    assert check.returncode == 0, check.stderr
    script = 'import os; print(os.environ["A"] == os.environ["B"] == "' + CANARY + '")'
    result = jobsecrets(
        ["run", "--", "python3", "-c", script], cwd=tmp_path, env={"VAULT_TOKEN": "root"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
