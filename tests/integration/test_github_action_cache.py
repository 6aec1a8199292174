"""The action keeps its install in the Actions cache (input ``cache``, actions/inject/cache.js).

v1, what act serves (and GHES): real workflows under act with act's own cache server, the way a
later job on a fresh runner meets it: a first run installs and saves, a second run with an empty
tool cache restores. v2, what github.com runs: ``main.js`` under node with a job's environment and
the stand-in of ``tests/support/actions_cache.py``, written from the published contract.

"Did not install" is proven, not read from timings: the restoring runs point pip at an index that
refuses every connection, so an install would fail the step. The spec uses the ``fake`` backend (a
JSON file), so the install is the core one and no store is needed; its value is a canary that
must never be in an archive. Values are compared as booleans only.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from support.act import act_command, action_checkout
from support.actions_cache import CacheServiceV2
from support.cli import clean_env
from support.http_stubs import MISS, ScriptedServer
from support.moto_server import MotoServer, allow, create_web_identity_role, policy, seed_secrets
from support.oidc import GithubTokenServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIN_JS = REPO_ROOT / "actions" / "inject" / "main.js"
ACTION_REF = "acme/jobsecrets@v1"
# Where the action keeps a GitHub-hosted runner's install when no JOBSECRETS_TOOL_CACHE is set
# (lib.js, memoryRoot): a cache of installs only, which the test below empties before and after.
MEMORY_ROOT = Path("/dev/shm") / f"jobsecrets-{os.getuid()}"

SPEC = """\
version: 1
backends:
  store:
    type: fake
    file: store.json
secrets:
  TOKEN: store:app#token
"""

WORKFLOW = """\
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - name: checkout (a copy of the test workspace)
        run: cp -R "$TEST_SRC/." .
      - name: inject
        uses: acme/jobsecrets/actions/inject@v1
        with:
          cache: ${{ env.USE_CACHE }}
      - name: use the value
        run: printf %s "$TOKEN" > "$TEST_OUT/TOKEN"
"""


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refusing_index() -> dict[str, str]:
    """pip pointed at an index that refuses connections: any install attempt fails the step."""
    return {
        "JOBSECRETS_INSTALLER": "pip",
        "PIP_INDEX_URL": f"http://127.0.0.1:{closed_port()}/simple/",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_RETRIES": "0",
    }


def only_these_tools(bin_dir: Path, *tools: str) -> str:
    """A PATH of one new directory holding links to ``tools`` (found on this PATH) and nothing else."""
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def workspace_with_spec(path: Path, canary: str) -> Path:
    path.mkdir(parents=True)
    (path / "jobsecrets.yml").write_text(SPEC)
    (path / "store.json").write_text(json.dumps({"app": {"token": canary}}))
    return path


def archive_members_and_bytes(archive: bytes) -> tuple[list[str], bytes]:
    """The member names of a zstd or gzip tar, and its uncompressed bytes."""
    if archive[:2] == b"\x1f\x8b":
        raw = subprocess.run(["gzip", "-dc"], input=archive, capture_output=True, check=True).stdout
    else:
        raw = subprocess.run(["zstd", "-dc"], input=archive, capture_output=True, check=True).stdout
    listing = subprocess.run(["tar", "-tf", "-"], input=raw, capture_output=True, check=True)
    return listing.stdout.decode().splitlines(), raw


def check_archive(archive: bytes, canary: str) -> None:
    members, raw = archive_members_and_bytes(archive)
    # One top directory: the install (<version>-<key>-core), nothing from the workspace or RUNNER_TEMP.
    tops = {m.split("/", 1)[0] for m in members}
    assert len(tops) == 1, tops
    assert next(iter(tops)).endswith("-core"), tops
    assert any(m.endswith("/.jobsecrets-complete") for m in members)
    # The CLI's first run wrote its bytecode before the save: a restoring job compiles nothing.
    assert any("/jobsecrets/__pycache__/" in m and m.endswith(".pyc") for m in members)
    assert not any(m.endswith(("jobsecrets.yml", "store.json", "state.json")) for m in members)
    assert (canary.encode() in raw) is False, "a secret value is in the cached archive"


# --- v1: act's own cache server -------------------------------------------------------------


@pytest.fixture
def action_repo(tmp_path: Path) -> Path:
    """What GitHub downloads for the action: this checkout's actions/, src/ and pyproject.toml."""
    return action_checkout(tmp_path / "action-repo")


def run_act_job(
    tmp_path: Path, name: str, repo: Path, src: Path, cache_dir: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One workflow run in its own workspace and empty tool cache (a fresh runner)."""
    workspace = tmp_path / f"ws-{name}"
    (workspace / ".github" / "workflows").mkdir(parents=True)
    (workspace / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    out = tmp_path / f"out-{name}"
    out.mkdir()
    job_env = {
        "TEST_SRC": str(src),
        "TEST_OUT": str(out),
        "JOBSECRETS_TOOL_CACHE": str(tmp_path / f"tool-cache-{name}"),
        "RUNNER_ENVIRONMENT": "github-hosted",
        "USE_CACHE": "true",
        **env,
    }
    result = subprocess.run(
        act_command(workspace, "ci.yml", ACTION_REF, repo, job_env, cache_dir=cache_dir),
        cwd=workspace,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=240,
        check=False,
    )
    return result, out


def test_act_cache_a_fresh_runner_restores_what_the_first_job_saved(
    tmp_path: Path, action_repo: Path
) -> None:
    canary = "canary-" + secrets.token_urlsafe(18)
    src = workspace_with_spec(tmp_path / "src", canary)
    cache_dir = tmp_path / "act-cache"

    first, out = run_act_job(
        tmp_path, "first", action_repo, src, cache_dir, {"JOBSECRETS_INSTALLER": "pip"}
    )
    assert first.returncode == 0, first.stdout[-4000:]
    assert "jobsecrets: installed into" in first.stdout
    assert "jobsecrets: saved the install in the Actions cache" in first.stdout
    assert ((out / "TOKEN").read_text() == canary) is True
    # act keeps the archive in its storage directory: one entry, the install only.
    stored = [p for p in (cache_dir / "cache").rglob("*") if p.is_file()]
    assert len(stored) == 1, stored
    check_archive(stored[0].read_bytes(), canary)

    # The next job as a hosted runner runs it, with no JOBSECRETS_TOOL_CACHE: into memory.
    shutil.rmtree(MEMORY_ROOT, ignore_errors=True)
    try:
        second, out = run_act_job(
            tmp_path,
            "second",
            action_repo,
            src,
            cache_dir,
            {**refusing_index(), "JOBSECRETS_TOOL_CACHE": ""},
        )
        assert second.returncode == 0, second.stdout[-4000:]
        assert "jobsecrets: restored the install from the Actions cache" in second.stdout
        assert "jobsecrets: installed into" not in second.stdout
        assert "::warning" not in second.stdout
        assert ((out / "TOKEN").read_text() == canary) is True
        # Restored, not saved again.
        assert "saved the install" not in second.stdout
        # Into this user's directory on the tmpfs, its own alone, nothing else left there.
        info = MEMORY_ROOT.lstat()
        assert info.st_uid == os.getuid() and info.st_mode & 0o077 == 0
        installs = [p.name for p in MEMORY_ROOT.iterdir() if p.is_dir()]
        assert len(installs) == 1 and installs[0].endswith("-core"), installs
        assert (MEMORY_ROOT / installs[0] / ".jobsecrets-complete").is_file()
        assert not tmp_path.joinpath("tool-cache-second").exists()
    finally:
        shutil.rmtree(MEMORY_ROOT, ignore_errors=True)

    # cache: false: nothing is restored, so the refusing index fails the install.
    third, out = run_act_job(
        tmp_path, "opt-out", action_repo, src, cache_dir, {**refusing_index(), "USE_CACHE": "false"}
    )
    assert third.returncode != 0, third.stdout[-4000:]
    assert "restored the install" not in third.stdout
    assert not (out / "TOKEN").exists()


# --- v2: the stand-in of github.com's service, main.js under node ------------------------------


def run_main(tmp_path: Path, name: str, src: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """main.js as the runner starts it: a job's files and variables, an empty tool cache.
    Returns (exit code, combined output, $GITHUB_ENV's text)."""
    temp = tmp_path / f"runner-temp-{name}"
    temp.mkdir()
    files = {n: temp / f"{n}.txt" for n in ("env", "output", "state", "summary", "path")}
    for file in files.values():
        file.write_text("")
    job_env = {
        **clean_env(),
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(src),
        "RUNNER_TEMP": str(temp),
        "RUNNER_ENVIRONMENT": "github-hosted",
        "JOBSECRETS_TOOL_CACHE": str(tmp_path / f"tool-cache-{name}"),
        "GITHUB_ENV": str(files["env"]),
        "GITHUB_OUTPUT": str(files["output"]),
        "GITHUB_STATE": str(files["state"]),
        "GITHUB_STEP_SUMMARY": str(files["summary"]),
        "GITHUB_PATH": str(files["path"]),
        **env,
    }
    result = subprocess.run(
        ["node", str(MAIN_JS)],
        cwd=src,
        env=job_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=240,
        check=False,
    )
    return result.returncode, result.stdout, files["env"].read_text()


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root``: kind and mode, and a file's size, mtime and content digest
    (bytecode is checked against its source's mtime), a symlink's target."""
    found: dict[str, tuple[object, ...]] = {}
    for path in root.rglob("*"):
        st = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", st.st_mode)
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[rel] = ("file", st.st_mode, st.st_size, st.st_mtime_ns // 10**9, digest)
    return found


def test_v2_cache_saves_then_a_fresh_runner_restores(tmp_path: Path) -> None:
    canary = "canary-" + secrets.token_urlsafe(18)
    src = workspace_with_spec(tmp_path / "src", canary)
    with CacheServiceV2() as service:
        code, log, github_env = run_main(
            tmp_path, "first", src, {**service.env(), "JOBSECRETS_INSTALLER": "pip"}
        )
        assert code == 0, log[-4000:]
        assert "jobsecrets: saved the install in the Actions cache" in log
        assert (canary in github_env) is True
        assert service.calls == [
            "GetCacheEntryDownloadURL",
            "CreateCacheEntry",
            "PUT blob",
            "FinalizeCacheEntryUpload",
        ]
        (entry,) = service.entries.values()
        assert entry.finalized and entry.blob is not None
        assert (
            entry.key.startswith("jobsecrets-") and f"-{os.uname().sysname.lower()}-" in entry.key
        )
        check_archive(entry.blob, canary)
        install = archive_members_and_bytes(entry.blob)[0][0].split("/", 1)[0]
        saved = tree(tmp_path / "tool-cache-first" / install)

        service.calls.clear()
        code, log, github_env = run_main(
            tmp_path, "second", src, {**service.env(), **refusing_index()}
        )
        # The restored install is the saved one, file for file (modes, mtimes, links, contents).
        restored = tree(tmp_path / "tool-cache-second" / install)
        assert len(saved) > 100 and restored == saved, "the restored install is not the saved one"
        assert code == 0, log[-4000:]
        assert "jobsecrets: restored the install from the Actions cache" in log
        assert "::warning" not in log
        assert (canary in github_env) is True
        # The log says what the restore cost: the archive's size, the lookup, the download.
        cost = re.search(
            r"restored the install .* in ([\d.]+) s \(([\d.]+) MB; lookup ([\d.]+) s, "
            r"download and unpack ([\d.]+) s\)",
            log,
        )
        assert cost is not None, log[-2000:]
        total, megabytes, lookup, unpack = map(float, cost.groups())
        assert megabytes == round(len(entry.blob) / 1e6, 1)
        # Printed to 0.01 s (a local stand-in may answer the lookup in less), the total to 0.1 s.
        assert lookup >= 0 and unpack > 0 and lookup + unpack <= total + 0.1
        assert service.calls == ["GetCacheEntryDownloadURL", "GET blob"]

        # Without ACTIONS_CACHE_SERVICE_V2 the same variables mean v1 (@actions/cache's rule):
        # there is no ACTIONS_CACHE_URL, so no cache is used and nothing is asked of this server.
        service.calls.clear()
        v1_env = {k: v for k, v in service.env().items() if k != "ACTIONS_CACHE_SERVICE_V2"}
        code, log, _ = run_main(tmp_path, "v1-env", src, {**v1_env, **refusing_index()})
        assert code != 0 and service.calls == [], log[-4000:]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_cache_that_fails_is_a_warning_and_a_normal_install(tmp_path: Path, version: str) -> None:
    canary = "canary-" + secrets.token_urlsafe(18)
    src = workspace_with_spec(tmp_path / "src", canary)
    with CacheServiceV2() as service:
        service.fail = True
        env = (
            service.env()
            if version == "v2"
            else {
                "ACTIONS_CACHE_URL": f"http://127.0.0.1:{closed_port()}/",
                "ACTIONS_RUNTIME_TOKEN": "t",
            }
        )
        code, log, github_env = run_main(
            tmp_path, version, src, {**env, "JOBSECRETS_INSTALLER": "pip"}
        )
    assert code == 0, log[-4000:]
    assert "could not restore the install from the Actions cache" in log
    assert "could not save the install in the Actions cache" in log
    assert "jobsecrets: installed into" in log
    assert (canary in github_env) is True
    # The signed URLs and the runtime token are credentials: never in the log.
    assert "sig=" not in log and "test-runtime-token" not in log


def test_a_hosted_install_in_memory_keeps_its_bytecode_without_a_cache(tmp_path: Path) -> None:
    """No cache service (or ``cache: false``): the install is thrown away with the machine, but
    in memory its .pyc files cost nothing to write and spare the post step's compiling."""
    canary = "canary-" + secrets.token_urlsafe(18)
    src = workspace_with_spec(tmp_path / "src", canary)
    shutil.rmtree(MEMORY_ROOT, ignore_errors=True)
    try:
        code, log, github_env = run_main(
            tmp_path, "memory", src, {"JOBSECRETS_INSTALLER": "pip", "JOBSECRETS_TOOL_CACHE": ""}
        )
        assert code == 0, log[-4000:]
        assert f"jobsecrets: installed into {MEMORY_ROOT}/" in log
        assert "saved the install" not in log
        assert (canary in github_env) is True
        installs = [p for p in MEMORY_ROOT.iterdir() if p.is_dir()]
        assert len(installs) == 1, installs
        written = list(installs[0].rglob("jobsecrets/__pycache__/*.pyc"))
        assert written, "the CLI's run wrote no bytecode into the install in memory"
    finally:
        shutil.rmtree(MEMORY_ROOT, ignore_errors=True)


def test_a_truncated_archive_is_not_taken_for_an_install(tmp_path: Path) -> None:
    """A blob cut short, or without the install's completion marker, is a warning and an install."""
    canary = "canary-" + secrets.token_urlsafe(18)
    src = workspace_with_spec(tmp_path / "src", canary)
    with CacheServiceV2() as service:
        code, log, _ = run_main(
            tmp_path, "first", src, {**service.env(), "JOBSECRETS_INSTALLER": "pip"}
        )
        assert code == 0, log[-4000:]
        (entry,) = service.entries.values()
        assert entry.blob is not None
        entry.blob = entry.blob[: len(entry.blob) // 2]
        code, log, github_env = run_main(
            tmp_path, "second", src, {**service.env(), "JOBSECRETS_INSTALLER": "pip"}
        )
    assert code == 0, log[-4000:]
    assert "could not restore the install from the Actions cache" in log
    assert "jobsecrets: installed into" in log
    assert (canary in github_env) is True
    tool_cache = tmp_path / "tool-cache-second"
    assert not [p for p in tool_cache.iterdir() if p.name.startswith(".restore-")]


AWS_SPEC = """\
version: 1
backends:
  aws:
    type: aws
    region: us-east-1
    role_arn: ROLE_ARN
secrets:
  BLOB: aws:cache/blob
"""


def test_v2_restored_aws_install_signs_in_and_reads(
    tmp_path: Path, github_oidc: GithubTokenServer
) -> None:
    """The archive is the install as pip made it (every botocore model: no third-party package
    is cut down), and a restored install signs in with the job's OIDC token (STS
    AssumeRoleWithWebIdentity) and reads from Secrets Manager, against moto."""
    canary = "canary-" + secrets.token_urlsafe(18)
    with MotoServer() as moto, CacheServiceV2() as service:
        seed_secrets(moto.client("secretsmanager"), {"cache/blob": canary})
        role_arn = create_web_identity_role(
            moto.client("iam"), "cache", policy(allow("secretsmanager:*"))
        )
        src = tmp_path / "src"
        src.mkdir()
        (src / "jobsecrets.yml").write_text(AWS_SPEC.replace("ROLE_ARN", role_arn))
        env = {**service.env(), **github_oidc.env(), "AWS_ENDPOINT_URL": moto.endpoint}
        code, log, github_env = run_main(
            tmp_path, "first", src, {**env, "JOBSECRETS_INSTALLER": "pip"}
        )
        assert code == 0, log[-4000:]
        assert (canary in github_env) is True
        (entry,) = service.entries.values()
        assert entry.blob is not None
        members, raw = archive_members_and_bytes(entry.blob)
        services = {
            m.split("/botocore/data/", 1)[1].split("/", 1)[0]
            for m in members
            if "/botocore/data/" in m and m.count("/", m.index("/botocore/data/") + 15) >= 1
        }
        assert {"secretsmanager", "sts", "ec2", "s3"} <= services, sorted(services)[:8]
        assert (canary.encode() in raw) is False, "a secret value is in the cached archive"

        code, log, github_env = run_main(tmp_path, "second", src, {**env, **refusing_index()})
        assert code == 0, log[-4000:]
        assert "jobsecrets: restored the install from the Actions cache" in log
        assert (canary in github_env) is True


def test_a_runner_without_zstd_saves_and_restores_gzip(tmp_path: Path) -> None:
    """No zstd on PATH: the archive is a gzip tar (tar -z); a runner with zstd does not get it
    (the entry's version names the compression, as getCacheVersion does)."""
    canary = "canary-" + secrets.token_urlsafe(18)
    src = workspace_with_spec(tmp_path / "src", canary)
    no_zstd = {
        "PATH": only_these_tools(tmp_path / "bin", "node", "tar", "gzip"),
        # The interpreter itself: a launcher on PATH (a pyenv shim) is not in bin/.
        "JOBSECRETS_PYTHON": str(Path(getattr(sys, "_base_executable", sys.executable))),
    }
    with CacheServiceV2() as service:
        code, log, github_env = run_main(
            tmp_path, "first", src, {**service.env(), **no_zstd, "JOBSECRETS_INSTALLER": "pip"}
        )
        assert code == 0, log[-4000:]
        assert "jobsecrets: saved the install in the Actions cache" in log
        (entry,) = service.entries.values()
        assert entry.blob is not None and entry.blob[:2] == b"\x1f\x8b"
        check_archive(entry.blob, canary)

        code, log, github_env = run_main(
            tmp_path, "second", src, {**service.env(), **no_zstd, **refusing_index()}
        )
        assert code == 0, log[-4000:]
        assert "jobsecrets: restored the install from the Actions cache" in log
        assert (canary in github_env) is True

        code, log, _ = run_main(tmp_path, "with-zstd", src, {**service.env(), **refusing_index()})
        assert code != 0, log[-4000:]
        assert "restored the install" not in log


def test_zstd_without_unzstd_restores_through_the_action(tmp_path: Path) -> None:
    """zstd on PATH but not its ``unzstd`` name: tar cannot run the decompressor itself, so the
    action pipes ``zstd -d`` into it; the same entry restores either way."""
    canary = "canary-" + secrets.token_urlsafe(18)
    src = workspace_with_spec(tmp_path / "src", canary)
    assert shutil.which("unzstd") is not None  # the other runs below do have it
    # The same interpreter in every run (part of the entry's key), not a launcher on PATH.
    python = {"JOBSECRETS_PYTHON": str(Path(getattr(sys, "_base_executable", sys.executable)))}
    no_unzstd = {**python, "PATH": only_these_tools(tmp_path / "bin", "node", "tar", "zstd")}
    with CacheServiceV2() as service:
        code, log, _ = run_main(
            tmp_path, "first", src, {**service.env(), **python, "JOBSECRETS_INSTALLER": "pip"}
        )
        assert code == 0, log[-4000:]
        (entry,) = service.entries.values()
        assert entry.blob is not None and entry.blob[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame
        for name, env in (("without-unzstd", no_unzstd), ("with-unzstd", python)):
            code, log, github_env = run_main(
                tmp_path, name, src, {**service.env(), **env, **refusing_index()}
            )
            assert code == 0, log[-4000:]
            assert "jobsecrets: restored the install from the Actions cache" in log, name
            assert (canary in github_env) is True, name


def test_a_hostile_archive_writes_nothing_outside_and_is_not_used(tmp_path: Path) -> None:
    """Whoever can write the repository's cache could plant an entry under the install's key. The
    runner's tar refuses its members that climb out (``..``), are absolute or write through a
    symlink, the failed restore is a warning, and the step installs instead."""
    canary = "canary-" + secrets.token_urlsafe(18)
    src = workspace_with_spec(tmp_path / "src", canary)
    outside = tmp_path / "outside"
    outside.mkdir()
    with CacheServiceV2() as service:
        code, log, _ = run_main(
            tmp_path, "first", src, {**service.env(), "JOBSECRETS_INSTALLER": "pip"}
        )
        assert code == 0, log[-4000:]
        (entry,) = service.entries.values()
        assert entry.blob is not None
        members, _ = archive_members_and_bytes(entry.blob)
        name = members[0].split("/", 1)[0]
        hostile = io.BytesIO()
        with tarfile.open(fileobj=hostile, mode="w") as tar:

            def add(member: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
                info = tarfile.TarInfo(member)
                info.type, info.linkname = kind, link
                data = b"" if kind != tarfile.REGTYPE else b"planted"
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

            add(name, tarfile.DIRTYPE)
            add(f"{name}/.jobsecrets-complete")
            add(f"{name}/link", tarfile.SYMTYPE, str(outside))
            add(f"{name}/link/through-symlink")
            add(f"{name}/../../../../../../..{outside}/dotdot")
            add(f"{outside}/absolute")
        entry.blob = subprocess.run(
            ["zstd", "-q", "-c"], input=hostile.getvalue(), capture_output=True, check=True
        ).stdout
        code, log, github_env = run_main(
            tmp_path, "second", src, {**service.env(), "JOBSECRETS_INSTALLER": "pip"}
        )
    assert code == 0, log[-4000:]
    assert list(outside.iterdir()) == []
    assert "could not restore the install from the Actions cache" in log
    assert "jobsecrets: installed into" in log
    assert (canary in github_env) is True


RESTORE_DRIVER = """
const cache = require(process.argv[1]);
const [base, token, root] = JSON.parse(process.argv[2]);
cache.restore({ version: 'v1', base, token }, root, 'install', 'key').then(
  (result) => process.stdout.write(JSON.stringify({ result })),
  (err) => process.stdout.write(JSON.stringify({ error: err.message }))
);
"""


# As RESTORE_DRIVER, after opening the connection ahead and doing something else for 300 ms (what
# main.js does while it reads the spec, finds Python and hashes the install).
PRECONNECT_DRIVER = """
const cache = require(process.argv[1]);
const [base, token, root] = JSON.parse(process.argv[2]);
const svc = { version: 'v1', base, token };
cache.preconnect(svc);
setTimeout(() => cache.restore(svc, root, 'install', 'key').then(
  (result) => process.stdout.write(JSON.stringify({ result })),
  (err) => process.stdout.write(JSON.stringify({ error: err.message }))
), 300);
"""


def restore_from(
    base: str, token: str, root: Path, driver: str = RESTORE_DRIVER
) -> dict[str, object]:
    result = subprocess.run(
        ["node", "-e", driver, str(REPO_ROOT / "actions" / "inject" / "cache.js"),
         json.dumps([base, token, str(root)])],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    outcome: dict[str, object] = json.loads(result.stdout)
    return outcome


def test_a_redirect_elsewhere_does_not_carry_the_token(tmp_path: Path) -> None:
    """The lookup follows a redirect as fetch did, but its bearer token stays with its origin."""
    other = ScriptedServer(
        [b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"]
    )
    # 127.0.0.1 and localhost are two origins for the same server.
    moved = f"http://localhost:{other.port}/_apis/artifactcache/cache?keys=key"
    first = ScriptedServer(
        [f"HTTP/1.1 302 Found\r\nLocation: {moved}\r\nContent-Length: 0\r\n"
         "Connection: close\r\n\r\n".encode()]
    )  # fmt: skip
    try:
        outcome = restore_from(first.url, "runtime-token", tmp_path / "root")
    finally:
        first.close()
        other.close()
    assert outcome == {"result": None}  # a miss, after the redirect
    assert first.requests[0]["authorization"] == "Bearer runtime-token"
    assert "authorization" not in other.requests[0]
    assert other.requests[0]["request-line"].startswith("GET /_apis/artifactcache/cache?keys=key")


def test_an_unreadable_redirect_or_a_cut_answer_is_an_error_not_a_crash(tmp_path: Path) -> None:
    redirect = (
        b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )
    # A lookup answer that promises 200 bytes of JSON and stops after 20.
    cut = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n"
        b'Connection: close\r\n\r\n{"archiveLocation": '
    )
    # Node reports a response cut short as "aborted"; our own check as "closed before the end".
    cases = ((redirect, ("unreadable location",)), (cut, ("aborted", "closed before the end")))
    for response, messages in cases:
        server = ScriptedServer([response])
        try:
            outcome = restore_from(server.url, "", tmp_path / "root")
        finally:
            server.close()
        assert isinstance(outcome.get("error"), str), outcome
        assert any(m in str(outcome["error"]) for m in messages), outcome
    assert not (tmp_path / "root" / "install").exists()


def restore_archive(tmp_path: Path, members: list[tarfile.TarInfo]) -> dict[str, object]:
    """restore_from a v1 server whose lookup points at a zstd tar of ``members`` (a regular
    file's content is one byte)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info in members:
            data = b"x" if info.type == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = subprocess.run(
        ["zstd", "-q", "-c"], input=raw.getvalue(), capture_output=True, check=True
    ).stdout
    server = ScriptedServer([], start=False)
    found = json.dumps({"archiveLocation": f"{server.url}blob"}).encode()
    server.responses = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(found)}\r\nConnection: close\r\n\r\n".encode()
        + found,
        f"HTTP/1.1 200 OK\r\nContent-Length: {len(blob)}\r\nConnection: close\r\n\r\n".encode()
        + blob,
    ]
    server.thread.start()
    try:
        return restore_from(server.url, "", tmp_path / "root")
    finally:
        server.close()


def member(
    name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, uid: int = 0
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid = kind, mode, uid
    return info


def test_a_restore_takes_no_owner_setuid_bit_or_open_mode_from_the_archive(
    tmp_path: Path,
) -> None:
    """A step running as root (a container job, a root self-hosted runner) took the archive's
    owners, setuid and setgid bits and world-writable directories as they were."""
    outcome = restore_archive(
        tmp_path,
        [
            member("install", tarfile.DIRTYPE, 0o777),
            member("install/.jobsecrets-complete"),
            member("install/bin", tarfile.DIRTYPE, 0o777),
            member("install/bin/suid", mode=0o4755),
            member("install/bin/sgid", mode=0o2775),
            member("install/owned", uid=4321),
        ],
    )
    assert isinstance(outcome.get("result"), dict), outcome
    install = tmp_path / "root" / "install"
    paths = [install, *install.rglob("*")]
    assert len(paths) == 6
    for path in paths:
        st = path.lstat()
        assert st.st_uid == os.getuid(), path
        assert st.st_mode & 0o6002 == 0, (path, oct(st.st_mode))


def test_a_restore_refuses_an_archive_with_a_fifo(tmp_path: Path) -> None:
    """An install holds files, directories and links only: a FIFO (or, as root, a device node)
    in an archive is not what was saved, and is never left in the tool cache. Checked as root
    only (tar creates device nodes for no one else; the walk costs 20-50 ms of a restored step):
    this machine's tests and CI run as root."""
    assert os.getuid() == 0, "the check runs as root only: run this test as root"
    outcome = restore_archive(
        tmp_path,
        [
            member("install", tarfile.DIRTYPE, 0o755),
            member("install/.jobsecrets-complete"),
            member("install/lib", tarfile.DIRTYPE, 0o755),
            member("install/lib/fifo", tarfile.FIFOTYPE),
        ],
    )
    assert "device, FIFO or socket" in str(outcome.get("error")), outcome
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == []


# A v2 restore (GetCacheEntryDownloadURL, a Twirp call), as RESTORE_DRIVER.
RESTORE_V2_DRIVER = RESTORE_DRIVER.replace("version: 'v1'", "version: 'v2'")


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("announced", [True, False])
def test_an_api_answer_too_large_is_an_error_not_a_crash(
    tmp_path: Path, version: str, announced: bool
) -> None:
    """A lookup answered with megabytes of JSON (a hostile service or a broken proxy; hundreds of
    MB made node throw ERR_STRING_TOO_LONG, uncaught, after 1.5 GB): refused past 1 MiB, said in
    Content-Length or not, as an error the step turns into a warning and a normal install."""
    body = b"{" + b" " * (3 << 20) + b"}"
    length = f"Content-Length: {len(body)}\r\n" if announced else ""
    answer = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    driver = RESTORE_DRIVER if version == "v1" else RESTORE_V2_DRIVER
    started = time.monotonic()
    outcome, server = scripted_restore(tmp_path, [answer], driver)
    assert "answer larger than 1 MiB" in str(outcome.get("error")), outcome
    assert time.monotonic() - started < 30 and len(server.requests) == 1
    assert not (tmp_path / "root" / "install").exists()


def scripted_restore(
    tmp_path: Path, responses: list[bytes], driver: str = RESTORE_DRIVER
) -> tuple[dict[str, object], ScriptedServer]:
    """restore_from a ScriptedServer answering ``responses``; the outcome and the server."""
    server = ScriptedServer(responses)
    try:
        return restore_from(server.url, "", tmp_path / "root", driver), server
    finally:
        server.close()


def test_the_lookup_goes_out_on_the_connection_opened_ahead(tmp_path: Path) -> None:
    """preconnect() connects at once; the lookup 300 ms later uses that connection, no other."""
    outcome, server = scripted_restore(tmp_path, [MISS], PRECONNECT_DRIVER)
    assert outcome == {"result": None}, outcome
    assert len(server.accepted) == 1 and len(server.arrived) == 1
    # Connected well before the request (the driver waits 300 ms): the handshake was done ahead.
    assert server.arrived[0] - server.accepted[0] > 0.2, (server.accepted, server.arrived)


def test_a_connection_opened_ahead_that_dies_unanswered_costs_only_a_new_one(
    tmp_path: Path,
) -> None:
    """The server drops the connection opened ahead when the lookup arrives on it (an idle
    timeout, a middlebox): the lookup goes again, once, on a new connection, and the restore goes
    on as if nothing had been opened ahead. Without a connection opened ahead the same drop is the
    lookup's error (no retry of an ordinary request)."""
    outcome, server = scripted_restore(tmp_path, [b"", MISS], PRECONNECT_DRIVER)
    assert outcome == {"result": None}, outcome
    assert len(server.accepted) == 2 and len(server.requests) == 2
    assert server.requests[0]["request-line"] == server.requests[1]["request-line"]

    outcome, _ = scripted_restore(tmp_path, [b"", MISS])
    assert "socket hang up" in str(outcome.get("error")), outcome


OPEN_AHEAD_DRIVER = """
const lib = require(process.argv[1]);
const [useCache, env] = JSON.parse(process.argv[2]);
lib.openCacheAhead(useCache, env);
"""


@pytest.mark.parametrize(
    ("use_cache", "installed", "opened"),
    [(True, False, True), (True, True, False), (False, False, False)],
)
def test_a_step_opens_the_cache_connection_ahead_only_on_a_runner_without_an_install(
    tmp_path: Path, use_cache: bool, installed: bool, opened: bool
) -> None:
    """lib.openCacheAhead: a runner with no install yet is about to look one up; one with an
    install (any) most likely reuses it; `cache: false` looks nothing up. The connection opened
    ahead never keeps node alive: the driver does nothing else and must end by itself."""
    root = tmp_path / "tools"
    if installed:
        (root / "0.1.0-abc-core").mkdir(parents=True)
        (root / "0.1.0-abc-core" / ".jobsecrets-complete").write_text("")
    server = ScriptedServer([MISS])
    env = {"ACTIONS_CACHE_URL": server.url, "JOBSECRETS_TOOL_CACHE": str(root)}
    try:
        result = subprocess.run(
            ["node", "-e", OPEN_AHEAD_DRIVER, str(REPO_ROOT / "actions" / "inject" / "lib.js"),
             json.dumps([use_cache, env])],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        time.sleep(0.2)  # the accept, if any, is recorded by the server's thread
    finally:
        server.close()
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(server.accepted) == (1 if opened else 0), server.accepted
