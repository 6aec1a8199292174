"""Zero changed bytes: a few hundred MB of generated CI logs through the masking of structured secrets.

One command, reproducible (seeded)::

    .venv/bin/python bench/redact_ordinary_logs.py             # 300 MB
    .venv/bin/python bench/redact_ordinary_logs.py --size-mb 20 --no-write

The secrets are ``tests/support/ci_logs.structured_secrets()`` (a kubeconfig, a pretty-printed
service-account key, a PEM key, a docker config, a multi-line value with whitespace-only and
indented lines); the log is ``ci_log()`` (pip, npm, pytest, docker build, kubectl apply with its
manifests, other accounts' keys and kubeconfigs), generated in blocks of 8 MB with new seeds and
fed to the redactor in 64 KiB chunks. The result (bytes changed, must be 0) goes to
``docs/benchmarks.md`` under "## Masking: ordinary logs unchanged". No value is ever printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine_line, replace_section  # noqa: E402

from jobsecrets.redact import MaskList  # noqa: E402
from support.ci_logs import ci_log, structured_secrets  # noqa: E402

SECTION = "## Masking: ordinary logs unchanged"
CHUNK = 65536


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    masks = MaskList()
    for i, value in enumerate(structured_secrets()):
        masks.add(value, name=f"S{i}")
    redactor = masks.redactor()
    total = changed = 0
    seed = 100
    start = time.perf_counter()
    pending_in = b""
    pending_out = b""
    while total < args.size_mb * 1_000_000:
        block = ci_log(8_000_000, seed=seed)
        seed += 1
        total += len(block)
        pending_in += block
        for i in range(0, len(block), CHUNK):
            pending_out += redactor.feed(block[i : i + CHUNK])
        # Compare what has come out so far with the same length of input.
        n = len(pending_out)
        if pending_in[:n] != pending_out:
            changed += sum(1 for a, b in zip(pending_in, pending_out, strict=False) if a != b) or 1
        pending_in, pending_out = pending_in[n:], b""
    tail = redactor.flush()
    changed += abs(len(tail) - len(pending_in)) + (0 if tail == pending_in else 1)
    seconds = time.perf_counter() - start
    text = (
        f"`.venv/bin/python bench/redact_ordinary_logs.py --size-mb {args.size_mb}` on "
        f"{machine_line()}: {total / 1e6:,.0f} MB of generated CI log text, "
        f"{len(masks.patterns)} patterns of 5 structured secrets: **{changed} bytes changed** "
        f"(goal: 0), {seconds:.0f} s including generation."
    )
    print(text)
    if not args.no_write:
        replace_section(SECTION, text)
    if changed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
