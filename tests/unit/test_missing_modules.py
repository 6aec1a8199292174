"""An install of jobsecrets without a backend's library: the CLI names the module, what needs it
and how to install it (the GitHub Action's install: how to make its spec scanner read the type),
never ``internal error: ModuleNotFoundError``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobsecrets.missing_modules import ACTION_INSTALLER, missing_module_error
from support.cli import clean_env

# The CLI in a Python where importing the modules named in argv[1] fails, as in an install
# without them.
WITHOUT = """\
import sys
BLOCKED = set(sys.argv[1].split(","))


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
from jobsecrets.cli import main

main(sys.argv[2:])
"""

# The spec form the Action's scanner once missed (an explicit key): the CLI reads `type: aws`.
AWS_SPEC = """\
version: 1
backends:
  prod:
    ? type
    : aws
    region: eu-west-1
secrets:
  DB: prod:app/db#password
"""

VAULT_SPEC = """\
version: 1
backends:
  ci:
    type: vault
    address: http://127.0.0.1:9
    auth: {method: token}
secrets:
  DB: ci:secret/app#password
"""


@pytest.mark.parametrize(
    ("spec", "blocked", "needs"),
    [(AWS_SPEC, "botocore", "the aws backend"), (VAULT_SPEC, "hvac", "the vault backend")],
)
def test_export_without_a_backends_library_names_it(
    tmp_path: Path, spec: str, blocked: str, needs: str
) -> None:
    (tmp_path / "jobsecrets.yml").write_text(spec)
    env = clean_env({"VAULT_TOKEN": "dummy-token", "AWS_ACCESS_KEY_ID": "dummy-key-id"})
    env["AWS_SECRET_ACCESS_KEY"] = "dummy-secret-key"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT, blocked, "export", "--format", "json"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": ":".join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "internal error" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert f"jobsecrets: error: {needs}" in result.stderr, result.stderr
    assert f"needs the Python module '{blocked}'" in result.stderr, result.stderr
    assert "jobsecrets: hint: `pip install jobsecrets` installs it" in result.stderr
    assert result.stdout == "", "nothing may be exported"


def test_the_actions_install_is_told_about_its_spec_scanner() -> None:
    error = missing_module_error(
        ModuleNotFoundError("x", name="botocore.session"), ACTION_INSTALLER
    )
    assert "'botocore.session'" in error.message and "the aws backend" in error.message
    assert "the GitHub Action installs" in error.hint and "`type: <type>`" in error.hint
    github = missing_module_error(ModuleNotFoundError("x", name="jwt"), ACTION_INSTALLER)
    assert github.hint == "add `extras: github` to the Action's inputs"
    assert missing_module_error(ModuleNotFoundError("x", name="jwt"), "pip").hint == (
        "`pip install 'jobsecrets[github]'` installs it"
    )


def test_a_module_name_that_is_not_one_is_not_repeated() -> None:
    error = missing_module_error(ModuleNotFoundError("x", name="a b\n::add-mask::"), "pip")
    assert "'?'" in error.message and "add-mask" not in error.message
    assert missing_module_error(ModuleNotFoundError("x"), "pip").message.startswith("jobsecrets")
