"""The corpus cases marked ``run_sample`` through ``jobsecrets run`` against a real OpenBao.

The values are stored in OpenBao, resolved by ``run`` like any job's, and the child writes the
case's chunks (read from a 0600 file, with the case's pauses); ``run``'s own stdout is judged
by the same oracle as the filter's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import jobsecrets
from support.masking_corpus import MAX_PAUSE_MS, Case, load_cases, verdict
from support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

CHILD = """
import json, sys, time
case = json.load(open(sys.argv[1], encoding="utf-8"))
out = sys.stdout.buffer
for i, chunk in enumerate(case["chunks"]):
    if i and case["pause"]:
        time.sleep(case["pause"])
    out.write(chunk.encode("utf-8", "surrogatepass"))
    out.flush()
"""

SAMPLE = [case for case in load_cases() if case.run_sample]


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBaoServer]:
    with OpenBaoServer() as server:
        yield server


def test_there_is_a_sample() -> None:
    assert len(SAMPLE) >= 5


@pytest.mark.parametrize("case", SAMPLE, ids=[case.id for case in SAMPLE])
def test_run_sample_holds(case: Case, bao: OpenBaoServer, tmp_path: Path) -> None:
    client = bao.client()
    values = {f"s{i}": v.decode("utf-8") for i, v in enumerate(case.secrets) if v}
    client.secrets.kv.v2.create_or_update_secret(f"corpus/{case.id}", values, mount_point="secret")
    lines = ["version: 1", "backends:", "  vault: {type: vault}", "secrets:"]
    lines += [f"  S{key[1:]}: vault:secret/corpus/{case.id}#{key}" for key in values]
    (tmp_path / "jobsecrets.yml").write_text("\n".join(lines) + "\n")
    chunks_file = tmp_path / "case.json"
    fd = os.open(chunks_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        chunks = [c.decode("utf-8", "surrogatepass") for c in case.chunks]
        json.dump({"chunks": chunks, "pause": min(case.pause_ms, MAX_PAUSE_MS) / 1000}, handle)
    try:
        result = jobsecrets(
            ["run", "--", sys.executable, "-c", CHILD, str(chunks_file)],
            cwd=tmp_path,
            env={"VAULT_ADDR": bao.address, "VAULT_TOKEN": bao.root_token},
        )
    finally:
        chunks_file.unlink()
    assert result.returncode == 0, "run failed"
    out = result.stdout.encode("utf-8", "surrogateescape")
    assert verdict(case, out) == "ok", f"{case.id}: {verdict(case, out)}"


@pytest.mark.parametrize("tool", ["xxd", "hexdump -C", "od -c"])
def test_a_hex_dump_printed_under_run_is_masked(
    tool: str, bao: OpenBaoServer, tmp_path: Path
) -> None:
    """The child dumps a file holding the value (as a job inspecting a config file would)."""
    import shutil

    value = "Zq-XyWu_Ghk-MsOoQ-TUVWz"  # no hex digit: every trace of it is a letter or its hex
    bao.client().secrets.kv.v2.create_or_update_secret(
        "dumps/app", {"token": value}, mount_point="secret"
    )
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  vault: {type: vault}\n"
        "secrets:\n  TOKEN: vault:secret/dumps/app#token\n"
    )
    argv = tool.split()
    found = shutil.which(argv[0])
    assert found is not None, f"{argv[0]} missing (.ci/run installs it)"
    # The file is written by the child from its environment, so the value is in no argv.
    script = (
        'printf "\\001\\002\\003 = [%s]\\n\\377\\376" "$TOKEN" > dumped.bin && '
        f"{found} {' '.join(argv[1:])} dumped.bin && rm -f dumped.bin"
    )
    result = jobsecrets(
        ["run", "--", "sh", "-c", script],
        cwd=tmp_path,
        env={"VAULT_ADDR": bao.address, "VAULT_TOKEN": bao.root_token},
    )
    assert result.returncode == 0, "run failed"
    out = result.stdout.encode("utf-8", "surrogateescape")
    masked = b"***" in out
    assert masked, f"{tool}: nothing masked"
    letters = set(value.encode()) - set(b"-_")
    shown = set(out) & letters
    for line in out.splitlines():
        for word in line.split()[1:]:
            word = word.strip(b"|")
            if len(word) % 2 == 0 and all(c in b"0123456789abcdef" for c in word):
                shown |= set(bytes.fromhex(word.decode())) & letters
    count = len(shown)
    assert count == 0, f"{tool}: {count} distinct byte(s) of the value visible"
