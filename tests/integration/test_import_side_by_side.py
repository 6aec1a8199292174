"""Original vs converted, side by side, against real OpenBao and moto.

For a representative set of tests/data/import files: seed the stores with known values, convert
the file with ``jobsecrets import``, run ``jobsecrets run`` with the converted spec (only the
job's variables, as the rewritten step asks), and compare what the script sees with what the
original tool's documented semantics give: the same variable names, the same values, a file
where the original wrote a file (GitLab's default), and nothing else.

The expectations are written out by hand per file from each tool's documentation (vault-action
README and ``src/secrets.js`` naming; aws-secretsmanager-get-secrets README: names, aliases,
prefixes, ``parse-json-secrets``; GitLab ``secrets:`` docs: ``PATH/FIELD@MOUNT``, ``file: true``
by default), not derived from the importer's code. GitLab's own ``secrets:`` needs a Premium
server, and vault-action's code is not in CI, so their side is that documented behaviour.

The converted spec is run as written except where the test's servers differ from the file's:
the Vault address (the file's host does not exist here), JWT sign-in (these stores take the
root token here; sign-in is tested elsewhere) and an AWS ``role_arn`` (moto takes any key).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from support.cli import jobsecrets
from support.moto_server import MotoServer, admin_session_kwargs
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parent.parent / "data" / "import"

# A script that reports, for every variable the run added, a digest of what it holds (the
# file's content for a path to a file) and whether it was a file: never a value.
DUMP = r"""
import hashlib, json, os, sys
base = set(json.load(open(sys.argv[1])))
out = {}
for name, value in os.environ.items():
    if name in base or name.startswith("JOBSECRETS_"):
        continue
    is_file = os.path.isfile(value) and os.path.basename(value) == name
    data = open(value, "rb").read() if is_file else value.encode()
    out[name] = {"file": is_file, "sha": hashlib.sha256(data).hexdigest()}
json.dump(out, open(sys.argv[2], "w"))
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def want(values: dict[str, str], files: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: {"file": k in files, "sha": sha(v)} for k, v in values.items()}


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBaoServer]:
    with OpenBaoServer() as server:
        client = server.client()
        kv2 = client.secrets.kv.v2
        kv2.create_or_update_secret(
            "ci/aws",
            secret={"accessKey": "AKIA-side-1", "secretKey": "sk-side-2"},
            mount_point="secret",
        )
        kv2.create_or_update_secret("ci", secret={"npm_token": "npm-side-3"}, mount_point="secret")
        kv2.create_or_update_secret(
            "ci/test-config",
            secret={"api_url": "https://api.side", "retries": "3"},
            mount_point="secret",
        )
        kv2.create_or_update_secret(
            "ci/flags", secret={"darkMode": "on-side-4"}, mount_point="secret"
        )
        kv2.create_or_update_secret(
            "app",
            secret={"password": "pw-side-5", "db": {"host": "db.side"}, "api-key": "ak-side-6"},
            mount_point="secret",
        )
        kv2.create_or_update_secret(
            "ci/registry", secret={"password": "reg-side-7"}, mount_point="secret"
        )
        kv2.create_or_update_secret(
            "production/kube",
            secret={"config": "apiVersion: v1\nkind: Config\n"},
            mount_point="secret",
        )
        for mount, version in (("kv1", 1), ("ops", 2), ("certs", 2), ("teams/payments", 2)):
            server.enable_kv(mount, version=version)
        client.secrets.kv.v1.create_or_update_secret(
            "build/settings",
            secret={"signing_key": "sign-side-8", "keystore_pass": "ks-side-9"},
            mount_point="kv1",
        )
        client.secrets.kv.v1.create_or_update_secret(
            "build/signing", secret={"key": "gl-sign-10"}, mount_point="kv1"
        )
        kv2.create_or_update_secret(
            "production/db", secret={"password": "ops-pw-11"}, mount_point="ops"
        )
        kv2.create_or_update_secret(
            "web/prod",
            secret={"key": "-----KEY side-12", "cert": "-----CERT side-13"},
            mount_point="certs",
        )
        kv2.create_or_update_secret(
            "ci/stripe", secret={"secret_key": "sk_side_14"}, mount_point="teams/payments"
        )
        yield server


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def seed(moto: MotoServer, region: str, secrets: dict[str, str]) -> dict[str, str]:
    kwargs = {**admin_session_kwargs(moto.endpoint), "region_name": region}
    client = boto3.client("secretsmanager", **kwargs)
    arns = {}
    for name, value in secrets.items():
        arns[name] = client.create_secret(Name=name, SecretString=value)["ARN"]
    return arns


def convert_and_run(
    tmp_path: Path,
    source: str,
    only: str,
    env: dict[str, str],
    *,
    text: str | None = None,
    patch: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Import ``source`` (a tests/data/import file, or ``text``), patch, run, return the dump."""
    work = tmp_path / "repo"
    work.mkdir()
    target = work / Path(source).name
    if text is None:
        shutil.copy(DATA / source, target)
    else:
        target.write_text(text)
    done = jobsecrets(["import", "--spec-out", "jobsecrets.yml", target.name], cwd=work)
    assert done.returncode == 0, done.stderr
    spec = (work / "jobsecrets.yml").read_text()
    for pattern, replacement in (patch or {}).items():
        spec, count = re.subn(pattern, replacement, spec)
        assert count, f"patch {pattern!r} matched nothing"
    (work / "jobsecrets.yml").write_text(spec)
    (work / "dump.py").write_text(DUMP)
    from support.cli import clean_env

    (work / "base.json").write_text(json.dumps(sorted(clean_env(env))))
    result = jobsecrets(
        ["run", "--only", only, "--", sys.executable, "dump.py", "base.json", "out.json"],
        cwd=work,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads((work / "out.json").read_text())


def vault_env(bao: OpenBaoServer) -> dict[str, str]:
    return {"VAULT_TOKEN": "root", "VAULT_ADDR": bao.address}


def to_bao(bao: OpenBaoServer) -> dict[str, str]:
    """The file's Vault address and JWT sign-in -> this OpenBao with its root token."""
    return {
        r"    address: .*\n": "",
        r"    auth: \{[^}]*\}": "    auth: {method: token}",
    }


def to_bao_no_namespace(bao: OpenBaoServer) -> dict[str, str]:
    """As :func:`to_bao`, and without the file's Vault Enterprise namespace."""
    return {**to_bao(bao), r"    namespace: .*\n": ""}


# ---- vault-action -------------------------------------------------------------------------------


def test_vault_action_token_basic(bao: OpenBaoServer, tmp_path: Path) -> None:
    # `path key | NAME`; without `| NAME` the name is the key upper-cased (npm_token -> NPM_TOKEN).
    got = convert_and_run(
        tmp_path,
        "github/va-token-basic.yml",
        "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,NPM_TOKEN",
        vault_env(bao),
        patch={r"    address: .*\n": ""},
    )
    assert got == want(
        {
            "AWS_ACCESS_KEY_ID": "AKIA-side-1",
            "AWS_SECRET_ACCESS_KEY": "sk-side-2",
            "NPM_TOKEN": "npm-side-3",
        }
    )


def test_vault_action_wildcards(bao: OpenBaoServer, tmp_path: Path) -> None:
    # `* | TEST_`: every key, PREFIX+KEY upper-cased; `** | FLAG_`: the key's case kept.
    got = convert_and_run(
        tmp_path, "github/va-wildcard.yml", "TEST,FLAG", vault_env(bao), patch=to_bao(bao)
    )
    assert got == want(
        {"TEST_API_URL": "https://api.side", "TEST_RETRIES": "3", "FLAG_darkMode": "on-side-4"}
    )


def test_vault_action_kv1_and_nested_and_dashes(bao: OpenBaoServer, tmp_path: Path) -> None:
    got = convert_and_run(
        tmp_path,
        "github/va-kv1.yml",
        "SIGNING_KEY,KEYSTORE_PASS",
        vault_env(bao),
        patch={r"    address: .*\n": ""},
    )
    assert got == want({"SIGNING_KEY": "sign-side-8", "KEYSTORE_PASS": "ks-side-9"})
    # A quoted nested selector ("db.host": db -> host), and "api-key" quoted -> APIKEY.
    (tmp_path / "n").mkdir()
    got = convert_and_run(
        tmp_path / "n",
        "github/va-nested-selector.yml",
        "APP_PASSWORD,DB_HOST,APIKEY",
        vault_env(bao),
        patch={r"    address: .*\n": ""},
    )
    assert got == want({"APP_PASSWORD": "pw-side-5", "DB_HOST": "db.side", "APIKEY": "ak-side-6"})


def test_vault_action_mount_of_several_segments_and_ignore_not_found(
    bao: OpenBaoServer, tmp_path: Path
) -> None:
    got = convert_and_run(
        tmp_path,
        "github/va-multi-segment-mount.yml",
        "STRIPE_SECRET_KEY",
        vault_env(bao),
        patch={r"    address: .*\n": ""},
    )
    assert got == want({"STRIPE_SECRET_KEY": "sk_side_14"})
    (tmp_path / "o").mkdir()
    # ignoreNotFound: a missing secret sets nothing, and the step does not fail.
    got = convert_and_run(
        tmp_path / "o",
        "github/va-ignore-not-found.yml",
        "SENTRY_DSN",
        vault_env(bao),
        patch={r"    address: .*\n": ""},
    )
    assert got == {}


# ---- GitLab secrets: ----------------------------------------------------------------------------


def test_gitlab_short_and_long_forms(bao: OpenBaoServer, tmp_path: Path) -> None:
    # `production/db/password@ops`, no `file:`: GitLab's default, a file.
    got = convert_and_run(
        tmp_path,
        "gitlab/short-form.gitlab-ci.yml",
        "DATABASE_PASSWORD",
        vault_env(bao),
        patch=to_bao(bao),
    )
    assert got == want({"DATABASE_PASSWORD": "ops-pw-11"}, files=("DATABASE_PASSWORD",))
    # engine/path/field, file left at GitLab's default (true) and said explicitly: files.
    (tmp_path / "l").mkdir()
    got = convert_and_run(
        tmp_path / "l",
        "gitlab/long-form.gitlab-ci.yml",
        "TLS_KEY,TLS_CERT",
        vault_env(bao),
        patch=to_bao_no_namespace(bao),
    )
    assert got == want(
        {"TLS_KEY": "-----KEY side-12", "TLS_CERT": "-----CERT side-13"},
        files=("TLS_KEY", "TLS_CERT"),
    )


def test_gitlab_extends_a_hidden_job_and_kv1_engine(bao: OpenBaoServer, tmp_path: Path) -> None:
    # deploy-production: the hidden job's REGISTRY_PASSWORD (file: false) and its own file.
    got = convert_and_run(
        tmp_path,
        "gitlab/hidden-extends.gitlab-ci.yml",
        "REGISTRY_PASSWORD,PROD_KUBECONFIG",
        vault_env(bao),
        patch=to_bao(bao),
    )
    assert got == want(
        {"REGISTRY_PASSWORD": "reg-side-7", "PROD_KUBECONFIG": "apiVersion: v1\nkind: Config\n"},
        files=("PROD_KUBECONFIG",),
    )
    (tmp_path / "k").mkdir()
    got = convert_and_run(
        tmp_path / "k",
        "gitlab/kv1-engine.gitlab-ci.yml",
        "SIGNING_KEY",
        vault_env(bao),
        patch=to_bao(bao),
    )
    assert got == want({"SIGNING_KEY": "gl-sign-10"})


# ---- aws-secretsmanager-get-secrets and GitLab aws_secrets_manager -------------------------------


def aws_env(moto: MotoServer) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_ACCESS_KEY_ID": "AKIASIDEBYSIDE000001",
        "AWS_SECRET_ACCESS_KEY": "side-by-side",
    }


def test_aws_action_names_and_arns(moto: MotoServer, tmp_path: Path) -> None:
    arns = seed(moto, "us-east-1", {"exampleSecretName": "plain-side-20", "test1": "arn-side-21"})
    # The file names test1 by an ARN with a random suffix: use the one moto made.
    text = (DATA / "github/aws-basic.yml").read_text()
    text = re.sub(r"arn:aws:secretsmanager:\S+", arns["test1"], text)
    got = convert_and_run(
        tmp_path, "github/aws-basic.yml", "EXAMPLESECRETNAME,TEST1", aws_env(moto), text=text
    )
    # A name is the secret's name upper-cased, also when the entry is an ARN.
    assert got == want({"EXAMPLESECRETNAME": "plain-side-20", "TEST1": "arn-side-21"})


def test_aws_action_parse_json(moto: MotoServer, tmp_path: Path) -> None:
    seed(
        moto,
        "eu-central-1",
        {
            "prod/app/database": json.dumps(
                {"username": "u-22", "password": "p-23", "conn": {"port": 5432}}
            ),
            "prod/app/config": "not json 24",
        },
    )
    got = convert_and_run(
        tmp_path, "github/aws-parse-json.yml", "PROD_APP_DATABASE,CONFIG", aws_env(moto)
    )
    # NAME_KEY per key, nested keys joined with _, numbers as text; a value that is no JSON
    # object keeps the entry's name (the alias CONFIG).
    assert got == want(
        {
            "PROD_APP_DATABASE_USERNAME": "u-22",
            "PROD_APP_DATABASE_PASSWORD": "p-23",
            "PROD_APP_DATABASE_CONN_PORT": "5432",
            "CONFIG": "not json 24",
        }
    )


def test_aws_action_prefixes(moto: MotoServer, tmp_path: Path) -> None:
    seed(moto, "ap-southeast-2", {"e2e/user": "e2e-u-25", "e2e/pass-word": "e2e-p-26"})
    got = convert_and_run(tmp_path, "github/aws-prefix.yml", "E2E", aws_env(moto))
    # Each secret under the prefix, named after its whole name.
    assert got == want({"E2E_USER": "e2e-u-25", "E2E_PASS_WORD": "e2e-p-26"})
    seed(
        moto,
        "us-east-1",
        {
            "integration/services/api": json.dumps({"key": "k-27"}),
            "integration/services/db": "db-28",
        },
    )
    (tmp_path / "j").mkdir()
    got = convert_and_run(
        tmp_path / "j", "github/aws-prefix-json.yml", "INTEGRATION_SERVICES", aws_env(moto)
    )
    assert got == want({"INTEGRATION_SERVICES_API_KEY": "k-27", "INTEGRATION_SERVICES_DB": "db-28"})


def test_aws_action_blank_alias_and_case_kept(moto: MotoServer, tmp_path: Path) -> None:
    seed(moto, "us-west-2", {"ci/build-env": json.dumps({"NODE_ENV": "ci-29", "Flag": "f-30"})})
    got = convert_and_run(tmp_path, "github/aws-blank-alias.yml", "CI_BUILD_ENV", aws_env(moto))
    # A blank alias: the keys alone (upper-cased).
    assert got == want({"NODE_ENV": "ci-29", "FLAG": "f-30"})
    seed(moto, "us-east-2", {"app/settings": json.dumps({"dbHost": "h-31"})})
    (tmp_path / "c").mkdir()
    got = convert_and_run(tmp_path / "c", "github/aws-name-none.yml", "app_settings", aws_env(moto))
    # name-transformation none: app/settings -> app_settings, the key's case kept.
    assert got == want({"app_settings_dbHost": "h-31"})


def test_gitlab_aws_secrets_manager(moto: MotoServer, tmp_path: Path) -> None:
    seed(
        moto,
        "us-east-1",
        {"prod/db": json.dumps({"password": "gl-aws-32"}), "prod/config": "cfg-33"},
    )
    got = convert_and_run(
        tmp_path,
        "gitlab/aws-secrets-manager.gitlab-ci.yml",
        "DB_PASSWORD,WHOLE_CONFIG",
        aws_env(moto),
        patch={r"    role_arn: .*\n": ""},
    )
    # field of a JSON secret as a value (file: false); the whole secret as a file (default).
    assert got == want(
        {"DB_PASSWORD": "gl-aws-32", "WHOLE_CONFIG": "cfg-33"}, files=("WHOLE_CONFIG",)
    )


def test_vault_action_pki_one_certificate(bao: OpenBaoServer, tmp_path: Path) -> None:
    # `pki: PATH {params}`: NAME_CERT, NAME_KEY, NAME_CA, NAME_CA_CHAIN of ONE issued certificate.
    client = bao.client()
    client.sys.enable_secrets_engine("pki", path="pki_int", config={"max_lease_ttl": "1h"})
    client.write_data(
        "pki_int/root/generate/internal", data={"common_name": "side CA", "ttl": "1h"}
    )
    client.write_data(
        "pki_int/roles/ci-client",
        data={"allowed_domains": "example.com", "allow_subdomains": True, "max_ttl": "1h"},
    )
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(DATA / "github/va-pki.yml", work / "w.yml")
    done = jobsecrets(["import", "--spec-out", "jobsecrets.yml", "w.yml"], cwd=work)
    assert done.returncode == 0, done.stderr
    spec = (work / "jobsecrets.yml").read_text()
    for pattern, replacement in to_bao(bao).items():
        spec = re.sub(pattern, replacement, spec)
    (work / "jobsecrets.yml").write_text(spec)
    check = (
        "import os, subprocess; "
        "c = os.environ['CICLIENT_CERT']; k = os.environ['CICLIENT_KEY']; "
        "print('BEGIN CERTIFICATE' in c, 'PRIVATE KEY' in k, "
        "'BEGIN CERTIFICATE' in os.environ['CICLIENT_CA'], "
        "os.environ['CICLIENT_CA_CHAIN'].startswith('['))"
    )
    result = jobsecrets(
        [
            "run",
            "--only",
            "CICLIENT_CERT,CICLIENT_KEY,CICLIENT_CA,CICLIENT_CA_CHAIN",
            "--",
            sys.executable,
            "-c",
            check,
        ],
        cwd=work,
        env=vault_env(bao),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "True"]
    # One issuance for the four variables, as vault-action's one POST.
    issued = client.list("pki_int/certs")["data"]["keys"]
    assert len(issued) == 2  # the CA's own and the one the job got
