"""What the benchmark scripts share: timing whole processes, the machine, and docs sections.

Every number is taken from a whole process (interpreter start included), because that is what a
CI job pays; peak RSS comes from ``wait4`` of that very process, so no extra tool is needed.
"""

from __future__ import annotations

__all__ = [
    "DOCS",
    "ROOT",
    "ProcessResult",
    "machine",
    "machine_line",
    "median",
    "peak_rss_mib",
    "replace_section",
    "time_process",
]

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"


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
