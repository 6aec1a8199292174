"""A converted GitLab pipeline run for real: gitlab-ci-local, the jobsecrets include, OpenBao JWT.

The original (tests/data/import/gitlab/hidden-extends.gitlab-ci.yml: a hidden job with
``secrets:`` that two jobs extend, one adding its own) is converted with ``import --write`` and run
by gitlab-ci-local with the shell executor. GitLab's own ``secrets:`` needs a Premium server, so its
side is its documented behaviour: ``REGISTRY_PASSWORD`` (``file: false``) as a value and
``PROD_KUBECONFIG`` (``file:`` left out: true) as a file, both in the job that extends the hidden
one. The id token is signed with the test key and verified by OpenBao's ``auth/jwt`` for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from support.cli import jobsecrets
from support.oidc import public_pem, sign
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = REPO_ROOT / "tests" / "data" / "import" / "gitlab" / "hidden-extends.gitlab-ci.yml"
GCL = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"
AUDIENCE = "https://vault.example.com"

DUMP = r"""
import hashlib, json, os, sys
*names, out = sys.argv[1:]
report = {}
for name in names:
    if name not in os.environ:
        continue
    value = os.environ[name]
    is_file = os.path.isfile(value)
    data = open(value, "rb").read() if is_file else value.encode()
    report[name] = {"file": is_file, "sha": hashlib.sha256(data).hexdigest()}
json.dump(report, open(out, "w"))
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_converted_hidden_job_pipeline_hands_the_same_variables(
    fresh_openbao: OpenBaoServer, oidc_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    bao = fresh_openbao
    password, kubeconfig = "reg-gcl-41", "apiVersion: v1\nkind: Config\n# gcl-42\n"
    kv2 = bao.client().secrets.kv.v2
    kv2.create_or_update_secret("ci/registry", secret={"password": password}, mount_point="secret")
    kv2.create_or_update_secret(
        "production/kube", secret={"config": kubeconfig}, mount_point="secret"
    )
    bao.write_policy("deployer", 'path "secret/data/*" { capabilities = ["read"] }\n')
    bao.enable_jwt(
        public_pem(oidc_key),
        "deployer",
        policies=["deployer"],
        bound_audiences=[AUDIENCE],
        bound_claims={"project_path": "acme/app"},
    )

    repo = tmp_path / "repo"
    (repo / "gitlab").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "gitlab" / "jobsecrets.yml", repo / "gitlab" / "jobsecrets.yml")
    (tmp_path / "dump.py").write_text(DUMP)
    out = tmp_path / "out.json"
    original = SOURCE.read_text()
    # The test's OpenBao and a script that reports what it sees (digests, never values).
    original = original.replace("https://vault.example.com\n\ndeploy", f"{bao.address}\n\ndeploy")
    original = original.replace(
        "./deploy.sh production",
        f"python3 {tmp_path / 'dump.py'} REGISTRY_PASSWORD PROD_KUBECONFIG {out}",
    )
    assert bao.address in original
    (repo / ".gitlab-ci.yml").write_text(original)

    done = jobsecrets(["import", "--write", ".gitlab-ci.yml"], cwd=repo)
    assert done.returncode == 0, done.stderr
    converted = (repo / ".gitlab-ci.yml").read_text()
    assert "secrets:" not in converted and "extends: .jobsecrets" in converted

    now = int(time.time())
    token = sign(
        {
            "iss": "https://gitlab.example.com",
            "sub": "project_path:acme/app:ref_type:branch:ref:main",
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
            "project_path": "acme/app",
        },
        oidc_key,
    )
    # Project-level variables (as CI/CD settings would hold them): the id token GitLab would
    # mint for id_tokens:, and the CLI under test already on PATH.
    variables = {"VAULT_ID_TOKEN": token, "GITLAB_CI": "true", "JOBSECRETS_INSTALL": "none"}
    (repo / ".gitlab-ci-local-variables.yml").write_text(yaml.safe_dump(variables))
    (repo / ".gitignore").write_text(".gitlab-ci-local*\n")
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "converted"], cwd=repo, check=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("VAULT_", "BAO_", "AWS_", "GITHUB_", "GITLAB_", "CI_", "JOBSECRETS_", "RUNNER_")
        )
        and k != "CI"
    }
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "HOME": str(tmp_path),
            "GCL_IGNORE_PREDEFINED_VARS": "GITLAB_CI",
        }
    )
    run = subprocess.run(
        [str(GCL), "--no-color", "deploy-production"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = run.stdout + run.stderr
    leaked = [name for name, value in (("password", password), ("token", token)) if value in output]
    assert leaked == [], f"the job log shows {leaked}"
    assert run.returncode == 0, output[-3000:]
    assert json.loads(out.read_text()) == {
        "REGISTRY_PASSWORD": {"file": False, "sha": sha(password)},
        "PROD_KUBECONFIG": {"file": True, "sha": sha(kubeconfig)},
    }
