"""Hostile spec files: none may hang or exhaust jobsecrets, each is a clear exit-2 error.

A spec file comes from a repository: whoever can push a branch can write one. The generator
below writes more than 100 of them (alias bombs, deep nesting, huge files and values, bytes that
are not UTF-8, control characters, hostile tags and keys, special files) and every one is checked
through the CLI as a user runs it (``jobsecrets plan -c FILE``):

- exit code 2, one error line, no traceback, no internal error;
- the message names the file, and the line where the issue says it must (bad bytes, bounds);
- the message is bounded (no expanded alias, no 10 MB value quoted back);
- it ends: the subprocess timeout is only a hang detector, not a speed measurement.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cli import clean_env

pytestmark = pytest.mark.integration

HEAD = "version: 1\nbackends:\n  vault: {type: vault, address: 'http://127.0.0.1:1'}\n"
GOOD = "  OK: vault:secret/app#password\n"
#: Longest stderr accepted for one bad spec: 50 problems of at most ~300 characters, and change.
MAX_STDERR = 25_000


@dataclass
class BadSpec:
    name: str
    data: bytes
    line: int | None = None  # the line the error must name, when the issue demands one
    special: str = ""  # "fifo", "dir", "loop": made on disk instead of written


def _text(name: str, text: str, line: int | None = None) -> BadSpec:
    return BadSpec(name, text.encode("utf-8"), line)


def alias_bombs() -> list[BadSpec]:
    specs = []
    for levels in (4, 5, 6, 7, 8, 10):
        for kind in ("seq", "map"):
            lines = [HEAD, "secrets:\n" + GOOD]
            if kind == "seq":
                lines.append('bomb0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n')
                for i in range(1, levels):
                    refs = ",".join([f"*a{i - 1}"] * 9)
                    lines.append(f"bomb{i}: &a{i} [{refs}]\n")
            else:
                lines.append("bomb0: &a0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol}\n")
                for i in range(1, levels):
                    refs = ", ".join(f"k{j}: *a{i - 1}" for j in range(9))
                    lines.append(f"bomb{i}: &a{i} {{{refs}}}\n")
            specs.append(_text(f"alias-{kind}-{levels}", "".join(lines)))
    # The bomb inside a section that is read (params), not an unknown top-level key.
    bomb = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 7):
        bomb.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    params = "{" + ", ".join(bomb) + "}"
    specs.append(
        _text(
            "alias-in-params",
            HEAD + f"secrets:\n  X: {{ref: 'vault:pki/issue/ci#k', params: {params}}}\n",
        )
    )
    return specs


def deep_nesting() -> list[BadSpec]:
    specs = []
    for depth in (65, 200, 1000, 3000, 50_000):
        specs.append(
            _text(
                f"deep-flow-seq-{depth}",
                HEAD + "secrets:\n  A: " + "[" * depth + "]" * depth + "\n",
                5,
            )
        )
        specs.append(
            _text(
                f"deep-flow-map-{depth}",
                HEAD + "secrets:\n  A: " + "{a: " * depth + "b" + "}" * depth + "\n",
                5,
            )
        )
    for depth in (100, 3000):
        block = "".join(" " * (2 * i) + "a:\n" for i in range(depth)) + " " * (2 * depth) + "b\n"
        specs.append(_text(f"deep-block-{depth}", HEAD + "secrets:\n" + GOOD + "policy:\n" + block))
        block = "".join(" " * i + "- \n" for i in range(depth))
        specs.append(
            _text(f"deep-block-seq-{depth}", HEAD + "secrets:\n" + GOOD + "policy:\n" + block)
        )
    return specs


def big() -> list[BadSpec]:
    comment = "# " + "x" * 98 + "\n"
    return [
        _text("big-comments-1mib", HEAD + "secrets:\n" + GOOD + comment * 10_500),
        _text("big-5mb", HEAD + "secrets:\n" + GOOD + comment * 52_000),
        _text("big-value-100k", HEAD + "secrets:\n  A: vault:secret/" + "a" * 100_000 + "#k\n", 5),
        _text("big-key-100k", HEAD + "secrets:\n  " + "A" * 100_000 + ": vault:secret/a#k\n", 5),
        _text("big-ref-60k", HEAD + "secrets:\n  A: '" + "x" * 60_000 + "'\n", 5),
        _text(
            "big-many-bad-keys",
            HEAD + "secrets:\n" + "".join(f"  bad-{i}: nope\n" for i in range(20_000)),
        ),
        _text(
            "big-many-keys",
            HEAD
            + "secrets:\n"
            + GOOD
            + "settings:\n"
            + "".join(f"  k{i}: {i}\n" for i in range(120_000)),
        ),
        _text(
            "big-param-200k",
            HEAD
            + "secrets:\n  A: {ref: 'vault:pki/issue/ci#k', params: {csr: '"
            + "Q" * 200_000
            + "'}}\n",
            5,
        ),
    ]


def bad_bytes() -> list[BadSpec]:
    sequences = {
        "lone-continuation": b"\x80",
        "ff": b"\xff",
        "fe": b"\xfe",
        "truncated-2": b"\xc3",
        "truncated-3": b"\xe2\x82",
        "overlong-slash": b"\xc0\xaf",
        "surrogate": b"\xed\xa0\x80",
        "above-max": b"\xf5\x80\x80\x80",
        "latin1-e-acute": b"caf\xe9",
        "cp1252-quote": b"\x93quoted\x94",
    }
    specs = []
    for index, (name, raw) in enumerate(sequences.items()):
        # Put the bad byte on a different line each time: the error must name that line.
        filler = "".join(f"  V{i}: vault:secret/v{i}#k\n" for i in range(index))
        data = (HEAD + "secrets:\n" + filler).encode() + b"  BAD: 'x" + raw + b"'\n" + GOOD.encode()
        line = 4 + index + 1
        specs.append(BadSpec(f"bytes-{name}", data, line))
    return specs


def control_chars() -> list[BadSpec]:
    specs = []
    for code in [*range(0, 9), 11, 12, *range(14, 32), 127]:
        text = HEAD + "secrets:\n" + GOOD + f"  BAD: 'a{chr(code)}b'\n"
        specs.append(_text(f"control-{code:02x}", text, 6))
    return specs


def hostile_yaml() -> list[BadSpec]:
    cases = {
        "python-apply": "secrets: !!python/object/apply:os.system ['true']\n",
        "python-name": "secrets: {A: !!python/name:os.system vault:secret/a#k}\n",
        "unknown-tag": "secrets: {A: !vault vault:secret/a#k}\n",
        "binary-tag": "secrets: {A: !!binary aGVsbG8=}\n",
        "undefined-alias": "secrets: {A: *nope}\n",
        "two-documents": "secrets: {A: vault:secret/a#k}\n---\nsecrets: {B: vault:secret/b#k}\n",
        "complex-key": "secrets:\n  ? [a, b]\n  : vault:secret/a#k\n",
        "mapping-key": "secrets:\n  {a: b}: vault:secret/a#k\n",
        "merge-bomb": "base: &b {ref: 'vault:secret/a#k'}\nsecrets:\n  A: {<<: [*b, *b, *b], ref: 1}\n",
        "duplicate-keys": "secrets:\n  A: vault:secret/a#k\n  A: vault:secret/b#k\n",
        "null-secrets": "secrets:\n",
        "list-secrets": "secrets: [a, b]\n",
        "ansi-name": 'secrets: {"A\\e[31mRED": vault:secret/a#k}\n',
        "ansi-ref": 'secrets: {A: "vault:secret/\\e]0;title\\a#k"}\n',
        "workflow-command": 'secrets: {A: "vault:secret/a\\n::set-env name=X::y#k"}\n',
        "huge-int": "settings: {timeout: " + "9" * 5000 + "}\nsecrets: {A: vault:secret/a#k}\n",
        "float-deadline": "settings: {deadline: .inf}\nsecrets: {A: vault:secret/a#k}\n",
        "nan-timeout": "settings: {timeout: .nan}\nsecrets: {A: vault:secret/a#k}\n",
        "bad-indent": "secrets:\n  A: vault:secret/a#k\n B: x\n",
        "tab-indent": "secrets:\n\tA: vault:secret/a#k\n",
        "unclosed-flow": "secrets: {A: [vault:secret/a#k\n",
        "unclosed-quote": "secrets: {A: 'vault:secret/a#k}\n",
        "bom-in-middle": "secrets:\n  A: \ufeffvault:secret/a#k\n  B: x\ufeff\n",
        "env-hijack": "secrets: {LD_PRELOAD: vault:secret/a#k, BASH_ENV: vault:secret/b#k}\n",
    }
    specs = [_text(f"yaml-{name}", HEAD + body) for name, body in cases.items()]
    specs.append(_text("root-scalar", "just a string\n"))
    specs.append(_text("root-list", "- a\n- b\n"))
    specs.append(_text("root-null", "~\n"))
    specs.append(_text("empty", ""))
    specs.append(BadSpec("only-bom", b"\xef\xbb\xbf"))
    return specs


def special_files() -> list[BadSpec]:
    return [
        BadSpec("fifo-no-writer", b"", special="fifo"),
        BadSpec("directory", b"", special="dir"),
        BadSpec("symlink-loop", b"", special="loop"),
        BadSpec("dev-zero", b"", special="zero"),
    ]


def generate() -> list[BadSpec]:
    """Every hostile spec of this module."""
    return [
        *alias_bombs(),
        *deep_nesting(),
        *big(),
        *bad_bytes(),
        *control_chars(),
        *hostile_yaml(),
        *special_files(),
    ]


def materialise(spec: BadSpec, directory: Path) -> Path:
    path = directory / f"{spec.name}.yml"
    if spec.special == "fifo":
        os.mkfifo(path)
    elif spec.special == "dir":
        path.mkdir()
    elif spec.special == "loop":
        path.symlink_to(path.name)
    elif spec.special == "zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(spec.data)
    return path


def check(spec: BadSpec, path: Path) -> str | None:
    """None when jobsecrets held against ``spec``, else what went wrong (never a value)."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "jobsecrets", "plan", "-c", str(path)],
            cwd=path.parent,
            env=clean_env(),
            capture_output=True,
            timeout=60,  # a hang detector only
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "hung"
    err = result.stderr.decode("utf-8", "replace")
    if result.returncode != 2:
        return f"exit {result.returncode}"
    if "Traceback" in err or "internal error" in err:
        return "traceback or internal error"
    if len(result.stderr) > MAX_STDERR:
        return f"{len(result.stderr)} bytes of stderr"
    errors = [
        line for line in err.splitlines() if line.startswith(("jobsecrets: error:", "Error:"))
    ]
    # A directory is refused by click's own check of -c (a usage error, also exit 2).
    if len(errors) != 1 or (errors[0].startswith("Error:") and spec.special != "dir"):
        return "not one error line"
    if path.name not in err:
        return "the file is not named"
    if spec.line is not None and f"{path.name}:{spec.line}:" not in err:
        return f"line {spec.line} is not named"
    if "\x1b" in err or "\x07" in err:
        return "a control character reached the terminal"
    return None


def test_at_least_100_hostile_specs_are_generated() -> None:
    specs = generate()
    assert len(specs) >= 100
    assert len({s.name for s in specs}) == len(specs), "names must be unique"


def test_every_hostile_spec_is_a_clear_exit_2(tmp_path: Path) -> None:
    specs = generate()
    paths = [materialise(spec, tmp_path) for spec in specs]
    # Two at a time: the machine is shared; each check is a separate interpreter.
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(check, specs, paths))
    failed = {spec.name: why for spec, why in zip(specs, outcomes, strict=True) if why}
    held = len(specs) - len(failed)
    print(f"bad specs held: {held} of {len(specs)}")
    assert not failed, f"{len(failed)} of {len(specs)} not held: {failed}"
