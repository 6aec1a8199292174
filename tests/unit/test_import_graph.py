"""Start-up stays light: --help, --version and plan never import hvac or boto3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# ruamel.yaml: only `jobsecrets import` reads YAML round-trip; jwt and cryptography: the github
# backend signs with them, only when it signs in.
HEAVY = ("hvac", "boto3", "botocore", "requests", "ruamel", "jwt", "cryptography")

PROBE = """
import sys, runpy, json, io, contextlib
sys.argv = ["jobsecrets", *json.loads(sys.argv[1])]
out = io.StringIO()
code = 0
with contextlib.redirect_stdout(out):
    try:
        from jobsecrets.cli import main
        main()
    except SystemExit as done:
        code = done.code or 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded(args: list[str], cwd: Path) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return data["code"], {m.split(".")[0] for m in data["modules"]}


def test_help_version_and_plan_import_no_client_library(tmp_path: Path) -> None:
    lines = [
        "version: 1",
        "backends:",
        "  vault: {type: vault, address: 'http://127.0.0.1:1'}",
        "  aws: {type: aws, region: eu-west-1}",
        "  gh: {type: github, app_id: 1, private_key: 'vault:secret/ci/app#pem'}",
        "secrets:",
        "  GH_TOKEN: {ref: 'gh:acme/app', permissions: {contents: read}}",
    ]
    for i in range(10):
        lines.append(f"  V{i}: vault:secret/app{i}#f")
        lines.append(f"  A{i}: aws:prod/s{i}#k")
    (tmp_path / "jobsecrets.yml").write_text("\n".join(lines) + "\n")
    for args in (
        ["--help"],
        ["--version"],
        ["plan"],
        ["plan", "--format", "json"],
        ["run", "--help"],
        ["import", "--help"],
    ):
        code, modules = loaded(args, tmp_path)
        assert code == 0, args
        heavy = sorted(set(HEAVY) & modules)
        assert heavy == [], f"{args} imported {heavy}"


WITHOUT_RUAMEL = """
import sys
sys.modules["ruamel"] = None  # as in the GitHub Action's install, which leaves ruamel.yaml out
from jobsecrets.cli import main
sys.argv = ["jobsecrets", *sys.argv[1:]]
main()
"""


def test_import_without_ruamel_says_what_is_missing(tmp_path: Path) -> None:
    """The action's install has no ruamel.yaml (import.lock is never installed): `jobsecrets
    import` there is a usage error naming it, not a traceback; every other command still runs."""
    workflow = tmp_path / "ci.yml"
    workflow.write_text("on: push\njobs: {}\n")
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_RUAMEL, "import", str(workflow)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "needs ruamel.yaml" in result.stderr and "pip install" in result.stderr
    assert "Traceback" not in result.stderr
    version = subprocess.run(
        [sys.executable, "-c", WITHOUT_RUAMEL, "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert version.returncode == 0, version.stderr


def test_revoke_reads_no_spec(tmp_path: Path) -> None:
    """Every job's post step runs ``revoke``: it parses no spec, so it imports no YAML."""
    # revoke leaves through os._exit (no teardown after its output): the modules are read off
    # -X importtime instead of sys.modules at the end.
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jobsecrets", "revoke", "--state", "absent"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "jobsecrets.commands.revoke" in modules  # the probe sees the command's imports
    assert not {"yaml", "jobsecrets.session", "jobsecrets.spec", "jobsecrets.resolver"} & modules
