"""The GitLab include end to end: real pipelines run by gitlab-ci-local with the shell executor.

Each test writes a throw-away git repository holding ``.gitlab-ci.yml`` (``include: local:`` of
``gitlab/jobsecrets.yml``, copied in verbatim), a spec and gitlab-ci-local's variables file. The
job's ``VAULT_ID_TOKEN`` is a token signed with the test key, as GitLab's ``id_tokens:`` would
provide it; OpenBao's ``auth/jwt`` verifies it for real. AWS is a moto server (web identity).

What they prove, from outside the job: the job's script sees the values; the job log never shows
one (plain, base64, split over two writes, on stderr, the id token itself); every lease and token
is gone after the job, also when the script fails; a bad spec fails the job with a readable error.
Failure messages name leaked *forms*, never values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from jobsecrets import __version__
from support.moto_server import MotoServer, allow, create_web_identity_role, policy
from support.oidc import public_pem, sign
from support.openbao import OpenBaoServer
from support.postgres import PostgresServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
INCLUDE = REPO_ROOT / "gitlab" / "jobsecrets.yml"
GCL = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"
JWT_MOUNT = "jwt-gitlab"
AWS_REGION = "us-east-1"


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass
class Stack:
    """The servers' side: names on the shared OpenBao, the moto server and the values to find."""

    openbao: OpenBaoServer
    postgres: PostgresServer
    moto: MotoServer
    key: rsa.RSAPrivateKey
    kv_mount: str
    db_mount: str
    role: str
    role_arn: str
    password: str
    api_key: str
    aws_token: str

    def token(self, **claims: object) -> str:
        """A GitLab-style id token for this job (aud for both Vault and STS)."""
        now = int(time.time())
        body: dict[str, object] = {
            "iss": "https://gitlab.example.com",
            "sub": "project_path:acme/app:ref_type:branch:ref:main",
            "aud": ["vault", "sts.amazonaws.com"],
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
            "project_path": "acme/app",
            "ref": "main",
            "ref_type": "branch",
            "job_id": "42",
        }
        body.update(claims)
        return sign(body, self.key)

    def spec(self, *, aws: bool = True) -> str:
        """A spec reading KV, dynamic database credentials and (optionally) an AWS secret."""
        text = (
            "version: 1\n"
            "backends:\n"
            "  vault:\n"
            "    type: vault\n"
            f"    address: {self.openbao.address}\n"
            f"    auth: {{method: jwt, role: {self.role}, mount: {JWT_MOUNT}, audience: vault}}\n"
        )
        if aws:
            text += (
                f"  aws:\n    type: aws\n    region: {AWS_REGION}\n    role_arn: {self.role_arn}\n"
            )
        text += (
            "secrets:\n"
            f"  APP_PASSWORD: vault:{self.kv_mount}/app#password\n"
            f"  APP_API_KEY: vault:{self.kv_mount}/app#api_key\n"
            f"  DB_USER: vault:{self.db_mount}/creds/ci#username\n"
            f"  DB_PASS: vault:{self.db_mount}/creds/ci#password\n"
        )
        if aws:
            text += "  AWS_TOKEN: aws:gitlab/app#token\n"
        return text

    def lease_alive(self, lease_id: str) -> bool:
        return self.openbao.lease_exists(lease_id)

    def accessor_alive(self, accessor: str) -> bool:
        try:
            self.openbao.client().auth.token.lookup_accessor(accessor)
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
            return False
        return True

    def db_leases(self) -> list[str]:
        try:
            reply = self.openbao.client().sys.list_leases(f"{self.db_mount}/creds/ci/")
        except hvac.exceptions.InvalidPath:
            return []
        return list(reply["data"]["keys"])


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    openbao: OpenBaoServer, postgres: PostgresServer, moto: MotoServer, oidc_key: rsa.RSAPrivateKey
) -> Stack:
    uid = uuid.uuid4().hex[:8]
    kv, db, role = f"glkv-{uid}", f"gldb-{uid}", f"gitlab-{uid}"
    password, api_key, aws_token = (secrets.token_urlsafe(24) for _ in range(3))
    openbao.enable_kv(kv, version=2)
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path="app", secret={"password": password, "api_key": api_key}, mount_point=kv
    )
    openbao.enable_database(postgres, mount=db, default_ttl="5m", max_ttl="10m")
    openbao.write_policy(
        role,
        f'path "{kv}/data/*" {{ capabilities = ["read"] }}\n'
        f'path "{db}/creds/ci" {{ capabilities = ["read"] }}\n'
        f'path "sys/leases/revoke/{db}/creds/*" {{ capabilities = ["update"] }}\n',
    )
    openbao.enable_jwt(
        public_pem(oidc_key),
        role,
        bound_claims={"project_path": "acme/app", "ref_type": "branch"},
        policies=[role],
        ttl="10m",
        mount=JWT_MOUNT,
    )
    moto.client("secretsmanager").create_secret(
        Name="gitlab/app", SecretString=json.dumps({"token": aws_token})
    )
    role_arn = create_web_identity_role(
        moto.client("iam"), f"gitlab-{uid}", policy(allow("secretsmanager:*"))
    )
    return Stack(
        openbao, postgres, moto, oidc_key, kv, db, role, role_arn, password, api_key, aws_token
    )


@dataclass
class JobRun:
    """One gitlab-ci-local run: its exit code, everything it printed and the job's own log."""

    code: int
    output: str
    log: str

    secrets: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return self.output + "\n" + self.log

    def tail(self, size: int = 3000) -> str:
        """The end of the output for an assertion message, every known value cut out."""
        text = self.output[-size:]
        for value in self.secrets:
            for form in (value, base64.b64encode(value.encode()).decode()):
                text = text.replace(form, "<value>")
        return text


def run_pipeline(
    tmp_path: Path,
    stack: Stack,
    job: Mapping[str, object],
    *,
    spec: str | None = None,
    inputs: Mapping[str, object] | None = None,
    token: str | None = None,
    token_variable: str = "VAULT_ID_TOKEN",  # noqa: S107 - a variable name
    job_name: str = "deploy",
    gitlab_ci: bool = True,
    files: Mapping[str, str] | None = None,
) -> JobRun:
    """Run ``job`` (extending ``.jobsecrets``) in a fresh repository (holding ``files`` too:
    relative path -> text); wait for it to finish."""
    repo = tmp_path / "repo"
    (repo / "gitlab").mkdir(parents=True)
    for relative, text in (files or {}).items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    shutil.copyfile(INCLUDE, repo / "gitlab" / "jobsecrets.yml")
    pipeline = {
        "include": [
            {"local": "gitlab/jobsecrets.yml", "inputs": {"install": "none", **(inputs or {})}}
        ],
        job_name: {"extends": ".jobsecrets", **job},
    }
    (repo / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    (repo / "jobsecrets.yml").write_text(spec if spec is not None else stack.spec())
    (repo / ".gitignore").write_text(".gitlab-ci-local*\n")
    # The id token travels in gitlab-ci-local's variables file, not in its argv.
    # gitlab_ci=False keeps gitlab-ci-local's own GITLAB_CI=false, as a user running it locally has.
    variables = {token_variable: token or stack.token()}
    if gitlab_ci:
        variables["GITLAB_CI"] = "true"
    (repo / ".gitlab-ci-local-variables.yml").write_text(yaml.safe_dump(variables))
    git = [
        "git",
        "-c",
        "user.email=ci@example.com",
        "-c",
        "user.name=ci",
        "-c",
        "init.defaultBranch=main",
    ]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "pipeline"], cwd=repo, check=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("VAULT_", "BAO_", "AWS_", "GITHUB_", "GITLAB_", "CI_", "JOBSECRETS_", "RUNNER_")
        )
        and k not in ("CI",)
    }
    env.update(
        {
            # `install: none`: the CLI under test, from the dev virtualenv.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "HOME": str(tmp_path),
            "AWS_ENDPOINT_URL": stack.moto.endpoint,
            "AWS_REGION": AWS_REGION,
            **({"GCL_IGNORE_PREDEFINED_VARS": "GITLAB_CI"} if gitlab_ci else {}),
        }
    )
    proc = subprocess.run(
        [str(GCL), "--no-color", job_name],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    log_path = repo / ".gitlab-ci-local" / "output" / f"{job_name}.log"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    known = (stack.password, stack.api_key, stack.aws_token, variables[token_variable])
    return JobRun(proc.returncode, proc.stdout + proc.stderr, log, known)


def leaked_forms(text: str, values: Mapping[str, str]) -> list[str]:
    """Which forms of which named values occur in ``text`` (names only, never the values)."""
    found = []
    for name, value in values.items():
        forms = {
            "plain": value,
            "base64": base64.b64encode(value.encode()).decode(),
            "base64 with newline": base64.b64encode(value.encode() + b"\n").decode(),
        }
        found += [f"{name} ({form})" for form, text_form in forms.items() if text_form in text]
    return found


def state_ids(run: JobRun, label: str) -> list[str]:
    """The ids the job printed after ``label`` (lease ids or token accessors; not secret)."""
    for line in run.log.splitlines():
        if line.startswith(f"{label}:"):
            return line.split(":", 1)[1].split()
    return []


# Prints the lease ids and token accessors of this job's state file: what must be gone afterwards.
PRINT_STATE = (
    'python3 -c "import glob, json, os; '
    "p = glob.glob(os.environ['CI_PROJECT_DIR'] + '.tmp/jobsecrets-*/state-' + os.environ['CI_JOB_ID'] + '.json')[0]; "
    "s = json.load(open(p)); "
    "print('LEASES:', *[l['lease_id'] for l in s['leases']]); "
    "print('ACCESSORS:', *[t['accessor'] for t in s['tokens']])\""
)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_job_sees_values_the_log_shows_none_and_everything_is_revoked(
    tmp_path: Path, stack: Stack
) -> None:
    token = stack.token()
    script = [
        # The values are there: their digests (not the values) are printed and compared.
        'echo "SEES password=$(printf %s "$APP_PASSWORD" | sha256sum | cut -c1-64)"',
        'echo "SEES aws=$(printf %s "$AWS_TOKEN" | sha256sum | cut -c1-64)"',
        'test -n "$DB_USER" && test -n "$DB_PASS" && echo "SEES db credentials"',
        # Every way a careless script prints them: all must come out masked.
        'echo "plain $APP_PASSWORD and $APP_API_KEY"',
        'echo "$APP_PASSWORD" | base64',
        'printf %s "$APP_API_KEY" | base64; echo',
        'echo -n "split ${APP_PASSWORD:0:10}"; echo "${APP_PASSWORD:10}"',
        'echo "to stderr $AWS_TOKEN" >&2',
        'echo "db $DB_USER / $DB_PASS"',
        'echo "the id token $VAULT_ID_TOKEN"',
        PRINT_STATE,
        # A bare `wait` must not wait for the redactor; a burst of output at the end is not lost.
        "(sleep 0.1) & wait",
        "seq 1 20000 | sed 's/^/burst /'",
        'printf "LAST LINE without newline"',
    ]
    run = run_pipeline(
        tmp_path,
        stack,
        {
            "id_tokens": {"VAULT_ID_TOKEN": {"aud": ["vault", "sts.amazonaws.com"]}},
            "script": script,
        },
        token=token,
    )
    assert run.code == 0, run.tail()
    assert f"SEES password={digest(stack.password)}" in run.log
    assert f"SEES aws={digest(stack.aws_token)}" in run.log
    assert "SEES db credentials" in run.log
    assert "plain *** and ***" in run.log
    assert "split ***" in run.log
    assert "to stderr ***" in run.log
    assert "the id token ***" in run.log
    leaks = leaked_forms(
        run.text,
        {
            "APP_PASSWORD": stack.password,
            "APP_API_KEY": stack.api_key,
            "AWS_TOKEN": stack.aws_token,
            "VAULT_ID_TOKEN": token,
        },
    )
    assert leaks == []
    # Nothing lost or reordered at the end: the last burst line and the unterminated last line
    # are in the log before after_script starts.
    log = run.log
    assert "burst 20000" in log and "LAST LINE without newline" in log
    assert log.index("LAST LINE without newline") < log.index("revoked")
    leases, accessors = state_ids(run, "LEASES"), state_ids(run, "ACCESSORS")
    assert len(leases) == 1 and len(accessors) == 1
    assert "revoked 1 lease(s) and 1 token(s)" in log
    assert _wait_until(lambda: not any(stack.lease_alive(lease) for lease in leases))
    assert not any(stack.accessor_alive(accessor) for accessor in accessors)


def test_failing_script_keeps_its_exit_code_and_still_revokes(tmp_path: Path, stack: Stack) -> None:
    script = [PRINT_STATE, 'echo "about to fail with $APP_PASSWORD"', "exit 7"]
    run = run_pipeline(tmp_path, stack, {"script": script}, spec=stack.spec(aws=False))
    assert run.code != 0
    assert "FAIL 7" in run.output
    assert "about to fail with ***" in run.log
    assert leaked_forms(run.text, {"APP_PASSWORD": stack.password}) == []
    leases, accessors = state_ids(run, "LEASES"), state_ids(run, "ACCESSORS")
    assert len(leases) == 1 and len(accessors) == 1
    assert "revoked 1 lease(s) and 1 token(s)" in run.log
    assert _wait_until(lambda: not any(stack.lease_alive(lease) for lease in leases))
    assert not any(stack.accessor_alive(accessor) for accessor in accessors)


def test_a_redact_wait_with_a_unit_still_fails_a_job_whose_scan_finds_a_leak(
    tmp_path: Path, stack: Stack
) -> None:
    """JOBSECRETS_REDACT_WAIT went into $(( )) as it was: "30s" is an arithmetic error there,
    which ended the EXIT trap after the scan had found the leak but before ``exit $__js_rc``:
    the job passed with its artifacts. Now anything but 1-5 plain digits is the default."""
    leaky = {
        "variables": {"JOBSECRETS_REDACT_WAIT": "30s"},
        "script": ["mkdir -p dist", 'printf "%s" "$APP_API_KEY" | base64 > dist/key.txt'],
        "artifacts": {"paths": ["dist/"]},
    }
    run = run_pipeline(tmp_path, stack, leaky, spec=stack.spec(aws=False), inputs={"scan": "dist"})
    assert run.code != 0, run.tail()
    assert "1 finding(s)" in run.log
    assert "value too great for base" not in run.text


def test_a_redact_wait_is_never_run_as_code(tmp_path: Path, stack: Stack) -> None:
    """In bash, $(( a[$(cmd)] )) runs cmd: the variable's value was a command to the job."""
    wait = "a[$(touch $CI_PROJECT_DIR/ran-from-redact-wait)]"
    run = run_pipeline(
        tmp_path,
        stack,
        {"variables": {"JOBSECRETS_REDACT_WAIT": wait}, "script": ["echo ran", "exit 7"]},
        spec=stack.spec(aws=False),
    )
    assert "FAIL 7" in run.output
    # Wherever CI_PROJECT_DIR is (gitlab-ci-local builds in a copy under the repository).
    assert list(tmp_path.rglob("ran-from-redact-wait")) == []
    assert "revoked 1 lease(s) and 1 token(s)" in run.log


def test_job_shell_killed_by_a_signal_still_revokes(tmp_path: Path, stack: Stack) -> None:
    """What a cancelled job looks like from inside: the shell dies by SIGTERM, no EXIT trap runs;
    the redactor still drains what was printed, and after_script (a new shell) revokes."""
    script = [PRINT_STATE, 'echo "dying with $APP_API_KEY"', "kill -TERM $$"]
    run = run_pipeline(tmp_path, stack, {"script": script}, spec=stack.spec(aws=False))
    assert run.code != 0
    assert "dying with ***" in run.log
    assert leaked_forms(run.text, {"APP_API_KEY": stack.api_key}) == []
    leases, accessors = state_ids(run, "LEASES"), state_ids(run, "ACCESSORS")
    assert len(leases) == 1 and len(accessors) == 1
    assert "revoked 1 lease(s) and 1 token(s)" in run.log
    assert _wait_until(lambda: not any(stack.lease_alive(lease) for lease in leases))
    assert not any(stack.accessor_alive(accessor) for accessor in accessors)


def test_bad_spec_fails_the_job_with_a_readable_error(tmp_path: Path, stack: Stack) -> None:
    leases_before = set(stack.db_leases())
    spec = stack.spec(aws=False) + "  BROKEN: nowhere:some/path#field\n"
    run = run_pipeline(tmp_path, stack, {"script": ['echo "SCRIPT RAN"']}, spec=spec)
    assert run.code != 0
    assert "FAIL 2" in run.output
    assert "SCRIPT RAN" not in run.log
    assert "jobsecrets: error:" in run.log
    assert "jobsecrets.yml:" in run.log and "nowhere" in run.log
    assert "could not resolve this job's secrets" in run.log
    # Nothing was fetched, so nothing is left behind.
    assert set(stack.db_leases()) == leases_before


def test_redact_off_still_exports_and_says_so(tmp_path: Path, stack: Stack) -> None:
    script = ['echo "SEES password=$(printf %s "$APP_PASSWORD" | sha256sum | cut -c1-64)"']
    run = run_pipeline(
        tmp_path, stack, {"script": script}, spec=stack.spec(aws=False), inputs={"redact": False}
    )
    assert run.code == 0, run.tail()
    assert f"SEES password={digest(stack.password)}" in run.log
    assert "redact is off" in run.log


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_install_from_a_checkout_with_a_custom_id_token_variable(
    tmp_path: Path, stack: Stack, installer: str
) -> None:
    """``install: path`` builds the CLI into its own virtualenv (the slow test: pip builds it),
    with uv when it is on PATH (the dev virtualenv's bin is, here), else pip; neither compiles
    modules nobody imports (a Vault-only job never imports botocore)."""
    site = '"${CI_PROJECT_DIR}.tmp/jobsecrets/venv/lib/"python3*/site-packages'
    script = [
        'test "$(command -v jobsecrets)" = "${CI_PROJECT_DIR}.tmp/jobsecrets/bin/jobsecrets"',
        # The virtualenv's python does not shadow the job's.
        'test "$(command -v python3)" != "${CI_PROJECT_DIR}.tmp/jobsecrets/venv/bin/python3"',
        'echo "key $APP_API_KEY"',
        f'echo "installed by $(cat {site}/hvac-*.dist-info/INSTALLER)"',
        f"test -d {site}/botocore && test ! -d {site}/botocore/__pycache__ && echo no-botocore-pyc",
        # pip: the job's own pip (23+) installed into a virtualenv made without one (ensurepip
        # takes seconds); uv never needs one.
        'test ! -e "${CI_PROJECT_DIR}.tmp/jobsecrets/venv/bin/pip" && echo no-pip-in-venv',
    ]
    variables = {"JOBSECRETS_INSTALLER": "pip"} if installer == "pip" else {}
    run = run_pipeline(
        tmp_path,
        stack,
        {
            "id_tokens": {"OPENBAO_TOKEN": {"aud": "vault"}},
            "variables": variables,
            "script": script,
        },
        spec=stack.spec(aws=False),
        inputs={
            "install": "path",
            "install_path": str(REPO_ROOT),
            "id_token_variable": "OPENBAO_TOKEN",
        },
        token_variable="OPENBAO_TOKEN",
    )
    assert run.code == 0, run.tail()
    assert "key ***" in run.log
    assert f"installed by {installer}" in run.log, run.tail()
    assert "no-botocore-pyc" in run.log, run.tail()
    assert "no-pip-in-venv" in run.log, run.tail()
    assert leaked_forms(run.text, {"APP_API_KEY": stack.api_key}) == []


def test_install_with_a_python_whose_pip_cannot_target_a_venv(tmp_path: Path, stack: Stack) -> None:
    """A job Python without pip 23+ (no pip at all here): the virtualenv gets its own pip and
    installs the checkout with it, as before the job's pip was used. The project's own
    ``venv.py`` and ``pip/`` are not what ``-m venv`` and ``-m pip`` run (they ran from the
    project directory, first on sys.path: python -I now)."""
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    assert subprocess.run([str(bare / "bin" / "python"), "-c", "import pip"]).returncode != 0
    plant = "import pathlib; pathlib.Path('shadowed-{0}').write_text('')\n"
    script = [
        'test -x "${CI_PROJECT_DIR}.tmp/jobsecrets/venv/bin/pip" && echo venv-has-pip',
        "test ! -e shadowed-venv && test ! -e shadowed-pip && echo not-shadowed",
        'echo "key $APP_API_KEY"',
    ]
    run = run_pipeline(
        tmp_path,
        stack,
        {"variables": {"JOBSECRETS_INSTALLER": "pip"}, "script": script},
        spec=stack.spec(aws=False),
        inputs={
            "install": "path",
            "install_path": str(REPO_ROOT),
            "python": str(bare / "bin" / "python"),
        },
        files={"venv.py": plant.format("venv"), "pip/__init__.py": plant.format("pip")},
    )
    assert run.code == 0, run.tail()
    assert "venv-has-pip" in run.log, run.tail()
    assert "not-shadowed" in run.log, run.tail()
    assert "key ***" in run.log
    assert leaked_forms(run.text, {"APP_API_KEY": stack.api_key}) == []


@pytest.mark.parametrize("asked", ["the same version", "another version"])
def test_an_install_kept_by_a_shell_executor_is_used_as_it_is(
    tmp_path: Path, stack: Stack, asked: str
) -> None:
    """``install: pypi`` with the virtualenv of an earlier job still there (a shell executor keeps
    the build directory): the version asked for is there, so nothing is installed (pip would
    fail here: no index, no wheel); another version is installed (and fails)."""
    venv_bin = tmp_path / "repo.tmp" / "jobsecrets" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    # The earlier job's install: this checkout's CLI.
    version = __version__ if asked == "the same version" else "9.9.9"
    wrapper = venv_bin / "jobsecrets"
    wrapper.write_text(f'#!/bin/sh\nexec "{Path(sys.executable).parent / "jobsecrets"}" "$@"\n')
    wrapper.chmod(0o755)
    no_wheels = tmp_path / "no-wheels"
    no_wheels.mkdir()
    pip_finds_nothing = {
        "JOBSECRETS_INSTALLER": "pip",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(no_wheels),
    }
    run = run_pipeline(
        tmp_path,
        stack,
        {"variables": pip_finds_nothing, "script": ['echo "key $APP_API_KEY"']},
        spec=stack.spec(aws=False),
        inputs={"install": "pypi", "version": version},
    )
    if version == __version__:
        assert run.code == 0, run.tail()
        assert "key ***" in run.log
        # Shown once, from the check (the CLI is not started a second time for it).
        assert run.log.count(f"jobsecrets, version {__version__}") == 1, run.tail()
    else:
        assert run.code != 0, run.tail()
        assert "jobsecrets==9.9.9" in run.log, run.tail()
    assert leaked_forms(run.text, {"APP_API_KEY": stack.api_key}) == []


def test_scan_input_fails_the_job_before_artifacts_are_uploaded(
    tmp_path: Path, stack: Stack
) -> None:
    """Issue 19: `scan` looks in the artifacts and the dotenv report when the script ends."""
    leaky = {
        "script": [
            "mkdir -p dist",
            'printf "%s" "$APP_API_KEY" | base64 > dist/key.txt',
            "tar czf dist/bundle.tgz dist/key.txt",
            'echo "BUILD_ID=42" > build.env',
        ],
        "artifacts": {"paths": ["dist/"], "reports": {"dotenv": "build.env"}},
    }
    run = run_pipeline(
        tmp_path / "leaky",
        stack,
        leaky,
        spec=stack.spec(aws=False),
        inputs={"scan": "dist build.env"},
    )
    assert run.code != 0, run.tail()
    assert "dist/key.txt:1: offset 0: APP_API_KEY (base64)" in run.log, run.tail()
    assert "dist/bundle.tgz!dist/key.txt:1: offset 0: APP_API_KEY (base64)" in run.log
    assert "2 finding(s)" in run.log
    assert "did not run when the script ended" not in run.log, "the plain case scans once"
    assert leaked_forms(run.text, {"APP_API_KEY": stack.api_key}) == []
    artifacts = tmp_path / "leaky" / "repo" / ".gitlab-ci-local" / "artifacts" / "deploy"
    assert not (artifacts / "dist" / "key.txt").exists(), "a failed job uploads nothing"

    clean = {
        "script": ["mkdir -p dist", "echo built > dist/app.txt", 'echo "BUILD_ID=42" > build.env'],
        "artifacts": {"paths": ["dist/"], "reports": {"dotenv": "build.env"}},
    }
    run = run_pipeline(
        tmp_path / "clean",
        stack,
        clean,
        spec=stack.spec(aws=False),
        inputs={"scan": "dist build.env", "redact": False},
    )
    assert run.code == 0, run.tail()
    assert "0 finding(s), 0 error(s)" in run.log
    # The place a successful job's artifacts go (so the check above can fail).
    uploaded = tmp_path / "clean" / "repo" / ".gitlab-ci-local" / "artifacts" / "deploy"
    assert (uploaded / "dist" / "app.txt").exists()


# A script's own EXIT trap (the common lock-file cleanup) replaces the include's; `exec` as the
# last command ends the shell without any trap. Either way the scan in the trap never runs.
LEAK_KEY = 'printf "%s" "$APP_API_KEY" | base64 > dist/key.txt'
ENDINGS = {
    "own-trap": ["trap 'rm -f build.lock' EXIT", "mkdir -p dist", LEAK_KEY, "echo built"],
    "exec": ["mkdir -p dist", LEAK_KEY, "exec sh -c 'echo built by exec'"],
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_scan_the_script_skipped_is_run_and_reported_by_after_script(
    tmp_path: Path, stack: Stack, ending: str
) -> None:
    """The scan was silently skipped and the job passed with the value in its artifacts. Now
    after_script (before the upload) sees the scan did not run, runs it and reports the finding
    by file, never by value; it cannot fail the job, so it says so."""
    job = {"script": ENDINGS[ending], "artifacts": {"paths": ["dist/"]}}
    run = run_pipeline(tmp_path, stack, job, spec=stack.spec(aws=False), inputs={"scan": "dist"})
    assert "built" in run.log, run.tail()
    assert "the scan of JOBSECRETS_SCAN did not run when the script ended" in run.log, run.tail()
    assert "dist/key.txt:1: offset 0: APP_API_KEY (base64)" in run.log, run.tail()
    assert "ERROR: a value of this job is in the files named above" in run.log
    assert leaked_forms(run.text, {"APP_API_KEY": stack.api_key}) == []
    # The report comes before the upload, and revoke still runs after it.
    assert run.log.index("APP_API_KEY (base64)") < run.log.index(
        "revoked 1 lease(s) and 1 token(s)"
    )


def test_a_script_that_calls_jobsecrets_finish_from_its_own_trap_keeps_the_gate(
    tmp_path: Path, stack: Stack
) -> None:
    """The documented way to keep both: the job fails in the script, the cleanup runs (and what
    it prints is masked, since the trap still writes through the redactor)."""
    trap = 'trap \'rc=$?; rm -f build.lock; echo "cleanup saw $APP_API_KEY"; jobsecrets_finish "$rc"\' EXIT'
    job = {
        "script": [trap, "touch build.lock", "mkdir -p dist", LEAK_KEY, "echo built"],
        "artifacts": {"paths": ["dist/"]},
    }
    run = run_pipeline(
        tmp_path / "leaky", stack, job, spec=stack.spec(aws=False), inputs={"scan": "dist"}
    )
    assert run.code != 0, run.tail()
    assert "1 finding(s)" in run.log, run.tail()
    assert "cleanup saw ***" in run.log, run.tail()
    assert "did not run when the script ended" not in run.log
    assert leaked_forms(run.text, {"APP_API_KEY": stack.api_key}) == []
    uploaded = tmp_path / "leaky" / "repo" / ".gitlab-ci-local" / "artifacts" / "deploy"
    assert not (uploaded / "dist" / "key.txt").exists(), "a failed job uploads nothing"

    # A clean script keeps its own exit code through the chained trap.
    job = {"script": [trap, "mkdir -p dist", "echo built > dist/app.txt", "exit 7"]}
    run = run_pipeline(
        tmp_path / "failing", stack, job, spec=stack.spec(aws=False), inputs={"scan": "dist"}
    )
    assert "FAIL 7" in run.output, run.tail()
    assert "0 finding(s), 0 error(s)" in run.log, run.tail()


def test_gitlab_ci_local_as_is_finds_the_id_token(tmp_path: Path, stack: Stack) -> None:
    """gitlab-ci-local sets GITLAB_CI=false: the job's id_tokens variable is still found."""
    script = ['echo "SEES password=$(printf %s "$APP_PASSWORD" | sha256sum | cut -c1-64)"']
    run = run_pipeline(
        tmp_path, stack, {"script": script}, spec=stack.spec(aws=False), gitlab_ci=False
    )
    assert run.code == 0, run.tail()
    assert f"SEES password={digest(stack.password)}" in run.log
    assert "instead of jwt login" not in run.text


def test_a_job_that_replaced_before_script_is_told_how_to_keep_ours(
    tmp_path: Path, stack: Stack
) -> None:
    job = {"before_script": ["echo setting up"], "script": ['test -z "$APP_PASSWORD"']}
    run = run_pipeline(tmp_path, stack, job, spec=stack.spec(aws=False))
    assert run.code == 0, run.tail()
    assert "the include's before_script did not run" in run.log
    assert "before_script: [!reference [.jobsecrets, before_script]" in run.log
