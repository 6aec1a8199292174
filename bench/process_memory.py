"""Memory of ``jobsecrets run`` when its AWS backend runs in a process of its own, against one process.

One command (about a minute)::

    .venv/bin/python bench/process_memory.py                   # N = 100 1000 5000
    .venv/bin/python bench/process_memory.py --sizes 100

GNU ``time -f %M`` of the command (``bench/scaling.py``) reports the peak RSS of the ``jobsecrets``
process; with Vault and AWS in one spec its AWS backend runs in a forked child
(``src/jobsecrets/backends/forked.py``) whose memory that figure leaves out. Here the job itself
reads both processes from /proc while ``run`` waits for it: each one's peak RSS (``VmHWM``), and
its proportional share (``Pss`` of ``smaps_rollup``: pages still shared since the fork counted
once between the two), with the fork and with ``JOBSECRETS_FORK=0``, over the stores and spec of
``bench/resolution.py`` (half Vault, half AWS, 20 ms each way). Prints a Markdown table; the
numbers are quoted in docs/benchmarks.md ("Resolution on two cores"). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import PYTHON, machine_line, run_main, stores, write_spec

#: The job ``run`` starts: after a moment (the matcher built), /proc of its parent (the CLI) and of
#: the CLI's other children (the AWS process), as a Python literal on stdout. Names and numbers only.
PROBE = r"""
import os, re, time
time.sleep(0.3)
parent, me = os.getppid(), str(os.getpid())
def facts(pid):
    status = open(f"/proc/{pid}/status").read()
    rollup = open(f"/proc/{pid}/smaps_rollup").read()
    kib = lambda key, text: int(re.search(key + r":\s+(\d+)", text).group(1))
    return (kib("VmHWM", status) / 1024, kib("Pss", rollup) / 1024)
kids = open(f"/proc/{parent}/task/{parent}/children").read().split()
print({"cli": facts(parent), "others": [facts(int(k)) for k in kids if k != me]})
"""


def measure(sizes: list[int], delay_ms: float) -> list[tuple[int, str, dict[str, object]]]:
    """For each size, with and without the fork: the two processes' (peak RSS, PSS) in MiB."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="jobsecrets-bench-mem-") as tmp:
        work = Path(tmp)
        half = max(sizes) // 2
        with stores(half, delay_ms, work) as live:
            for n in sizes:
                spec = write_spec(work, n, live.vault_url, live.aws_url)
                for fork in ("1", "0"):
                    env = {**live.env, "JOBSECRETS_FORK": fork}
                    argv = [PYTHON, "-m", "jobsecrets", "run", "-c", str(spec), "--"]
                    result = subprocess.run(
                        [*argv, PYTHON, "-c", PROBE], env=env, capture_output=True, text=True
                    )
                    if result.returncode != 0:
                        # jobsecrets' stderr never holds a value (invariant 1).
                        raise RuntimeError(
                            f"run exited {result.returncode}: {result.stderr[-500:]}"
                        )
                    rows.append((n, fork, ast.literal_eval(result.stdout.strip())))
    return rows


def render(rows: list[tuple[int, str, dict[str, object]]], command: str) -> str:
    """A Markdown table of the measurements."""
    lines = [
        f"`{command}` on {machine_line()}: peak RSS (VmHWM) and PSS of each process, MiB, while "
        "the job runs.",
        "",
        "| variables | processes | `jobsecrets` peak / PSS | its AWS process peak / PSS | PSS in all |",
        "|---:|---|---:|---:|---:|",
    ]
    for n, fork, facts in rows:
        cli = facts["cli"]
        others = facts["others"]
        assert isinstance(cli, tuple) and isinstance(others, list)
        aws = others[0] if others else None
        total = cli[1] + (aws[1] if aws else 0.0)
        lines.append(
            f"| {n:,} | {'two (forked)' if fork == '1' else 'one'} | {cli[0]:.0f} / {cli[1]:.0f} "
            f"| {f'{aws[0]:.0f} / {aws[1]:.0f}' if aws else '-'} | {total:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    command = "bench/process_memory.py " + " ".join(sys.argv[1:])
    print(render(measure(args.sizes, args.delay_ms), command.strip()))
    return 0


if __name__ == "__main__":
    run_main(main)
