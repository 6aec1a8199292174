"""Masking structured secrets changes no byte of ordinary CI log text (the derived-line rule).

A kubeconfig, a pretty-printed service-account key, a docker config and a multi-line value with
whitespace-only and indented lines are registered; a generated log of pip, npm, pytest, docker
build and kubectl apply output (with manifests, other accounts' keys and kubeconfigs) must come
out byte for byte, through the library in chunks and through the real ``jobsecrets redact``.
The bench (``bench/redact_ordinary_logs.py``) runs the same check on a few hundred MB.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from jobsecrets.maskforms import distinctive
from jobsecrets.redact import MaskList
from support.ci_logs import ci_log, structured_secrets
from support.cli import clean_env


def _masks() -> MaskList:
    masks = MaskList()
    for i, value in enumerate(structured_secrets()):
        masks.add(value, name=f"S{i}")
    return masks


def test_generated_ci_log_is_unchanged_through_the_library() -> None:
    log = ci_log(3_000_000)
    redactor = _masks().redactor()
    out = b"".join(redactor.feed(log[i : i + 65536]) for i in range(0, len(log), 65536))
    out += redactor.flush()
    same = out == log
    assert same, "ordinary log text was changed"


def test_generated_ci_log_is_unchanged_through_the_filter() -> None:
    log = ci_log(500_000, seed=3)
    env = {os.fsencode(k): os.fsencode(v) for k, v in clean_env().items()}
    names = []
    for i, value in enumerate(structured_secrets()):
        env[f"S{i}".encode()] = value
        names.append(f"S{i}")
    env[b"JOBSECRETS_MASK_VARS"] = " ".join(names).encode()
    result = subprocess.run(
        [sys.executable, "-m", "jobsecrets", "redact"],
        input=log,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0
    same = result.stdout == log
    assert same, "ordinary log text was changed"


def test_the_secrets_are_still_masked() -> None:
    masks = _masks()
    for value in structured_secrets():
        assert (value in masks.redact(b"x " + value + b" y")) is False, "a value was let through"
    kubeconfig, account = structured_secrets()[:2]
    token_line = next(line for line in kubeconfig.splitlines() if b"token:" in line)
    assert (token_line.strip() in masks.redact(token_line.strip())) is False
    key_id = next(line for line in account.splitlines() if b"private_key_id" in line)
    assert (key_id.strip() in masks.redact(key_id.strip())) is False


def test_the_derived_line_rule() -> None:
    ordinary = [
        b"apiVersion: v1",
        b"kind: Config",
        b'"type": "service_account",',
        b"- cluster:",
        b"preferences: {}",
        b"current-context: prod",
        b"    ",
        b"},",
        b"-----BEGIN CERTIFICATE-----",
        b"- item",
        b'"auth_uri": "https://accounts.google.com/o/oauth2/auth",',
        b"server: https://10.0.0.1:6443",
        b"127.0.0.1",
    ]
    for line in ordinary:
        assert distinctive(line.strip(), 4) is False, line
    secret_looking = [
        b"token: " + b"a1B2" * 10,
        b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
        b"password: hunter22",
        b"a multi-line string",
        b"-----BEGIN OPENSSH PRIVATE KEY-----",
        b"asdf",
    ]
    for line in secret_looking:
        assert distinctive(line, 4) is True, line
