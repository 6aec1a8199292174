"""The GitHub Action end to end: real workflows under ``act`` on the host, against a real OpenBao
(jwt login with a test-signed GitHub OIDC token, database leases on a real PostgreSQL) and a moto
server (web identity via ``role_arn``).

Each workflow uses ``acme/jobsecrets/actions/inject@v1`` the way a user would; ``act`` serves that
ref from a copy of this checkout (``--local-repository``) and never reaches github.com. A first
step copies the test's workspace in, standing in for ``actions/checkout``.

Values are only ever compared as booleans, so a failing assertion cannot print one.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import hvac
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from support.act import act_command as support_act_command
from support.act import action_checkout
from support.cli import clean_env
from support.moto_server import MotoServer, allow, create_web_identity_role, policy, seed_secrets
from support.oidc import GithubTokenServer, public_pem
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ACTION_REF = "acme/jobsecrets@v1"
JWT_MOUNT = "jwt-gha"


def act_command(workspace: Path, repo: Path, env: Mapping[str, str]) -> list[str]:
    """``act push`` for ``workspace/.github/workflows/ci.yml`` (see :func:`support.act.act_command`)."""
    return support_act_command(workspace, "ci.yml", ACTION_REF, repo, env)


def run_act(
    workspace: Path, repo: Path, env: Mapping[str, str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the workflow to its end; output is combined in ``stdout``."""
    return subprocess.run(
        act_command(workspace, repo, env),
        cwd=workspace,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` (Vault ends a revoked token's leases in the background)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@dataclass
class Stores:
    """One OpenBao (KV + database engine + jwt role) and one moto server, seeded with canaries."""

    openbao: OpenBaoServer
    postgres: PostgresServer
    moto: MotoServer
    role_arn: str
    # Never in a repr: pytest shows fixtures' reprs in a failing test's traceback.
    kv_password: str = field(repr=False)
    aws_key: str = field(repr=False)
    aws_blob: str = field(repr=False)

    @property
    def canaries(self) -> list[str]:
        """The static values a log must never show."""
        return [self.kv_password, self.aws_key, self.aws_blob]

    def leases(self) -> list[str]:
        """Database leases OpenBao still holds."""
        try:
            reply = self.openbao.client().sys.list_leases("database/creds/gha/")
        except hvac.exceptions.InvalidPath:
            return []
        return list(reply["data"]["keys"])

    def accessors(self) -> set[str]:
        """Every live token's accessor."""
        reply = self.openbao.client().list("auth/token/accessors")
        return set(reply["data"]["keys"]) if reply else set()


@pytest.fixture(scope="module")
def stores(postgres: PostgresServer, oidc_key: rsa.RSAPrivateKey) -> Iterator[Stores]:
    with OpenBaoServer() as bao, MotoServer() as moto:
        kv_password = "kvpw-" + secrets.token_urlsafe(18)
        client = bao.client()
        client.secrets.kv.v2.create_or_update_secret(
            "gha/app", {"password": kv_password}, mount_point="secret"
        )
        bao.enable_database(postgres, role_name="gha")
        bao.write_policy(
            "gha",
            'path "secret/data/gha/*" { capabilities = ["read"] }\n'
            'path "database/creds/gha" { capabilities = ["read"] }\n'
            'path "sys/leases/revoke" { capabilities = ["update"] }\n',
        )
        bao.enable_jwt(
            public_pem(oidc_key),
            role_name="gha",
            mount=JWT_MOUNT,
            bound_claims={"repository": "acme/app"},
            bound_audiences=["vault"],
            policies=["gha"],
        )
        aws_key = "awskey-" + secrets.token_urlsafe(18)
        aws_blob = "awsblob-" + secrets.token_urlsafe(18)
        seed_secrets(
            moto.client("secretsmanager"),
            {"gha/payments": json.dumps({"stripe_key": aws_key}), "gha/blob": aws_blob},
        )
        role_arn = create_web_identity_role(
            moto.client("iam"), "gha-deploy", policy(allow("secretsmanager:*"))
        )
        yield Stores(bao, postgres, moto, role_arn, kv_password, aws_key, aws_blob)


@pytest.fixture(scope="module")
def action_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return action_checkout(tmp_path_factory.mktemp("action-repo"))


@pytest.fixture(scope="module")
def tool_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's own install cache: the first workflow installs (cold), the others reuse it."""
    return tmp_path_factory.mktemp("tool-cache")


SPEC = """\
version: 1
backends:
  vault:
    type: vault
    auth: {method: jwt, role: gha, mount: jwt-gha}
  aws:
    type: aws
    region: us-east-1
    role_arn: ROLE_ARN
secrets:
  KV_PASSWORD: vault:secret/gha/app#password
  DB_USER: vault:database/creds/gha#username
  DB_PASS: vault:database/creds/gha#password
  STRIPE_KEY: aws:gha/payments#stripe_key
  BLOB: aws:gha/blob
"""

NAMES = ["KV_PASSWORD", "DB_USER", "DB_PASS", "STRIPE_KEY", "BLOB"]

WORKFLOW = """\
on: push
permissions:
  id-token: write
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - name: checkout (a copy of the test workspace)
        run: cp -R "$TEST_SRC/." .
      - name: inject
        id: secrets
        uses: acme/jobsecrets/actions/inject@v1
        with:
          audience: vault
          outputs: true
      - name: use the values
        env:
          OUT_STRIPE: ${{ steps.secrets.outputs.STRIPE_KEY }}
        run: |
          for name in NAMES; do printf %s "${!name}" > "$TEST_OUT/$name"; done
          printf %s "$OUT_STRIPE" > "$TEST_OUT/output-STRIPE_KEY"
          echo "plain: $KV_PASSWORD $STRIPE_KEY $BLOB $DB_PASS"
          echo "base64: $(printf %s "$KV_PASSWORD" | base64) $(printf %s "$BLOB" | base64)"
      - name: the CLI is on PATH for later steps
        run: jobsecrets --version > "$TEST_OUT/cli-version"
      - name: a long step the job is cancelled in
        if: env.CANCEL_ME == 'true'
        run: touch "$TEST_OUT/ready" && sleep 60
      - name: a later step that fails
        if: env.FAIL_LATER == 'true'
        run: exit 3
      - name: after the failure
        run: echo "not reached"
""".replace("NAMES", " ".join(NAMES))


@dataclass
class Job:
    """One workflow run's workspace, output directory and environment."""

    workspace: Path
    out: Path
    env: dict[str, str]


@pytest.fixture
def job(tmp_path: Path, stores: Stores, github_oidc: GithubTokenServer, tool_cache: Path) -> Job:
    workspace = tmp_path / "ws"
    (workspace / ".github" / "workflows").mkdir(parents=True)
    (workspace / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    (workspace / "jobsecrets.yml").write_text(SPEC.replace("ROLE_ARN", stores.role_arn))
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **github_oidc.env(),
        "TEST_SRC": str(workspace),
        "TEST_OUT": str(out),
        "VAULT_ADDR": stores.openbao.address,
        "AWS_ENDPOINT_URL": stores.moto.endpoint,
        "JOBSECRETS_TOOL_CACHE": str(tool_cache),
    }
    return Job(workspace, out, env)


class Log(str):
    """A workflow log whose repr (what pytest prints for a failing assertion) hides the values."""

    values: tuple[str, ...] = ()

    def __repr__(self) -> str:
        text = str(self)
        for value in self.values:
            for form in forms(value):
                text = text.replace(form, "<VALUE>")
        return "Log(\n" + text[-6000:] + "\n)"


def digest(value: str) -> str:
    """What assertions compare, so a mismatch shows two hashes instead of two secrets."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def act_log(result: subprocess.CompletedProcess[str], values: list[str]) -> Log:
    log = Log(result.stdout)
    log.values = tuple(v for v in values if v)
    return log


def forms(value: str) -> list[str]:
    """A value and the base64 a step prints of it."""
    return [value, base64.b64encode(value.encode()).decode()]


def check_no_value(log: str, values: list[str]) -> bool:
    return not any(form in log for value in values for form in forms(value))


def test_next_step_sees_masked_values_and_post_revokes(
    job: Job, stores: Stores, action_repo: Path
) -> None:
    roles_before = stores.postgres.roles()
    accessors_before = stores.accessors()
    result = run_act(job.workspace, action_repo, job.env)
    got = {name: (job.out / name).read_text() for name in NAMES if (job.out / name).exists()}
    dynamic = [got.get("DB_USER", ""), got.get("DB_PASS", "")]
    log = act_log(result, stores.canaries + dynamic)
    assert result.returncode == 0, log
    # The next step saw every value (compared as hashes, never printed).
    assert digest(got["KV_PASSWORD"]) == digest(stores.kv_password)
    assert digest(got["STRIPE_KEY"]) == digest(stores.aws_key)
    assert digest(got["BLOB"]) == digest(stores.aws_blob)
    assert digest((job.out / "output-STRIPE_KEY").read_text()) == digest(stores.aws_key)
    assert (got["DB_USER"] not in roles_before) is True and bool(got["DB_PASS"]) is True
    assert (job.out / "cli-version").read_text().startswith("jobsecrets, version ")
    # The log shows masks, never a value, not even base64-encoded.
    assert check_no_value(log, stores.canaries + dynamic), "a secret value reached the log"
    assert "plain: *** *** *** ***" in log
    assert "base64: *** ***" in log
    # The summary names variables and paths only.
    assert "| `DB_PASS` | vault | `database/creds/gha` |" in log
    # The post step ran and everything obtained is gone.
    assert "Run Post inject" in log
    assert "jobsecrets: revoked" in log
    assert wait_until(lambda: not stores.leases()), "a database lease outlived the job"
    assert wait_until(lambda: stores.accessors() <= accessors_before), "the Vault token lives on"
    assert wait_until(lambda: stores.postgres.roles() <= roles_before), "the DB role lives on"


def test_failing_later_step_still_revokes(job: Job, stores: Stores, action_repo: Path) -> None:
    roles_before = stores.postgres.roles()
    accessors_before = stores.accessors()
    result = run_act(job.workspace, action_repo, {**job.env, "FAIL_LATER": "true"})
    log = act_log(result, stores.canaries)
    assert result.returncode != 0, log
    assert "Failure - Main a later step that fails" in log
    assert "not reached" not in log.split("Failure - Main a later step that fails")[1]
    assert "Run Post inject" in log
    assert "jobsecrets: revoked" in log
    assert check_no_value(log, stores.canaries), "a secret value reached the log"
    assert wait_until(lambda: not stores.leases()), "a database lease outlived the job"
    assert wait_until(lambda: stores.accessors() <= accessors_before), "the Vault token lives on"
    assert wait_until(lambda: stores.postgres.roles() <= roles_before), "the DB role lives on"


def test_bad_spec_fails_the_step_readably(job: Job, stores: Stores, action_repo: Path) -> None:
    accessors_before = stores.accessors()
    bad = SPEC.replace("ROLE_ARN", stores.role_arn) + "  TYPO: nowhere:secret/x#y\n"
    (job.workspace / "jobsecrets.yml").write_text(bad)
    result = run_act(job.workspace, action_repo, job.env)
    log = act_log(result, stores.canaries)
    assert result.returncode != 0, log
    assert "Failure - Main inject" in log
    # The CLI names the file and line; the action repeats it as an error annotation.
    assert "jobsecrets.yml:16" in log, log
    assert "::error title=jobsecrets::jobsecrets export failed (exit 2)" in log, log
    # The whole error in the annotation: the per-problem line (file:line) too, not only the first.
    annotation = next(line for line in log.splitlines() if "::error title=jobsecrets::" in line)
    assert "jobsecrets.yml:16" in annotation, annotation
    assert "Run Main use the values" not in log
    assert "jobsecrets: nothing to revoke" in log
    assert stores.accessors() <= accessors_before


def test_export_env_off_gives_outputs_only(job: Job, stores: Stores, action_repo: Path) -> None:
    workflow = WORKFLOW.replace("outputs: true", "outputs: true\n          export-env: false")
    workflow = workflow.replace(
        "for name in",
        'test -z "${KV_PASSWORD:-}" && echo "KV_PASSWORD not in env"\n          for name in',
    )
    (job.workspace / ".github" / "workflows" / "ci.yml").write_text(workflow)
    result = run_act(job.workspace, action_repo, {**job.env})
    log = act_log(result, stores.canaries)
    assert result.returncode == 0, log
    assert "KV_PASSWORD not in env" in log
    assert digest((job.out / "output-STRIPE_KEY").read_text()) == digest(stores.aws_key)
    assert check_no_value(log, stores.canaries), "a secret value reached the log"


def test_cancelled_job_still_revokes(job: Job, stores: Stores, action_repo: Path) -> None:
    roles_before = stores.postgres.roles()
    accessors_before = stores.accessors()
    proc = subprocess.Popen(
        act_command(job.workspace, action_repo, {**job.env, "CANCEL_ME": "true"}),
        cwd=job.workspace,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_until(lambda: (job.out / "ready").exists(), timeout=90), "never got there"
        assert stores.leases(), "the job holds no lease to revoke"
        # What act does when a run is cancelled (Ctrl-C): cancel the step, then run post steps.
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = act_log(subprocess.CompletedProcess(proc.args, proc.returncode, output), stores.canaries)
    assert "this step has been cancelled" in log, log
    assert "Run Post inject" in log, log
    assert "jobsecrets: revoked" in log, log
    assert wait_until(lambda: not stores.leases()), "a database lease outlived the job"
    assert wait_until(lambda: stores.accessors() <= accessors_before), "the Vault token lives on"
    assert wait_until(lambda: stores.postgres.roles() <= roles_before), "the DB role lives on"


SCAN_WORKFLOW = """\
on: push
permissions:
  id-token: write
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - name: checkout (a copy of the test workspace)
        run: cp -R "$TEST_SRC/." .
      - name: inject
        uses: acme/jobsecrets/actions/inject@v1
        with:
          audience: vault
          only: STRIPE_KEY,BLOB
      - name: build
        run: |
          mkdir -p dist
          echo "built" > dist/app.txt
          if [ "$LEAK" = true ]; then
            printf %s "$STRIPE_KEY" | base64 > dist/key.txt
            tar czf dist/bundle.tgz dist/key.txt
          fi
      - name: scan before upload
        uses: acme/jobsecrets/actions/inject@v1
        with:
          scan: dist/
      - name: upload
        run: echo "UPLOADED dist"
"""


def test_scan_input_fails_the_job_before_upload_with_a_summary(
    job: Job, stores: Stores, action_repo: Path
) -> None:
    """Issue 19: the Action's scan mode, placed before the upload step."""
    (job.workspace / ".github" / "workflows" / "ci.yml").write_text(SCAN_WORKFLOW)
    result = run_act(job.workspace, action_repo, {**job.env, "LEAK": "true"})
    log = act_log(result, stores.canaries)
    assert result.returncode != 0, log
    assert "Failure - Main scan before upload" in log, log
    assert "UPLOADED dist" not in log
    assert "| STRIPE_KEY | dist/key.txt:1 | base64 |" in log, log
    assert "| STRIPE_KEY | dist/bundle.tgz!dist/key.txt:1 | base64 |" in log, log
    assert "jobsecrets scan found secret values in files" in log
    assert check_no_value(log, stores.canaries), "a secret value reached the log"

    clean = run_act(job.workspace, action_repo, {**job.env, "LEAK": "false"})
    log = act_log(clean, stores.canaries)
    assert clean.returncode == 0, log
    assert "UPLOADED dist" in log
    assert "jobsecrets scan: no value found" in log


VAULT_ONLY_SPEC = """\
version: 1
backends:
  vault:
    type: vault
    auth: {method: jwt, role: gha, mount: jwt-gha}
secrets:
  KV_PASSWORD: vault:secret/gha/app#password
"""

AWS_PACKAGES = ("boto3", "botocore", "s3transfer")


def site_packages(install: Path) -> Path:
    """The site-packages directory of an install the action made."""
    return next((install / "lib").glob("python3.*/site-packages"))


def installed(install: Path) -> set[str]:
    """Top-level names in an install's site-packages (packages and their .dist-info, lowercased)."""
    return {p.name.split("-")[0].lower() for p in site_packages(install).iterdir()}


def installer(install: Path, package: str) -> str:
    """What installed ``package`` into an install: its .dist-info's INSTALLER (pip or uv)."""
    [dist_info] = site_packages(install).glob(f"{package}-*.dist-info")
    return (dist_info / "INSTALLER").read_text().strip()


def test_vault_only_spec_installs_no_aws_libraries(
    job: Job, stores: Stores, action_repo: Path, tmp_path: Path
) -> None:
    """Issue 18: the action installs what the spec's backend types need; a Vault-only job gets no
    botocore (most of a cold install), and the CLI runs without them. A mixed spec in the
    same cache then gets an install of its own that has them, made by uv when it is on PATH."""
    cache = tmp_path / "own-tool-cache"
    env = {**job.env, "JOBSECRETS_TOOL_CACHE": str(cache)}
    (job.workspace / "jobsecrets.yml").write_text(VAULT_ONLY_SPEC)
    # With pip (even if this host had uv on PATH), and as a throwaway install: no bytecode.
    throwaway = {"JOBSECRETS_INSTALLER": "pip", "JOBSECRETS_BYTECODE": "false"}
    result = run_act(job.workspace, action_repo, {**env, **throwaway})
    log = act_log(result, stores.canaries)
    assert result.returncode == 0, log
    assert digest((job.out / "KV_PASSWORD").read_text()) == digest(stores.kv_password)
    assert "(core, vault)" in log, log
    [vault_install] = [p for p in cache.iterdir() if p.is_dir()]
    assert vault_install.name.endswith("-core+vault"), vault_install.name
    names = installed(vault_install)
    assert {"hvac", "requests", "jobsecrets", "yaml"} <= names, sorted(names)
    assert not names & set(AWS_PACKAGES), sorted(names)
    assert installer(vault_install, "hvac") == "pip"
    # Neither the install nor the CLI's two runs (export, revoke) wrote a .pyc file.
    assert not list(vault_install.rglob("*.pyc"))
    # ruamel.yaml is for `jobsecrets import` only, which no step of the action runs: left out,
    # and that command in the install the action puts on PATH says what is missing.
    assert "ruamel" not in names, sorted(names)
    workflow = job.workspace / "import-me.yml"
    workflow.write_text("on: push\njobs: {}\n")
    imported = subprocess.run(
        [str(vault_install / "bin" / "python"), "-m", "jobsecrets", "import", str(workflow)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert imported.returncode == 2, imported.stderr
    assert "needs ruamel.yaml" in imported.stderr and "Traceback" not in imported.stderr

    # A runner with uv on PATH; an install that outlives the job (the default off github-hosted).
    (job.workspace / "jobsecrets.yml").write_text(SPEC.replace("ROLE_ARN", stores.role_arn))
    uv_path = f"{REPO_ROOT / '.venv' / 'bin'}:{clean_env()['PATH']}"
    mixed = run_act(job.workspace, action_repo, {**env, "PATH": uv_path})
    log = act_log(mixed, stores.canaries)
    assert mixed.returncode == 0, log
    assert digest((job.out / "STRIPE_KEY").read_text()) == digest(stores.aws_key)
    assert digest((job.out / "KV_PASSWORD").read_text()) == digest(stores.kv_password)
    [both] = [p for p in cache.iterdir() if p.is_dir() and p != vault_install]
    assert both.name.endswith("-aws+core+vault"), both.name
    names = installed(both)
    assert {"botocore", "hvac"} <= names, sorted(names)
    # botocore is all the AWS backend imports: no boto3, no S3 transfer manager.
    assert not {"boto3", "s3transfer", "ruamel"} & names, sorted(names)
    assert installer(both, "botocore") == "uv"
    # The CLI wrote the bytecode of what it imported, for the next job on this runner.
    assert list(site_packages(both).glob("botocore/__pycache__/*.pyc"))
    assert check_no_value(log, stores.canaries), "a secret value reached the log"
