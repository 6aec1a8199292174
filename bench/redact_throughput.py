"""Throughput of the redacting runner: ``run_child(["cat", BIGFILE])`` against plain ``cat``.

One command, reproducible (seeded)::

    .venv/bin/python bench/redact_throughput.py            # 200 MB, 1,000 secrets, 5 runs
    .venv/bin/python bench/redact_throughput.py --size-mb 50 --no-write

It writes a log-like BIGFILE to a temporary directory, registers SECRETS random values (each
with all its encodings) in a MaskList, and times, in the same run and in alternation:

* ``cat BIGFILE > /dev/null``;
* ``cat BIGFILE | cat > /dev/null``: the cost of one pipe hop, the floor for any wrapper that
  reads the child's output through a pipe;
* ``run_child(["cat", BIGFILE])`` with our stdout on ``/dev/null``, in a fresh worker
  process (the values reach it through a 0600 file, never argv). The time is the worker's
  pump time; the one-off mask compilation is reported apart.

The results go to ``docs/benchmarks.md`` under "## Redaction throughput" (other sections are
left alone). No value is ever printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Redaction throughput"

WORKER = r"""
import json, os, sys, time
from jobsecrets.redact import MaskList
from jobsecrets.runner import run_child

secrets_file, big, result_file = sys.argv[1:4]
t0 = time.perf_counter()
masks = MaskList()
with open(secrets_file, "rb") as fh:
    for i, line in enumerate(fh.read().split(b"\0")):
        if line:
            masks.add(line, name=f"S{i}")
masks.compiled()
t1 = time.perf_counter()
code = run_child(["cat", big], {"PATH": os.environ["PATH"]}, masks, tty=False)
t2 = time.perf_counter()
with open(result_file, "w") as fh:
    json.dump({"compile": t1 - t0, "pump": t2 - t1, "code": code,
               "patterns": len(masks.patterns)}, fh)
"""

WORDS = [
    "INFO",
    "DEBUG",
    "WARN",
    "ERROR",
    "request",
    "served",
    "GET",
    "POST",
    "PUT",
    "/api/v1/items",
    "/healthz",
    "user=alice",
    "user=bob",
    "took",
    "ms",
    "status=200",
    "status=404",
    "status=500",
    "connection",
    "reset",
    "retry",
    "backoff",
    "Compiling",
    "Downloading",
    "Installing",
    "collected",
    "packages:",
    "Successfully",
    "built",
    "wheel",
    "for",
    "test_redact.py",
    "PASSED",
    "FAILED",
    "step=3/7",
    "npm",
    "WARN",
    "deprecated",
    "docker",
    "pull",
    "layer",
    "sha256",
]


def make_secrets(rng: random.Random, count: int) -> list[bytes]:
    """Realistic shapes: tokens, hex keys, passwords with punctuation, a few multi-line."""
    out = []
    for i in range(count):
        kind = i % 10
        if kind < 4:
            out.append(base64.urlsafe_b64encode(rng.randbytes(rng.randint(15, 30))).rstrip(b"="))
        elif kind < 6:
            out.append(rng.randbytes(rng.randint(16, 32)).hex().encode())
        elif kind < 9:
            alphabet = string.ascii_letters + string.digits + "!@#$%^&()-_=+[]{}:;,.?/"
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(12, 28))).encode())
        else:
            lines = [base64.b64encode(rng.randbytes(24)) for _ in range(rng.randint(2, 4))]
            out.append(b"\n".join(lines))
    return out


def make_bigfile(path: Path, rng: random.Random, size: int) -> None:
    """Log-like lines: timestamps, words, ids. A 4 MB block varied per repetition."""
    lines = []
    total = 0
    while total < 4 << 20:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        line = f"2024-05-01T12:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z {words} "
        line += f"id={rng.getrandbits(64):016x}\n"
        lines.append(line.encode())
        total += len(lines[-1])
    block = b"".join(lines)
    with path.open("wb") as fh:
        written, n = 0, 0
        while written < size:
            piece = block.replace(b"id=", b"id=%x" % n, 50)[: size - written]
            fh.write(piece)
            written += len(piece)
            n += 1


def time_shell(cmd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True)  # noqa: S602 (fixed command, our own paths)
    return time.perf_counter() - start


def time_runner(workdir: Path, secrets_file: Path, big: Path) -> dict[str, float]:
    result = workdir / "result.json"
    with open(os.devnull, "wb") as devnull:
        subprocess.run(
            [sys.executable, "-c", WORKER, str(secrets_file), str(big), str(result)],
            stdout=devnull,
            check=True,
        )
    data: dict[str, float] = json.loads(result.read_text())
    if data["code"] != 0:
        raise SystemExit("the child failed")
    return data


NOTE = """\
The redacting run adds, per byte, a pipe hop and a search over the ~24,000 patterns of the 1,000
values (every form of README "Masking", and the anchors of wrapped base64): an Aho-Corasick
automaton (daachorse's double array where it is installed, see "Masking at scale") over one
5-byte key per pattern, starting on the rarest byte the pattern has (`keysearch._GROUPS`), finds
candidates, and the whole pattern is checked where a key is found (src/jobsecrets/keysearch.py).
Big reads are searched as two halves on two cores (the search releases the GIL). See "Masking at
scale" for the whole `jobsecrets run`, start-up and matcher build included."""


def write_docs(table: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    body = f"{SECTION}\n\n{table}\n"
    if SECTION in text:
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="jobsecrets-bench-") as tmp:
        workdir = Path(tmp)
        big = workdir / "BIGFILE"
        make_bigfile(big, rng, args.size_mb * 1_000_000)
        size = big.stat().st_size
        secrets_file = workdir / "secrets"
        secrets_file.touch(mode=0o600)
        secrets_file.write_bytes(b"\0".join(make_secrets(rng, args.secrets)))

        cat_t, pipe_t, run_t, compile_t = [], [], [], []
        patterns = 0
        time_shell(f"cat {big} > /dev/null")  # warm the page cache
        for _ in range(args.repeat):
            cat_t.append(time_shell(f"cat {big} > /dev/null"))
            pipe_t.append(time_shell(f"cat {big} | cat > /dev/null"))
            result = time_runner(workdir, secrets_file, big)
            run_t.append(result["pump"])
            compile_t.append(result["compile"])
            patterns = int(result["patterns"])

    def row(name: str, times: list[float]) -> str:
        med = statistics.median(times)
        ratio = med / statistics.median(cat_t)
        return f"| {name} | {med:.3f} | {min(times):.3f} | {size / med / 1e6:,.0f} | {ratio:.1f}x |"

    table = "\n".join(
        [
            f"`{Path(sys.argv[0]).as_posix()} --size-mb {args.size_mb} --secrets {args.secrets} "
            f"--repeat {args.repeat}`: {size / 1e6:.0f} MB of log-like text, {args.secrets} "
            f"secrets = {patterns} patterns, median of {args.repeat} runs; "
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
            "",
            "| command | median s | best s | MB/s | vs cat |",
            "|---|---:|---:|---:|---:|",
            row("`cat BIGFILE > /dev/null`", cat_t),
            row("`cat BIGFILE \\| cat > /dev/null` (one pipe hop)", pipe_t),
            row("`run_child(['cat', BIGFILE])` > /dev/null", run_t),
            "",
            f"Mask list build and compile (once per job, not in the times above): "
            f"{statistics.median(compile_t):.2f} s.",
        ]
    )
    print(table)
    if not args.no_write:
        from _common import bar_chart

        bar_chart(
            DOCS.parent / "bench-redact-throughput.png",
            f"{size / 1e6:.0f} MB of log, {args.secrets} secrets (median, MB/s)",
            [
                ("cat BIGFILE | cat (one pipe hop)", size / statistics.median(pipe_t) / 1e6),
                ("run_child(['cat', BIGFILE]), redacting", size / statistics.median(run_t) / 1e6),
            ],
            "MB/s",
        )
        table += "\n\n![redaction against one pipe hop](bench-redact-throughput.png)"
        write_docs(f"{table}\n\n{NOTE}")


if __name__ == "__main__":
    main()
