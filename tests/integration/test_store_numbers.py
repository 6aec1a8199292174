"""JSON numbers of a real OpenBao's KV value and a real moto server's SecretString reach the job as
written: ``1.50`` stays ``1.50``, ``1e3`` stays ``1e3``, a 5,000-digit integer stays itself.

The values are written as raw JSON bodies (no Python client would keep such numbers) and read by
the CLI as a user runs it: ``export`` and ``run``, with the AWS backend in its own process (Vault
and AWS in one spec fork it off). Compared as booleans and digests: a failure prints no value.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from support.cli import jobsecrets
from support.moto_server import REGION, MotoServer, seed_secrets

pytestmark = pytest.mark.integration

BIG = "8" * 4999 + "3"
#: A SecretString: moto keeps the text as it is, so every number of it must arrive as written.
AWS_DOCUMENT = (
    '{"n": 1.50, "big": ' + BIG + ', "neg": -0, "huge": 1e400, '
    '"doc": {"x": 1e3, "y": [2.50, -0.0], "s": "t"}}'
)
AWS_EXPECTED = {
    "n": "1.50",
    "big": BIG,
    "neg": "-0",
    "huge": "1e400",
    "doc": '{"s":"t","x":1e3,"y":[2.50,-0.0]}',
}
#: OpenBao reads a request's numbers as Go float64s (it refuses BIG and 1e400) and writes them
#: back in Go's form: 1.5, 1e-7 (Python: 1e-07), -0 (Python: 0). The variable must hold the
#: store's text, as its answer writes it.
VAULT_BODY = (
    '{"data": {"n": 1.50, "tiny": 0.0000001, "neg": -0, '
    '"doc": {"x": 1e3, "y": [2.50, -0.0, 0.0000001]}}}'
)
ADMIN_ENV = {"AWS_ACCESS_KEY_ID": "AKIAADMINADMINADMIN1", "AWS_SECRET_ACCESS_KEY": "admin-key"}
FORKED = re.compile(r"backend 'aws': signs in and reads in process \d+")


def _spec() -> str:
    lines = ["version: 1", "backends:", "  vault: {type: vault}", "  aws: {type: aws}", "secrets:"]
    lines += [f"  V_{field.upper()}: vault:secret/numbers#{field}" for field in VAULT_FIELDS]
    lines += [f"  A_{field.upper()}: aws:numbers#{field}" for field in AWS_EXPECTED]
    lines.append("  VF:\n    ref: vault:secret/numbers#*\n    name_prefix: VF_\n    flatten: true")
    return "\n".join(lines) + "\n"


VAULT_FIELDS = ("n", "tiny", "neg", "doc")


def _vault_texts(answer: str) -> dict[str, str]:
    """Each field of the KV answer as the store's text writes it (a structure: its JSON text)."""
    data = json.loads(answer, parse_float=str, parse_int=str)["data"]["data"]
    texts = {field: data[field] for field in VAULT_FIELDS if field != "doc"}
    doc = re.search(r'"doc":(\{[^{}]*\})', answer)
    assert doc is not None, "no doc in the answer"
    texts["doc"] = doc.group(1)
    return texts


def _expected(vault: dict[str, str]) -> dict[str, str]:
    expected = {f"A_{field.upper()}": text for field, text in AWS_EXPECTED.items()}
    expected.update({f"V_{field.upper()}": text for field, text in vault.items()})
    expected.update(
        {f"VF_{field.upper()}": text for field, text in vault.items() if field != "doc"}
    )
    # Flattened: the leaves of doc, a number and an array, as the store's text writes them.
    x, y = re.search(r'"x":([^,}]*)', vault["doc"]), re.search(r'"y":(\[[^\]]*\])', vault["doc"])
    assert x is not None and y is not None, "doc is not as written"
    expected.update({"VF_DOC_X": x.group(1), "VF_DOC_Y": y.group(1)})
    return expected


@pytest.fixture()
def stores(openbao: Any, moto: MotoServer, tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Both stores hold their document: (the environment that reads them, what each variable
    must hold)."""
    url, headers = (
        f"{openbao.address}/v1/secret/data/numbers",
        {"X-Vault-Token": openbao.root_token},
    )
    written = requests.post(url, data=VAULT_BODY, headers=headers, timeout=30)
    assert written.status_code == 200, written.status_code
    vault = _vault_texts(requests.get(url, headers=headers, timeout=30).text)
    # Else the test would not tell the store's text from Python's (1e-07, 0).
    assert vault["tiny"] != repr(float(vault["tiny"])) and vault["neg"] == "-0", "store changed"
    seed_secrets(moto.client("secretsmanager"), {"numbers": AWS_DOCUMENT})
    (tmp_path / "jobsecrets.yml").write_text(_spec())
    env = {
        **openbao.env(),
        "VAULT_TOKEN": openbao.root_token,
        **ADMIN_ENV,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "HOME": str(tmp_path),
        "JOBSECRETS_FORK": "1",
    }
    return env, _expected(vault)


def test_export_writes_each_number_as_the_stores_hold_it(
    stores: tuple[dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    env, expected = stores
    result = jobsecrets(
        ["-vv", "export", "--format", "json", "--state", str(tmp_path / "state")],
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert FORKED.search(result.stderr), "the AWS backend did not run in its own process"
    out = json.loads(result.stdout)
    assert set(out) == set(expected), sorted(set(out) ^ set(expected))
    wrong = sorted(name for name in expected if out[name] != expected[name])
    assert not wrong, f"changed: {wrong}"


def test_run_hands_the_job_each_number_as_the_stores_hold_it(
    stores: tuple[dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    env, expected = stores
    digests = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in expected.items()}
    check = (
        "import hashlib, json, os, sys\n"
        "want = json.loads(sys.argv[1])\n"
        "wrong = sorted(n for n, d in want.items()\n"
        "               if hashlib.sha256(os.environ.get(n, '').encode()).hexdigest() != d)\n"
        "print(' '.join(wrong))\n"
        "sys.exit(9 if wrong else 0)\n"
    )
    result = jobsecrets(
        ["run", "--", sys.executable, "-c", check, json.dumps(digests)],
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, f"changed: {result.stdout.strip()} {result.stderr[-2000:]}"
