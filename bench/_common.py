"""What the benchmark scripts share: timing whole processes, the machine, and docs sections.

Every number is taken from a whole process (interpreter start included), because that is what a
CI job pays; peak RSS comes from ``wait4`` of that very process, so no extra tool is needed.
"""

from __future__ import annotations

__all__ = [
    "BENCH_ENV",
    "DOCS",
    "REGION",
    "ROOT",
    "ProcessResult",
    "Stores",
    "aws_id",
    "bar_chart",
    "check_output",
    "floor_commands",
    "index_moto_secrets",
    "machine",
    "machine_line",
    "median",
    "peak_rss_mib",
    "replace_section",
    "seed",
    "start_proxies",
    "stop",
    "stores",
    "time_process",
    "time_process_rss",
    "vault_path",
    "write_spec",
]

import compileall
import contextlib
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"

# The package's bytecode, current before anything is timed, as pip leaves an installed package.
# The benchmarks time `python -m jobsecrets` from this checkout: with PYTHONDONTWRITEBYTECODE in
# the environment (set in some shells and CI images), every module edited since its .pyc was
# last written would be compiled again in every timed process (10-30 ms of a `run` that a user
# of a pip-installed jobsecrets never pays). compileall writes them whatever that variable says.
compileall.compile_dir(str(ROOT / "src" / "jobsecrets"), quiet=1)
PYTHON = sys.executable
REGION = "us-east-1"
#: Static keys moto accepts; the benchmarks sign in to Vault with the dev server's root token.
BENCH_ENV = {
    "VAULT_TOKEN": "root",
    "AWS_ACCESS_KEY_ID": "AKIABENCHBENCHBENCH0",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": REGION,
    # No ~/.aws lookups of the bench machine's own profile.
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@dataclass(frozen=True)
class ProcessResult:
    """One finished process: wall seconds, peak RSS in MiB, exit code and (if asked) stdout."""

    seconds: float
    max_rss_mib: float
    code: int
    stdout: bytes = b""
    stderr: bytes = b""


def time_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    capture: bool = False,
    timeout: float = 300.0,
) -> ProcessResult:
    """Run ``argv`` to completion; wall time from spawn to reap, peak RSS from ``wait4``.

    Output goes to /dev/null unless ``capture`` (then stdout and stderr are returned in
    memory; callers parse stdout and never print it, since it holds values).
    """
    # Temporary files, not pipes: Popen.communicate would reap the child before wait4 could.
    out_file = tempfile.TemporaryFile() if capture else subprocess.DEVNULL  # noqa: SIM115 - closed below
    err_file = tempfile.TemporaryFile() if capture else subprocess.DEVNULL  # noqa: SIM115
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=out_file,
        stderr=err_file,
    )
    # wait4 instead of Popen.wait: the same call reaps the child and gives its own peak RSS.
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.001)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # tell Popen the child is reaped
    out = err = b""
    for handle in (out_file, err_file):
        if not isinstance(handle, int):
            handle.seek(0)
            data = handle.read()
            handle.close()
            if handle is out_file:
                out = data
            else:
                err = data
    # ru_maxrss is KiB on Linux and bytes on macOS.
    rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return ProcessResult(seconds, rss, code, out, err)


def peak_rss_mib(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> float:
    """Peak RSS of ``argv`` in MiB, measured by GNU ``/usr/bin/time`` when present.

    Why not :func:`time_process`'s ``wait4`` figure: on Linux a child's ``ru_maxrss`` starts from
    its parent's RSS at ``fork`` (the pre-``exec`` copy counts), so a big benchmark process would
    inflate every child. ``time`` is a small process, so what it forks inherits next to nothing.
    """
    gnu_time = "/usr/bin/time"
    if not os.path.exists(gnu_time):
        return time_process(argv, env=env).max_rss_mib
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        result = time_process([gnu_time, "-f", "%M", "-o", out.name, *argv], env=env)
        if result.code != 0:
            raise RuntimeError(f"{argv[0]} exited {result.code}")
        return int(out.read().split()[-1]) / 1024


def time_process_rss(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> ProcessResult:
    """:func:`time_process` with the peak RSS measured by GNU ``time`` (see :func:`peak_rss_mib`);
    the wall time includes ``time``'s own start, about a millisecond."""
    gnu_time = "/usr/bin/time"
    if not os.path.exists(gnu_time):
        return time_process(argv, env=env)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        result = time_process([gnu_time, "-f", "%M", "-o", out.name, *argv], env=env)
        text = out.read().split()
    rss = int(text[-1]) / 1024 if text and text[-1].isdigit() else result.max_rss_mib
    return ProcessResult(result.seconds, rss, result.code)


def median(values: Sequence[float]) -> float:
    """The median (the benchmarks report medians: the machine is shared and noisy)."""
    return float(statistics.median(values))


def machine() -> dict[str, str]:
    """Facts about this machine for the docs: cores, CPU model, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count() or "?"),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
    }


def machine_line() -> str:
    """One sentence naming the machine, for a docs section."""
    m = machine()
    return f"{m['nproc']} CPUs ({m['cpu']}), {m['os']}, Python {m['python']}"


def replace_section(heading: str, body: str, path: Path = DOCS) -> None:
    """Replace the ``heading`` section of the docs (up to the next ``## ``), or append it.

    Sections written by other scripts (e.g. "## Redaction throughput") are left untouched.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    section = [heading, "", *body.strip("\n").splitlines(), ""]
    try:
        start = lines.index(heading)
    except ValueError:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *section]
    else:
        end = start + 1
        while end < len(lines) and not lines[end].startswith("## "):
            end += 1
        lines[start:end] = section
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


def replace_section_keeping_prose(
    heading: str, figures: str, last_line: str, default_prose: str, path: Path = DOCS
) -> None:
    """:func:`replace_section` for a section of figures followed by prose written by hand.

    The figures (everything up to and including ``last_line``, e.g. the plot's image line) are
    replaced; the prose after ``last_line`` in the docs is kept as it is, so a run of the benchmark
    never overwrites what engineers wrote about its results. ``default_prose`` is used only when
    the section or that line is not there yet.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    prose = default_prose
    if heading in lines:
        start = lines.index(heading) + 1
        end = start
        while end < len(lines) and not lines[end].startswith("## "):
            end += 1
        body = lines[start:end]
        if last_line in body:
            prose = "\n".join(body[body.index(last_line) + 1 :]).strip("\n")
    replace_section(heading, figures.rstrip("\n") + "\n\n" + prose, path)


def bar_chart(
    path: Path,
    title: str,
    bars: Sequence[tuple[str, float]],
    unit: str,
    *,
    goal: float | None = None,
    goal_label: str = "goal",
) -> None:
    """Draw one horizontal bar per (label, value) into the PNG ``path``, the first being the
    same-run baseline (grey), with each bar's value and its ratio to the baseline written on it,
    and a dotted line at ``goal``. For the benchmarks whose result is a few numbers; the bench
    extra (matplotlib) is imported here only, so the scripts run without it with --no-write.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on a CI runner
    import matplotlib.pyplot as plt

    labels = [label for label, _ in bars]
    values = [value for _, value in bars]
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(bars) + 1.3), dpi=110)
    colours = ["#9e9e9e"] + ["#3b75af"] * (len(bars) - 1)
    positions = list(range(len(bars)))[::-1]
    ax.barh(positions, values, color=colours)
    ax.set_yticks(positions, labels, fontsize=8)
    base = values[0] if values and values[0] else None
    top = max([*values, goal or 0.0]) or 1.0
    for y, value in zip(positions, values, strict=True):
        text = f"{value:,.3g} {unit}"
        if base:
            text += f"  ({value / base:.2f}x)"
        ax.text(value + top * 0.01, y, text, va="center", fontsize=8)
    if goal is not None:
        ax.axvline(goal, color="red", ls=":", lw=1, label=f"{goal_label}: {goal:,.3g} {unit}")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---- the stores every resolution benchmark reads: OpenBao + moto behind the latency proxy ----------


def vault_path(i: int) -> str:
    """KV v2 path (under the ``secret/`` mount) of Vault document ``i``."""
    return f"bench/p{i:03d}"


def aws_id(i: int) -> str:
    """Secrets Manager name of AWS secret ``i``."""
    return f"bench/s{i:03d}"


def seed(vault_url: str, count: int, *, workers: int = 16) -> None:
    """``count`` KV v2 documents and ``count`` JSON secrets in moto, two random fields each.

    Vault through its API, concurrently (``workers`` threads, each with its own client: an hvac
    client's requests session is not meant to be shared): 2,500 paths in about 4 s.

    Moto straight into its in-process backend (the server of ``tests/support/moto_server.py`` is
    a thread of this process, serving the same backend objects): over HTTP, every request is
    parsed by werkzeug and botocore under our own GIL, 15 s for 2,500 secrets even with threads,
    and moto's store is not safe for concurrent creation ("dictionary changed size during
    iteration"). What the benchmark measures is reading, which goes through the proxy.
    """
    import hvac
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.secretsmanager.models import secretsmanager_backends

    def fields(i: int) -> dict[str, str]:
        return {"username": f"user{i}", "password": secrets.token_urlsafe(24)}

    def seed_vault(indices: range) -> None:
        client = hvac.Client(url=vault_url, token="root")
        for i in indices:
            client.secrets.kv.v2.create_or_update_secret(
                path=vault_path(i), secret=fields(i), mount_point="secret"
            )

    slices = [range(w, count, workers) for w in range(min(workers, max(count, 1)))]
    with ThreadPoolExecutor(max_workers=len(slices)) as pool:
        pending = [pool.submit(seed_vault, part) for part in slices]
        backend = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION]
        for i in range(count):
            backend.create_secret(
                name=aws_id(i),
                secret_string=json.dumps(fields(i)),
                secret_binary=None,
                description=None,
                tags=None,
                kms_key_id=None,
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
        for done in pending:
            done.result()  # re-raise a seeding failure here


def index_moto_secrets() -> None:
    """Make moto's secret lookup by name a dict lookup, in this process only.

    moto 5's ``SecretsStore`` compares every stored secret's name and ARN on each lookup (it
    accepts names, ARNs and partial ARNs alike): with 2,500 secrets, each read scans 2,500
    entries, which makes the stand-in server quadratic where Secrets Manager is not, and its CPU
    competes with the process measured. A name that is a key is answered from the dict at once;
    anything else (an ARN, a partial ARN) takes moto's own path unchanged.
    """
    from moto.secretsmanager.models import SecretsStore

    if getattr(SecretsStore, "_bench_indexed", False):
        return
    slow_getitem, slow_contains, slow_get = (
        SecretsStore.__getitem__,
        SecretsStore.__contains__,
        SecretsStore.get,
    )

    def getitem(self: Any, key: str) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return slow_getitem(self, key)

    def contains(self: Any, key: str) -> bool:
        return dict.__contains__(self, key) or slow_contains(self, key)

    def get(self: Any, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return slow_get(self, key)

    SecretsStore.__getitem__ = getitem  # type: ignore[method-assign]
    SecretsStore.__contains__ = contains  # type: ignore[method-assign]
    SecretsStore.get = get  # type: ignore[method-assign]
    SecretsStore._bench_indexed = True  # type: ignore[attr-defined]


def write_spec(directory: Path, n: int, vault_url: str, aws_url: str) -> Path:
    """A jobsecrets spec of N variables, half ``vault:secret/bench/pNNN#password``, half
    ``aws:bench/sNNN#password`` (one variable per path: every variable costs a read)."""
    half = n // 2
    lines = [
        "version: 1",
        "backends:",
        f"  vault: {{type: vault, address: '{vault_url}', auth: {{method: token}}}}",
        f"  aws: {{type: aws, region: {REGION}, endpoint_url: '{aws_url}'}}",
        "secrets:",
    ]
    lines += [f"  V{i:03d}: vault:secret/{vault_path(i)}#password" for i in range(half)]
    lines += [f"  A{i:03d}: aws:{aws_id(i)}#password" for i in range(n - half)]
    spec = directory / f"jobsecrets-{n}.yml"
    spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return spec


def start_proxies(
    targets: Sequence[str], delay_ms: float
) -> tuple[subprocess.Popen[str], list[str]]:
    """``bench/latency_proxy.py`` in its own process (so it never competes with moto for our GIL)."""
    argv = [PYTHON, str(ROOT / "bench" / "latency_proxy.py"), "--delay-ms", str(delay_ms)]
    for target in targets:
        argv += ["--target", target]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    urls = []
    assert proc.stdout is not None
    for _ in targets:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise RuntimeError("latency proxy failed to start")
        urls.append("http://" + json.loads(line)["listen"])
    return proc, urls


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a process we started, by its pid, bounded."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass(frozen=True)
class Stores:
    """The seeded stores behind their proxies, and the environment a benchmarked process gets."""

    vault_url: str
    aws_url: str
    env: dict[str, str]


@contextlib.contextmanager
def stores(count: int, delay_ms: float, workdir: Path) -> Iterator[Stores]:
    """An OpenBao dev server and a moto server (the tests' own classes), ``count`` secrets seeded
    in each, a latency proxy process in front of both; everything stopped on exit."""
    sys.path.insert(0, str(ROOT))  # for tests.support (the same servers the tests start)
    from tests.support.moto_server import MotoServer
    from tests.support.openbao import OpenBaoServer

    bao = OpenBaoServer().start()
    moto: MotoServer | None = None
    proxy: subprocess.Popen[str] | None = None
    try:
        moto = MotoServer().start()
        index_moto_secrets()
        started = time.monotonic()
        seed(bao.address, count)
        print(
            f"seeded {count} + {count} secrets in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        proxy, (vault_url, aws_url) = start_proxies(
            [bao.address.removeprefix("http://"), moto.endpoint.removeprefix("http://")], delay_ms
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            **BENCH_ENV,
        }
        yield Stores(vault_url, aws_url, env)
    finally:
        if proxy is not None:
            stop(proxy)
        if moto is not None:
            moto.stop()
        bao.close()


def enable_jwt_login(vault_url: str, public_key_pem: str, *, token_ttl: str) -> None:
    """OpenBao's ``auth/jwt`` at ``jwt/`` checking tokens signed by ``public_key_pem`` (aud
    ``vault``), its role ``ci`` giving a token that reads ``secret/*`` (the seeded paths)."""
    import hvac

    admin = hvac.Client(url=vault_url, token="root")
    admin.sys.create_or_update_policy("read", 'path "secret/*" { capabilities = ["read"] }')
    admin.sys.enable_auth_method("jwt", path="jwt")
    admin.write_data("auth/jwt/config", data={"jwt_validation_pubkeys": [public_key_pem]})
    admin.write_data(
        "auth/jwt/role/ci",
        data={
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["vault"],
            "token_policies": ["read"],
            "token_ttl": token_ttl,
        },
    )


def floor_commands() -> dict[str, list[str]]:
    """The same-run baselines: an empty interpreter, the two client libraries imported, and
    those imports plus one Secrets Manager client (botocore loading its service model), which
    any AWS caller pays: "bare imports" in the goals of issue 18."""
    client = (
        "import hvac, boto3; "
        f"boto3.client('secretsmanager', region_name='{REGION}', "
        "aws_access_key_id='x', aws_secret_access_key='x')"
    )
    return {
        "python -c pass": [PYTHON, "-c", "pass"],
        "import hvac, boto3": [PYTHON, "-c", "import hvac, boto3"],
        "import hvac, boto3 + one client": [PYTHON, "-c", client],
    }


def check_output(result: ProcessResult, n: int, what: str) -> None:
    """The run succeeded and printed a JSON object of N variables (values are never shown)."""
    if result.code != 0:
        # The tool's stderr never holds a value (invariant 1), so it is safe to show.
        detail = result.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{what} exited {result.code}:\n{detail}")
    got = json.loads(result.stdout)
    if len(got) != n:
        raise RuntimeError(f"{what} returned {len(got)} variables, expected {n}")


def run_main(main: Callable[[], int]) -> NoReturn:
    """Run a benchmark's ``main``, say on stderr how long the whole run took, exit with its code."""
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s", file=sys.stderr)
    sys.exit(code)
