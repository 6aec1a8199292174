"""The GitHub Action step, timed under act: 50 Vault (+ 50 AWS) secrets, 20 ms each way per server.

What is timed is the step a user adds, as act reports it (``Success - Main inject [...]``): installing
the jobsecrets CLI (cold: an empty tool cache and Actions cache; restored: an empty tool cache, the
install restored from the Actions cache where an earlier job saved it; warm: the install of this ref
already in the tool cache), the OIDC token requests, jwt login to OpenBao, AssumeRoleWithWebIdentity, reading the 100 secrets, masking and
writing ``$GITHUB_ENV``. The post step (revoking the token) is reported on its own.

Servers are real and local: an OpenBao dev server (KV v2, one path per secret, jwt auth), a moto
server (Secrets Manager + STS) and a GitHub-style OIDC endpoint, each behind a latency proxy that
holds every chunk 20 ms in each direction (``bench/latency_proxy.py``). act's own Actions cache
server (the v1 API) sits behind such a proxy too. ``cold`` runs start with an empty
``$JOBSECRETS_TOOL_CACHE``, an empty Actions cache and ``PIP_NO_CACHE_DIR=1``, so every cold run
downloads the wheels from the package index, as the first job on a fresh hosted runner does, and
then saves the install in the Actions cache (the action's default). Cold runs alternate between a
Vault-only spec (50 Vault secrets: the action installs no botocore) and the mixed one (50 +
50), installed with pip (``JOBSECRETS_INSTALLER=pip``) on a runner that says it is GitHub-hosted
(``RUNNER_ENVIRONMENT``); ``--uv PATH`` adds the same two with that uv on the job's PATH, and
``--baseline REF`` the same two with the action at git REF (e.g. main), all in the same run,
after one untimed cold run that warms what the first run of all would pay for alone.
``--hosted-pip`` gives pip what a GitHub-hosted runner's has: PyPI and no configuration (this
machine's pip also reads local wheel directories and file:// indexes, which make every install
slower and which the action rightly respects, so without it the action never takes the locked
wheels' PyPI addresses).
``restored`` runs (``--restored N`` of each spec) start with an empty tool cache and an Actions
cache holding the install a previous run of the same spec saved: what every later job on a fresh
hosted runner pays; pip is pointed at an index that refuses connections, so a run that installed
instead would fail. Warm runs reuse the mixed spec's install in the tool cache, which writes
bytecode (a self-hosted runner). Cold and restored runs leave the install where the action puts it on
a GitHub-hosted runner by default, in memory (``/dev/shm/jobsecrets-<uid>``, emptied before each of
them; ``--baseline`` runs install on the disk, as the code before that did); ``--disk`` also times
each restored run with the install on the disk (``JOBSECRETS_TOOL_CACHE``).

``--anchors DIR`` times the two actions a user would otherwise use, in the same run, interleaved
with the restored runs, one job with both steps against the same servers and proxies:
hashicorp/vault-action (jwt sign-in with the job's OIDC token, the same 50 KV v2 secrets) and
aws-actions/aws-secretsmanager-get-secrets (the same 50 Secrets Manager secrets, with static test
credentials: it signs in to nothing, so it does less than the inject step's web identity). DIR
holds their published code (``action.yml`` and ``dist/``, JavaScript bundled by their authors, run
as they are) in ``vault-action/`` and ``aws-secretsmanager-get-secrets/``, e.g. ``git archive
v3.4.0 action.yml dist`` and ``git archive v3.0.1 action.yml dist`` of the two public
repositories; never committed here.

    .venv/bin/python bench/github_step.py [--cold 3] [--restored 5] [--warm 5] [--delay-ms 20]
        [--disk] [--anchors DIR] [--uv .venv/bin/uv] [--baseline main] [--hosted-pip] [--write]

Before the first run and after the last, ``python -c 'import hvac, boto3'`` plus one Secrets
Manager client is timed five times (``gauge`` in the output): this VM's speed swings by 1.5x
between hours, and our CPU-bound steps move with it far more than the anchors do, so a table is
only comparable with another of a like gauge.

``--write`` replaces the "## GitHub Action step" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from _common import (  # noqa: E402
    DOCS,
    bar_chart,
    floor_commands,
    machine_line,
    median,
    replace_section,
    time_process,
)
from latency_proxy import LatencyProxy  # noqa: E402

from support.act import act_command, action_checkout  # noqa: E402
from support.cli import clean_env  # noqa: E402
from support.moto_server import (  # noqa: E402
    MotoServer,
    allow,
    create_web_identity_role,
    policy,
    seed_secrets,
)
from support.oidc import GithubTokenServer, generate_key, public_pem  # noqa: E402
from support.openbao import OpenBaoServer  # noqa: E402

HEADING = "## GitHub Action step"
# What the table's rows are: the tool cache is emptied before every cold run.
KINDS = {
    "cold-vault": "cold, Vault only (50)",
    "cold": "cold, Vault + AWS (100)",
    "restored-vault": "restored from the Actions cache, Vault only (50)",
    "restored": "restored from the Actions cache, Vault + AWS (100)",
    "warm": "warm, Vault + AWS (100)",
}
# Where the action keeps a GitHub-hosted runner's install by default (actions/inject/lib.js,
# memoryRoot): emptied before every run on a fresh runner.
MEMORY_ROOT = Path("/dev/shm") / f"jobsecrets-{os.getuid()}"
N_VAULT = 50
N_AWS = 50

WORKFLOW = """\
on: push
permissions:
  id-token: write
jobs:
  bench:
    runs-on: ubuntu-latest
    steps:
      - name: checkout
        run: cp "$BENCH_SRC/jobsecrets.yml" .
      - name: inject
        uses: acme/jobsecrets/actions/inject@v1
        with:
          audience: vault
      - name: check
        run: test -n "$V49" && { [ "$BENCH_AWS" = false ] || test -n "$A49"; }
"""


ANCHOR_WORKFLOW = """\
on: push
permissions:
  id-token: write
jobs:
  bench:
    runs-on: ubuntu-latest
    steps:
      - name: vault
        uses: hashicorp/vault-action@v3
        with:
          url: ${{ env.VAULT_ADDR }}
          method: jwt
          path: jwt
          role: bench
          jwtGithubAudience: vault
          secrets: |
VAULT_LINES
      - name: aws
        uses: aws-actions/aws-secretsmanager-get-secrets@v3
        env:
          AWS_ACCESS_KEY_ID: bench-not-a-key
          AWS_SECRET_ACCESS_KEY: bench-not-a-secret
          AWS_REGION: us-east-1
        with:
          secret-ids: |
AWS_LINES
      - name: check
        run: test -n "$V49" && test -n "$A49"
""".replace(
    "VAULT_LINES",
    "\n".join(f"            secret/data/bench/s{i} value | V{i} ;" for i in range(N_VAULT)),
).replace("AWS_LINES", "\n".join(f"            A{i},bench/s{i}" for i in range(N_AWS)))
ANCHORS = {
    "vault-action": "hashicorp/vault-action@v3",
    "aws-secretsmanager-get-secrets": "aws-actions/aws-secretsmanager-get-secrets@v3",
}
_STEP = re.compile(r"(Success|Failure) - Main (vault|aws) \[([\d.]+)(ms|s|m)")


def spec(role_arn: str, aws: bool = True) -> str:
    """100 variables: one KV v2 path per Vault secret, one Secrets Manager id per AWS secret
    (``aws=False``: the 50 Vault ones only, and no AWS backend)."""
    lines = [
        "version: 1",
        "backends:",
        "  vault:",
        "    type: vault",
        "    auth: {method: jwt, role: bench, mount: jwt}",
    ]
    if aws:
        lines += ["  aws:", "    type: aws", "    region: us-east-1", f"    role_arn: {role_arn}"]
    lines += ["secrets:"]
    lines += [f"  V{i}: vault:secret/bench/s{i}#value" for i in range(N_VAULT)]
    if aws:
        lines += [f"  A{i}: aws:bench/s{i}" for i in range(N_AWS)]
    return "\n".join(lines) + "\n"


@contextmanager
def servers(delay_ms: float) -> Iterator[dict[str, str]]:
    """Seeded servers behind latency proxies; yields the job's environment."""
    key = generate_key()
    with ExitStack() as stack:
        bao = stack.enter_context(OpenBaoServer())
        moto = stack.enter_context(MotoServer())
        oidc = stack.enter_context(GithubTokenServer(key))
        client = bao.client()
        for i in range(N_VAULT):
            client.secrets.kv.v2.create_or_update_secret(
                f"bench/s{i}", {"value": secrets.token_urlsafe(24)}, mount_point="secret"
            )
        bao.write_policy("bench", 'path "secret/data/bench/*" { capabilities = ["read"] }\n')
        bao.enable_jwt(public_pem(key), role_name="bench", policies=["bench"])
        seed_secrets(
            moto.client("secretsmanager"),
            {f"bench/s{i}": secrets.token_urlsafe(24) for i in range(N_AWS)},
        )
        role_arn = create_web_identity_role(
            moto.client("iam"), "bench", policy(allow("secretsmanager:*"))
        )
        proxies = {}
        for name, url in (("bao", bao.address), ("moto", moto.endpoint), ("oidc", oidc.url)):
            port = urllib.parse.urlsplit(url).port or 0
            proxies[name] = stack.enter_context(LatencyProxy("127.0.0.1", port, delay_ms=delay_ms))
        token_url = proxies["oidc"].url + "/token?api-version=2.0"
        yield {
            **oidc.env(),
            "ACTIONS_ID_TOKEN_REQUEST_URL": token_url,
            "VAULT_ADDR": proxies["bao"].url,
            "AWS_ENDPOINT_URL": proxies["moto"].url,
            "ROLE_ARN": role_arn,
        }


def action_repo(dest: Path, ref: str | None = None) -> Path:
    """The action's repository at this ref (or at git ``ref``), as GitHub would download it."""
    if ref:
        dest.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "actions", "src", "pyproject.toml"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return dest
    return action_checkout(dest)


_DURATION = re.compile(r"(Success|Failure) - (Main|Post) inject \[([\d.]+)(ms|s|m)")
_RESTORED = re.compile(
    r"restored the install from the Actions cache into \S+ \([^)]*\) in ([\d.]+) s"
    # What the action says the restore cost (since round 11): archive MB, lookup, download.
    r"(?: \(([\d.]+) MB; lookup ([\d.]+) s, download and unpack ([\d.]+) s\))?"
)
_SAVED = re.compile(r"saved the install in the Actions cache \(([\d.]+) MB, ([\d.]+) s\)")


def _seconds(number: str, unit: str) -> float:
    return float(number) / 1000 if unit == "ms" else float(number) * (60 if unit == "m" else 1)


def free_port() -> int:
    """A loopback port free now (for act's cache server, which the latency proxy fronts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# pip settings that name where packages come from (this machine's, not a hosted runner's).
_PIP_SOURCES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_INDEX",
)
#: --hosted-pip: pip as a GitHub-hosted runner has it, PyPI and nothing else.
HOSTED_PIP = False
#: A directory put first on the job's PATH, or "" (--python-shim): its `python3` is the
#: interpreter itself, as on a GitHub-hosted runner (/usr/bin/python3, or the tool cache's bin/
#: that actions/setup-python puts on PATH). This machine's `python3` is a pyenv shim, a shell
#: script that runs pyenv: ~80-100 ms for each call, which the action's probe of a runner it has
#: not seen yet pays (lib.js findPythonMemo; restored and cold rows).
RUNNER_PYTHON_DIR = ""


def _runner_python_dir(parent: Path) -> str:
    """A directory in ``parent`` holding only ``python3``, a link to this interpreter's base."""
    bin_dir = parent / "runner-bin"
    bin_dir.mkdir()
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    (bin_dir / "python3").symlink_to(base)
    return str(bin_dir)


def _job_path(path: str) -> str:
    """``path`` with RUNNER_PYTHON_DIR first."""
    return f"{RUNNER_PYTHON_DIR}:{path}" if RUNNER_PYTHON_DIR else path


def _act_env() -> dict[str, str]:
    """act's environment, which its host-run steps inherit. With ``HOSTED_PIP``, pip reads no
    configuration file (``PIP_CONFIG_FILE=/dev/null``, pip's own switch) and no index or
    find-links variable: this machine's pip adds local wheel directories and file:// indexes that
    a hosted runner does not have. ``PATH`` starts with RUNNER_PYTHON_DIR."""
    env = clean_env()
    env["PATH"] = _job_path(env["PATH"])
    if HOSTED_PIP:
        for name in _PIP_SOURCES:
            env.pop(name, None)
        env["PIP_CONFIG_FILE"] = os.devnull
    return env


def _run_act(args: list[str], workspace: Path, what: str) -> subprocess.CompletedProcess[str]:
    """Run act; a failed run ends the benchmark with the log's last 30 lines."""
    result = subprocess.run(
        args,
        cwd=workspace,
        env=_act_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        _fail(f"the {what} failed (exit {result.returncode})", result.stdout)
    return result


def _fail(why: str, log: str) -> NoReturn:
    tail = "\n".join(log.splitlines()[-30:])
    raise SystemExit(f"{why}:\n{tail}")


def run_once(
    workspace: Path,
    repo: Path,
    env: Mapping[str, str],
    cache: tuple[Path, int, str] | None = None,
    expect: str | None = None,
) -> tuple[float, float, str]:
    """One workflow run; returns (main step seconds, post step seconds) as act measured them and
    the log. ``cache``: act's cache server (storage directory, port, the proxy's URL in front of
    it). ``expect``: a line the log must have (what the run claims to measure)."""
    cache_dir, cache_port, cache_url = cache if cache else (None, 0, None)
    args = act_command(
        workspace,
        "bench.yml",
        "acme/jobsecrets@v1",
        repo,
        env,
        cache_dir=cache_dir,
        cache_port=cache_port,
        cache_external_url=cache_url,
    )
    result = _run_act(args, workspace, "workflow")
    times = {m[1]: _seconds(m[2], m[3]) for m in _DURATION.findall(result.stdout)}
    if "Main" not in times or "Post" not in times:
        _fail("the workflow reported no main or post step", result.stdout)
    if expect and expect not in result.stdout:
        _fail(f"the run did not do what it measures ({expect!r} missing)", result.stdout)
    return times["Main"], times["Post"], result.stdout


def run_anchors(
    workspace: Path, anchors: Path, env: Mapping[str, str], stub_repo: Path
) -> tuple[float, float]:
    """One job with vault-action's step and the AWS action's step; their seconds as act measured."""
    args = act_command(workspace, "anchor.yml", "acme/unused@v0", stub_repo, env)
    for name, ref in ANCHORS.items():
        args += ["--local-repository", f"{ref}={anchors / name}"]
    result = _run_act(args, workspace, "anchor workflow")
    times = {m[1]: _seconds(m[2], m[3]) for m in _STEP.findall(result.stdout) if m[0] == "Success"}
    if set(times) != {"vault", "aws"}:
        _fail("the anchor workflow did not run both steps", result.stdout)
    return times["vault"], times["aws"]


def kind_label(kind: str, baseline: str | None) -> str:
    """The table's name for a kind of run: "cold, Vault only (50)", "main: cold, ...", "... uv"."""
    base = kind.removeprefix("baseline-").removesuffix("-uv").removesuffix("-disk")
    label = KINDS[base] + (", uv" if kind.endswith("-uv") else "")
    label += ", install on the disk (JOBSECRETS_TOOL_CACHE)" if kind.endswith("-disk") else ""
    return f"{baseline}: {label}" if kind.startswith("baseline-") else label


def warm_order(n: int, baseline: Path | None) -> list[Path | None]:
    """The actions of the ``n``-th warm repetition, in the order they run (None: this code's).

    With a baseline, which goes first alternates: with ours always first, the baseline's warm row
    came out 0.02-0.04 s quicker with the same main step (rounds 12 and 13). Without one, ours
    runs once per repetition (it used to run twice, so ``--warm 6`` gave 12 runs).
    """
    if baseline is None:
        return [None]
    return [None, baseline] if n % 2 == 0 else [baseline, None]


#: The CPU-bound work timed before and after the runs, to say how quick the machine was.
GAUGE = "import hvac, boto3 + one client"


def gauge(runs: int = 5) -> list[float]:
    """Wall times of ``python -c 'import hvac, boto3'`` plus one Secrets Manager client.

    This VM's speed swings 1.5x within an hour; the anchors, which mostly wait on round trips,
    move 2-6% while our CPU-bound steps move 20-30%. This gauge (what every AWS caller pays in
    CPU) timed around the runs lets tables of different hours be compared.
    """
    argv = floor_commands()[GAUGE]
    return [time_process(argv).seconds for _ in range(runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", type=int, default=3, help="runs with an empty tool cache")
    parser.add_argument("--warm", type=int, default=5, help="runs reusing the cached install")
    parser.add_argument(
        "--restored",
        type=int,
        default=5,
        help="runs of each spec restoring the install from the Actions cache into an empty tool cache",
    )
    parser.add_argument("--delay-ms", type=float, default=20.0, help="latency each way")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--uv", help="put this uv executable on the job's PATH")
    parser.add_argument(
        "--anchors",
        type=Path,
        help="a directory with vault-action/ and aws-secretsmanager-get-secrets/ (see above)",
    )
    parser.add_argument(
        "--disk",
        action="store_true",
        help="also time each restored run with the install on the disk (JOBSECRETS_TOOL_CACHE), "
        "not in memory as on a hosted runner by default",
    )
    parser.add_argument(
        "--baseline", help="git ref whose action is timed cold in the same run (e.g. main)"
    )
    parser.add_argument(
        "--hosted-pip",
        action="store_true",
        help="pip configured as on a GitHub-hosted runner (PyPI only, no config file)",
    )
    parser.add_argument(
        "--python-shim",
        action="store_true",
        help="leave this machine's PATH as it is (python3 a pyenv shim) instead of putting a "
        "directory first whose python3 is the interpreter, as on a GitHub-hosted runner",
    )
    args = parser.parse_args(argv)
    global HOSTED_PIP, RUNNER_PYTHON_DIR
    HOSTED_PIP = args.hosted_pip

    cache_port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="jobsecrets-bench-gh-") as tmp,
        servers(args.delay_ms) as job_env,
        LatencyProxy("127.0.0.1", cache_port, delay_ms=args.delay_ms) as cache_proxy,
    ):
        base = Path(tmp)
        if not args.python_shim:
            RUNNER_PYTHON_DIR = _runner_python_dir(base)
        repo = action_repo(base / "repo")
        workspace = base / "ws"
        (workspace / ".github" / "workflows").mkdir(parents=True)
        (workspace / ".github" / "workflows" / "bench.yml").write_text(WORKFLOW)
        (workspace / ".github" / "workflows" / "anchor.yml").write_text(ANCHOR_WORKFLOW)
        (workspace / "jobsecrets.yml").write_text(spec(job_env["ROLE_ARN"]))
        subprocess.run(["git", "init", "-q", str(workspace)], check=True)
        subprocess.run(
            [
                *("git", "-C", str(workspace), "-c", "user.email=b@example.com", "-c"),
                *("user.name=b", "commit", "-q", "--allow-empty", "-m", "bench"),
            ],
            check=True,
        )
        env = {k: v for k, v in job_env.items() if k != "ROLE_ARN"}
        env["BENCH_SRC"] = str(workspace)
        results: dict[str, list[tuple[float, float]]] = {
            k: []
            for k in [
                *KINDS,
                *(f"{k}-uv" for k in KINDS),
                *(f"{k}-disk" for k in KINDS),
                *(f"baseline-{k}" for k in KINDS),
            ]
        }
        anchor_times: list[tuple[float, float]] = []
        # What the first jobs paid to save the install: (archive MB, seconds), per spec.
        saves: dict[str, list[tuple[float, float]]] = {"vault": [], "mixed": []}
        # How long the restore itself took, as the action logs it (lookup, download, unpack).
        restores: dict[str, list[float]] = {}
        restore_parts: dict[str, list[tuple[float, float]]] = {}
        cache = base / "tool-cache"
        uv_cache = base / "uv-cache"
        # The Actions cache of the cold runs (emptied before each) and the one holding the
        # installs the restored runs restore.
        cold_actions_cache = base / "actions-cache-cold"
        seeded_actions_cache = base / "actions-cache-seeded"

        baseline = action_repo(base / "baseline", args.baseline) if args.baseline else None

        def run(
            kind: str,
            aws: bool,
            fresh: bool,
            action: Path | None = None,
            uv: bool = False,
            hosted: bool = True,
            actions_cache: Path | None = None,
            expect: str | None = None,
            disk: bool = False,
        ) -> None:
            (workspace / "jobsecrets.yml").write_text(spec(job_env["ROLE_ARN"], aws=aws))
            kind += "-disk" if disk else ""
            if fresh:
                # A fresh runner: no install of ours, no pip or uv download cache.
                for place in (cache, MEMORY_ROOT):
                    shutil.rmtree(place, ignore_errors=True)
                shutil.rmtree(uv_cache, ignore_errors=True)
            if actions_cache == cold_actions_cache:
                shutil.rmtree(cold_actions_cache, ignore_errors=True)  # the first job of all
            run_env = {
                **env,
                "BENCH_AWS": str(aws).lower(),
                "PIP_NO_CACHE_DIR": "1",
            }
            if not hosted:
                # A hosted runner's uv cache starts empty: with none named, the action puts it
                # beside the install (lib.js, uvEnv); this machine's own ~/.cache/uv is not empty.
                run_env["UV_CACHE_DIR"] = str(uv_cache)
            if uv:
                # A runner with uv on PATH (the action then installs with `uv pip install`).
                run_env["PATH"] = (
                    f"{Path(args.uv).resolve().parent}:{_job_path(clean_env()['PATH'])}"
                )
                kind += "-uv" if kind else ""
            else:
                run_env["JOBSECRETS_INSTALLER"] = "pip"  # even if this host has uv on PATH
            if hosted:
                # A GitHub-hosted runner: its install is thrown away with the machine, unless the
                # action saves it in the Actions cache (then it writes the bytecode it saves).
                run_env["RUNNER_ENVIRONMENT"] = "github-hosted"
            if not (hosted and not disk and not action):
                # On the disk, emptied when fresh. Not set, the action puts a hosted runner's
                # install where it does by default: memory. (The --baseline code's default, the
                # runner's tool cache, is on the disk too: act's own, which is not ours to empty.)
                run_env["JOBSECRETS_TOOL_CACHE"] = str(cache)
            if kind.startswith("restored"):
                # Restoring, not installing: an install attempt fails against this index.
                run_env["PIP_INDEX_URL"] = f"http://127.0.0.1:{free_port()}/simple/"
            server = (actions_cache, cache_port, cache_proxy.url) if actions_cache else None
            main_s, post_s, log = run_once(workspace, action or repo, run_env, server, expect)
            if kind and action:
                kind = f"baseline-{kind}"
            saved = _SAVED.search(log)
            if saved and not action:
                saves["mixed" if aws else "vault"].append((float(saved[1]), float(saved[2])))
            restored_in = _RESTORED.search(log)
            if restored_in and kind:
                restores.setdefault(kind, []).append(float(restored_in[1]))
                if restored_in[2]:
                    parts = (float(restored_in[3]), float(restored_in[4]))
                    restore_parts.setdefault(kind, []).append(parts)
            if kind:
                results[kind].append((main_s, post_s))
                print(f"{kind} {len(results[kind])}: main {main_s:.2f} s", file=sys.stderr)

        gauge_times = gauge()
        installed = "jobsecrets: installed into"
        cold = {"actions_cache": cold_actions_cache, "expect": installed}
        if args.cold:
            # One untimed cold run first: the first of a run paid for warming act's container,
            # the package index's connections and the page cache (round 14: cold-vault 3.00 s
            # first, 2.64 s last in the same run; uv's 3.24 s, then 1.89 s).
            run("", aws=True, fresh=True, **cold)
        for n in range(args.cold):
            # Each repetition runs the same rows, in reverse order every other time (as the warm
            # rows take turns): a row is not always the one that follows another's teardown.
            rows: list[dict[str, Any]] = [{}]
            if args.uv:
                rows.append({"uv": True})
            if baseline:
                rows.append({"action": baseline})
            for extra in rows if n % 2 == 0 else rows[::-1]:
                run("cold-vault", aws=False, fresh=True, **extra, **cold)
                run("cold", aws=True, fresh=True, **extra, **cold)
        if args.restored:
            # The first job of each spec: installs (pip) and saves; then the later jobs restore.
            for aws in (False, True):
                run("", aws=aws, fresh=True, actions_cache=seeded_actions_cache, expect=installed)
            restored = "jobsecrets: restored the install from the Actions cache"
            for _ in range(args.restored):
                for kind, aws in (("restored-vault", False), ("restored", True)):
                    run(
                        kind,
                        aws=aws,
                        fresh=True,
                        actions_cache=seeded_actions_cache,
                        expect=restored,
                    )
                    if args.anchors and aws:
                        anchor_times.append(run_anchors(workspace, args.anchors, env, repo))
                        print(
                            f"anchors {len(anchor_times)}: vault-action {anchor_times[-1][0]:.2f} s,"
                            f" aws-secretsmanager-get-secrets {anchor_times[-1][1]:.2f} s",
                            file=sys.stderr,
                        )
                    if args.disk:
                        # The same restore onto the disk, as before memory became the default:
                        # what creating the files costs there.
                        run(
                            kind,
                            aws=aws,
                            fresh=True,
                            actions_cache=seeded_actions_cache,
                            expect=restored,
                            disk=True,
                        )
        # The warm runs reuse these installs (one of ours, one of the baseline's, side by side in
        # the tool cache): made here, then each warm run writes the bytecode it imports.
        run("", aws=True, fresh=True, hosted=False)
        if baseline:
            run("", aws=True, fresh=False, hosted=False, action=baseline)
        for n in range(args.warm):
            for action in warm_order(n, baseline):
                if action is None:
                    run("warm", aws=True, fresh=False, hosted=False)
                else:
                    run("warm", aws=True, fresh=False, hosted=False, action=action)
        gauge_times += gauge()

    summary = {
        kind: {
            "runs": len(runs),
            "main_median_s": round(statistics.median(r[0] for r in runs), 2),
            "main_best_s": round(min(r[0] for r in runs), 2),
            "post_median_s": round(statistics.median(r[1] for r in runs), 2),
        }
        for kind, runs in results.items()
        if runs
    }
    for i, name in enumerate(ANCHORS):
        if anchor_times:
            summary[name] = {
                "runs": len(anchor_times),
                "main_median_s": round(statistics.median(t[i] for t in anchor_times), 2),
                "main_best_s": round(min(t[i] for t in anchor_times), 2),
            }
    if anchor_times:
        summary["vault-action + aws-secretsmanager-get-secrets"] = {
            "runs": len(anchor_times),
            "main_median_s": round(statistics.median(sum(t) for t in anchor_times), 2),
            "main_best_s": round(min(sum(t) for t in anchor_times), 2),
        }
    for kind, seconds in restores.items():
        summary[kind]["restore_in_step_median_s"] = round(statistics.median(seconds), 2)
    for kind, parts in restore_parts.items():
        summary[kind]["restore_lookup_median_s"] = round(statistics.median(p[0] for p in parts), 2)
        summary[kind]["restore_download_unpack_median_s"] = round(
            statistics.median(p[1] for p in parts), 2
        )
    summary["gauge"] = {
        "runs": len(gauge_times),
        "median_s": round(median(gauge_times), 3),
        "first_s": round(median(gauge_times[: len(gauge_times) // 2]), 3),
        "last_s": round(median(gauge_times[len(gauge_times) // 2 :]), 3),
    }
    for name, runs_ in saves.items():
        if runs_:
            summary[f"save-{name}"] = {
                "runs": len(runs_),
                "archive_mb": round(statistics.median(r[0] for r in runs_), 1),
                "save_median_s": round(statistics.median(r[1] for r in runs_), 2),
            }
    print(json.dumps(summary, indent=2))
    if args.write:
        command = (
            "`.venv/bin/python bench/github_step.py "
            + " ".join(argv if argv is not None else sys.argv[1:]).strip()
            + "`"
        )
        # The cold goals are relative to the anchors: this run's when they were timed, else the
        # figures the issue measured (2.61 s and 3.59 s), said as such.
        vault_action = summary.get("vault-action", {}).get("main_median_s", 2.61)
        aws_action = summary.get("aws-secretsmanager-get-secrets", {}).get("main_median_s", 3.59)
        where = "this run" if anchor_times else "the issue's figures"
        goals = {
            "cold-vault": f"< {1.3 * vault_action:.2f} (1.3 x vault-action {vault_action:.2f}, {where})",
            "cold": f"< {vault_action + aws_action:.2f} (vault-action {vault_action:.2f} + "
            f"aws-secretsmanager-get-secrets {aws_action:.2f}, {where})",
            "warm": "< 0.7 (self-hosted, reused install)",
            "restored-vault": "",
            "restored": "< 1.0 (a later job on a fresh hosted runner)",
        }
        rows = "\n".join(
            f"| {label} | {s['runs']} | {s['main_median_s']:.2f} | {s['main_best_s']:.2f} "
            f"| {s['post_median_s']:.2f} "
            f"| {goals[kind.removeprefix('baseline-').removesuffix('-uv').removesuffix('-disk')]} |"
            for kind, s in summary.items()
            if kind in results
            for label in [kind_label(kind, args.baseline)]
        )
        rows += "".join(
            f"\n| {name} | {s['runs']} | {s['main_median_s']:.2f} | {s['main_best_s']:.2f} | | anchor |"
            for name, s in summary.items()
            if "main_median_s" in s and "post_median_s" not in s  # the anchors
        )
        gauge_s = summary["gauge"]
        body = textwrap.dedent(
            f"""\
            {command}: one `actions/inject` step under act (`-P ubuntu-latest=-self-hosted`) for
            {N_VAULT} Vault secrets (KV v2, one path each, jwt login with a GitHub OIDC token) and {N_AWS} AWS
            Secrets Manager secrets (web identity via `role_arn`), or the {N_VAULT} Vault ones alone, each
            server (OpenBao, moto, the OIDC endpoint, act's Actions cache) behind `bench/latency_proxy.py` adding
            {args.delay_ms:g} ms each way. Times are act's own step durations; {machine_line()}.
            How quick the machine was: `python -c 'import hvac, boto3'` plus one Secrets Manager client took
            {gauge_s["median_s"]:.3f} s (median of {gauge_s["runs"]}: {gauge_s["first_s"]:.3f} s before the runs,
            {gauge_s["last_s"]:.3f} s after); compare it before comparing tables of different runs.

            | install | runs | main step median s | best s | post step (revoke) median s | goal s |
            |---|---:|---:|---:|---:|---|
            {{rows}}
            """
        ).replace("{rows}", rows)
        bars = [
            (name, s["main_median_s"])
            for name, s in summary.items()
            if "main_median_s" in s and "post_median_s" not in s  # the anchors first
        ]
        bars += [
            (kind_label(kind, args.baseline), s["main_median_s"])
            for kind, s in summary.items()
            if kind in results
        ]
        anchors = [b for b in bars if "+" in b[0]]
        bars = anchors + [b for b in bars if b not in anchors]  # both anchors: the baseline bar
        bar_chart(
            DOCS.parent / "bench-github-step.png",
            "The inject step under act, 20 ms each way (median)",
            bars,
            "s",
            goal=1.0,
            goal_label="goal for a restored job",
        )
        restore_lines = [
            f"- {kind_label(kind, args.baseline)}: the restore itself (as the action logs it, "
            f"from its probe of Python to the install in place) {s['restore_in_step_median_s']:.2f}"
            f" s, of which the cache lookup {s['restore_lookup_median_s']:.2f} s and the "
            f"download, unpacked as it arrives, {s['restore_download_unpack_median_s']:.2f} s "
            "(medians)"
            for kind, s in summary.items()
            if "restore_lookup_median_s" in s
        ]
        if restore_lines:
            body += "\n" + "\n".join(restore_lines) + "\n"
        body += (
            "\n![the inject step against vault-action and aws-secretsmanager-get-secrets]"
            "(bench-github-step.png)\n\nWhat the rows say: the next section (written by hand).\n"
        )
        replace_section(HEADING, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
