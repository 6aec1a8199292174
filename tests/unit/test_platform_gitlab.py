"""The GitLab exporter, the ``redact`` filter and the include's YAML, without GitLab.

The exporter's text is evaluated by real ``bash`` and ``sh`` (what the include does); the filter
runs as the CLI subprocess the include starts; the include and every example pipeline are checked
against GitLab's schema with ``check-jsonschema``. Assertions compare booleans and names: no
failure message prints a value.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

import jobsecrets
from jobsecrets.commands.redact import build_masks
from jobsecrets.platforms.gitlab import mask_variable_names, render_gitlab
from jobsecrets.recorded import parse_names
from jobsecrets.redact import MaskList
from jobsecrets.resolved import Resolution, ResolvedVar

REPO_ROOT = Path(__file__).resolve().parents[2]
INCLUDE = REPO_ROOT / "gitlab" / "jobsecrets.yml"
CATALOG_COPY = REPO_ROOT / "templates" / "jobsecrets.yml"
EXAMPLES = REPO_ROOT / "examples" / "gitlab"

NASTY = 'it\'s $(touch /tmp/pwned) `id` \\n "q" ${HOME}\nsecond line\t*'
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def _var(name: str, value: str | bytes, file: str | None = None) -> ResolvedVar:
    return ResolvedVar(name=name, value=value, backend="b", path="p", ref="b:p", file=file)


def _masks(*values: str | bytes) -> MaskList:
    masks = MaskList()
    for value in values:
        masks.add(value, name="x")
    return masks


def _cli(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBSECRETS_")}
    base.update(env)
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "jobsecrets", *args], env=base, check=False, **kwargs
    )


# ---- the exporter ---------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_export_text_evaluates_to_the_exact_values(shell: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "tls.key"
    secret_file.write_bytes(b"-----BEGIN KEY-----\nabc\n")
    resolution = Resolution(
        variables=[
            _var("NASTY", NASTY),
            _var("PLAIN", "simple-value"),
            _var("TLS_KEY", secret_file.read_bytes(), file=str(secret_file)),
        ]
    )
    masks = _masks(NASTY, "simple-value", secret_file.read_bytes(), TOKEN)
    text = render_gitlab(resolution, masks, {"VAULT_ID_TOKEN": TOKEN, "HOME": "/root"})
    script = (
        'eval "$JS_OUT"; printf "%s\\0" "$NASTY" "$PLAIN" "$TLS_KEY" '
        '"$JOBSECRETS_MASK_VARS" "$JOBSECRETS_MASK_FILE_VARS" "$JOBSECRETS_MASK_REPLACEMENT"'
    )
    out = subprocess.run(
        [shell, "-c", script],
        env={"JS_OUT": text, "PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    ).stdout.decode()
    nasty, plain, tls, names, files, replacement, _ = out.split("\0")
    assert nasty == NASTY and plain == "simple-value"
    assert tls == str(secret_file)
    assert names.split() == ["NASTY", "PLAIN", "VAULT_ID_TOKEN"]
    assert files.split() == ["TLS_KEY"]
    assert replacement == "***"
    assert not Path("/tmp/pwned").exists()


def test_mask_names_find_the_identity_token_variable_by_value() -> None:
    resolution = Resolution(variables=[_var("A", "value-a")])
    masks = _masks("value-a", TOKEN)
    env = {"MY_ID_TOKEN": TOKEN, "OTHER": "unrelated", "A": "value-a", "bad-name": TOKEN}
    names, files = mask_variable_names(resolution, masks, env)
    assert names == ["A", "MY_ID_TOKEN"] and files == []


def _fake_spec(tmp_path: Path, value: str) -> Path:
    docs = tmp_path / "docs.json"
    docs.write_text(json.dumps({"app": {"password": value}}))
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        "version: 1\nbackends:\n  f: {type: fake, file: docs.json}\n"
        "secrets:\n  APP_PASSWORD: f:app#password\n"
    )
    return spec


def test_export_refuses_a_stdout_that_is_also_stderr(tmp_path: Path) -> None:
    """Run bare in a job, stdout and stderr are the one log pipe: no value is written there."""
    value = "fake-secret-value-123"
    _fake_spec(tmp_path, value)
    state = str(tmp_path / "state" / "s.json")
    result = _cli(
        "export", "--format", "gitlab", "--state", state,
        env={}, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert result.returncode == 2
    assert b"terminal or the job log" in result.stdout
    assert value.encode() not in result.stdout


def test_export_into_a_capture_then_eval(tmp_path: Path) -> None:
    value = "fake-secret-value-456"
    _fake_spec(tmp_path, value)
    state = str(tmp_path / "state" / "s.json")
    result = _cli(
        "export", "--format", "gitlab", "--state", state,
        env={}, cwd=tmp_path, capture_output=True,
    )  # fmt: skip
    assert result.returncode == 0
    assert value.encode() not in result.stderr
    assert b"1 variable(s) for this job: APP_PASSWORD" in result.stderr
    check = subprocess.run(
        ["bash", "-c", 'eval "$JS_OUT"; [ "$APP_PASSWORD" = "$WANT" ] && echo same'],
        env={"JS_OUT": result.stdout.decode(), "WANT": value, "PATH": os.environ["PATH"]},
        capture_output=True,
        check=False,
    )
    assert check.stdout == b"same\n"


# ---- the filter ------------------------------------------------------------------------------


def test_parse_names_keeps_valid_unique_names() -> None:
    assert parse_names(" A, B  C,,A bad-name 9X _ok ") == ["A", "B", "C", "_ok"]


def test_build_masks_reads_values_from_env_and_files(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(b"file-secret-content")
    env = {"A": "env-secret-a", "F": str(key), "EMPTY": ""}
    masks, missing = build_masks(env, ["A", "EMPTY", "UNSET"], ["F", "NOFILE"])
    assert masks.redact(b"x env-secret-a y file-secret-content z") == b"x *** y *** z"
    assert str(key).encode() not in masks.patterns
    assert missing == ["EMPTY", "UNSET", "NOFILE"]


def test_a_file_variable_naming_no_regular_file_is_not_read(tmp_path: Path) -> None:
    """A FIFO blocked the filter before it started, /dev/zero was read without end, a directory
    made it withhold the job's log: now each is a variable that held nothing."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * ((16 << 20) + 1))  # over the cap
    key = tmp_path / "key"
    key.write_bytes(b"file-secret-content")
    env = {"FIFO": str(fifo), "ZERO": "/dev/zero", "DIR": str(tmp_path), "BIG": str(big)}
    env["KEY"] = str(key)
    result: list[tuple[MaskList, list[str]]] = []
    reader = threading.Thread(
        target=lambda: result.append(build_masks(env, [], ["FIFO", "ZERO", "DIR", "BIG", "KEY"])),
        daemon=True,
    )
    reader.start()
    reader.join(timeout=20)
    assert result, "reading the file variables did not end"
    masks, missing = result[0]
    assert missing == ["FIFO", "ZERO", "DIR", "BIG"]
    masked = masks.redact(b"a file-secret-content b") == b"a *** b"
    assert masked, "the regular file's value is not masked"


def _start_filter(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    done = tmp_path / "running"
    done.write_text("")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobsecrets", "redact", "--done-file", str(done)],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("JOBSECRETS_")}, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, done


def test_filter_masks_split_writes_and_removes_its_done_file(tmp_path: Path) -> None:
    value = "Sup3r-Secret-Value-42"
    key = tmp_path / "key.pem"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n")
    env = {
        "JOBSECRETS_MASK_VARS": "APP_PASSWORD",
        "JOBSECRETS_MASK_FILE_VARS": "TLS_KEY",
        "APP_PASSWORD": value,
        "TLS_KEY": str(key),
    }
    proc, done = _start_filter(tmp_path, env)
    assert proc.stdin is not None and proc.stdout is not None
    for piece in (b"start ", value[:7].encode(), value[7:].encode(), b" mid MIIEvQIBADANBgkq end"):
        proc.stdin.write(piece)
        proc.stdin.flush()
        time.sleep(0.02)
    proc.stdin.write(b"\nkey " + key.read_bytes() + b"tail without newline")
    proc.stdin.close()
    out = proc.stdout.read()
    assert proc.wait(timeout=10) == 0
    # The key file's last line break stays: it ends the line, it is not part of the secret.
    assert out == b"start *** mid *** end\nkey ***\ntail without newline"
    assert not done.exists()


def test_filter_flushes_and_exits_on_sigterm(tmp_path: Path) -> None:
    proc, done = _start_filter(tmp_path, {"JOBSECRETS_MASK_VARS": "X", "X": "term-secret-1"})
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"before term-secret-1 after\n")
    proc.stdin.flush()
    # The line coming out shows the filter is up, its handlers installed, and the line read
    # (a fixed sleep is not enough on a loaded machine: the signal then kills the interpreter).
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready, "the filter wrote nothing"
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert first + proc.stdout.read() == b"before *** after\n"
    assert not done.exists()
    proc.stdin.close()


def test_filter_loses_no_byte_it_read_when_sigterm_arrives_mid_write(tmp_path: Path) -> None:
    """SIGTERM while the filter is blocked writing to a slow log reader: every byte it had read
    still comes out, in order (only input it never read is left behind)."""
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is None:
        pytest.skip("needs Linux pipe sizes")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    fcntl.fcntl(in_w, setsize, 1 << 20)
    fcntl.fcntl(out_w, setsize, 4096)
    os.set_blocking(in_w, False)
    lines = b"".join(b"line %07d of the job log\n" % n for n in range(60_000))
    sent = 0
    with contextlib.suppress(BlockingIOError):
        while sent < len(lines):
            sent += os.write(in_w, lines[sent:])
    os.close(in_w)
    data = lines[:sent]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSECRETS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobsecrets", "redact"],
        env={**env, "JOBSECRETS_MASK_VARS": "X", "X": "not-in-this-log-1"},
        stdin=in_r,
        stdout=out_w,
        stderr=subprocess.DEVNULL,
    )
    os.close(out_w)
    try:
        first = os.read(out_r, 4096)  # the filter runs; it now blocks on the full pipe
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out = bytearray(first)
        while chunk := os.read(out_r, 1 << 16):
            out += chunk
        assert proc.wait(timeout=10) == 0
        left = bytearray()
        while chunk := os.read(in_r, 1 << 16):
            left += chunk
    finally:
        proc.kill()
        os.close(out_r)
        os.close(in_r)
    read_by_filter = len(data) - len(left)
    assert bytes(out) == data[:read_by_filter], "bytes the filter had read were lost"


def test_filter_ignores_sigint(tmp_path: Path) -> None:
    proc, _ = _start_filter(tmp_path, {"JOBSECRETS_MASK_VARS": "X", "X": "int-secret-1"})
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"up int-secret-1\n")
    proc.stdin.flush()
    # Its first line out shows its handlers are installed (no fixed sleep: see above).
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready, "the filter wrote nothing"
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    proc.stdin.write(b"still here int-secret-1\n")
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    assert first + proc.stdout.read() == b"up ***\nstill here ***\n"


# ---- the include -----------------------------------------------------------------------------


def _documents(path: Path) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _schema_view(path: Path, tmp_path: Path) -> Path:
    """The file as one YAML document (check-jsonschema reads one; GitLab's ``spec:`` header is a
    separate document, and the schema accepts ``spec`` as a top-level key)."""
    text = path.read_text()
    if not re.search(r"^---$", text, re.MULTILINE):
        return path
    merged = tmp_path / f"{path.parent.name}-{path.name}"
    merged.write_text(re.sub(r"^---$", "", text, flags=re.MULTILINE))
    return merged


def test_include_and_examples_pass_the_gitlab_ci_schema(tmp_path: Path) -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker, "check-jsonschema is in the dev extras"
    files = [INCLUDE, CATALOG_COPY, *sorted(EXAMPLES.glob("*/.gitlab-ci.yml"))]
    assert len(files) >= 5
    result = subprocess.run(
        [
            checker,
            "--builtin-schema", "vendor.gitlab-ci",
            "--data-transform", "gitlab-ci",
            *(str(_schema_view(path, tmp_path)) for path in files),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_catalog_component_is_the_include_verbatim() -> None:
    assert CATALOG_COPY.read_bytes() == INCLUDE.read_bytes()


def test_include_inputs_and_defaults() -> None:
    header, body = _documents(INCLUDE)
    inputs = header["spec"]["inputs"]  # type: ignore[index]
    assert set(inputs) == {
        "config", "only", "id_token_variable", "install", "version", "install_path", "python", "redact",
        "scan",
    }  # fmt: skip
    assert inputs["version"]["default"] == jobsecrets.__version__
    assert inputs["redact"] == {**inputs["redact"], "type": "boolean", "default": True}
    assert inputs["install"]["options"] == ["pypi", "path", "none"]
    text = INCLUDE.read_text()
    used = set(re.findall(r"\$\[\[\s*inputs\.(\w+)\s*\]\]", text))
    assert used == set(inputs)
    job = body[".jobsecrets"]  # type: ignore[index]
    assert set(job) == {"variables", "before_script", "after_script"}
    # Inputs reach the script only through variables, never pasted into shell code.
    scripts = "\n".join(job["before_script"] + job["after_script"])
    assert "$[[" not in scripts


def test_example_specs_parse(tmp_path: Path) -> None:
    for spec in sorted(EXAMPLES.glob("**/jobsecrets.yml")):
        result = _cli(
            "plan", "-c", spec.name,
            env={"VAULT_ADDR": "https://vault.example.com:8200"}, cwd=spec.parent, capture_output=True,
        )  # fmt: skip
        assert result.returncode == 0, f"{spec}: {result.stderr.decode()}"


def test_include_never_traces_the_token_or_the_values_under_ci_debug_trace(tmp_path: Path) -> None:
    """CI_DEBUG_TRACE runs the job with `set -x`: bash traces `__js_out='export ...'` (every value)
    and the token assignment unless xtrace is off before them; it is on again afterwards."""
    _header, body = _documents(INCLUDE)
    step = body[".jobsecrets"]["before_script"][1]  # type: ignore[index]
    (tmp_path / "step.sh").write_text(step)
    stub = tmp_path / "bin" / "jobsecrets"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nprintf 'export APP_PASSWORD=%s\\n' \"'s3cr3t-from-the-store'\"\n")
    stub.chmod(0o755)
    env = {
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "JOBSECRETS_REDACT_JOB": "false",
        "VAULT_ID_TOKEN": TOKEN,
    }
    result = subprocess.run(
        ["bash", "-c", 'set -x; . ./step.sh; [ "${#APP_PASSWORD}" -eq 21 ]; : after'],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, "the value did not reach the shell"
    trace = result.stdout + result.stderr
    value_traced = "s3cr3t-from-the-store" in trace
    token_traced = TOKEN in trace
    assert not value_traced, "xtrace printed a value"
    assert not token_traced, "xtrace printed the CI identity token"
    assert "+ : after" in trace, "xtrace was not switched back on"


def test_gitlab_ci_local_jobs_are_gitlab_jobs() -> None:
    """gitlab-ci-local sets GITLAB_CI=false but the job's own variables: its id token is found."""
    from jobsecrets.platforms import detect

    job = {"CI_JOB_ID": "3", "CI_PROJECT_DIR": "/p", "CI_PIPELINE_ID": "9"}
    assert detect({"GITLAB_CI": "false", **job}).name == "gitlab"
    assert detect({"GITLAB_CI": "false"}).name == "local"
    assert detect({"GITLAB_CI": "true"}).name == "gitlab"


def test_after_script_says_how_to_keep_the_include_before_script() -> None:
    text = INCLUDE.read_text()
    assert "before_script: [!reference [.jobsecrets, before_script]" in text
    assert ".before-script-" in text


# ---- the include's scan when the script ends ----------------------------------------------------

# What the job's script does after writing a value into the scanned file: end plainly, set its own
# EXIT trap (replacing the include's), end with `exec`, or chain `jobsecrets_finish` from its trap.
LEAK = 'echo "token=$APP_PASSWORD" > out.txt'
ENDINGS = {
    "plain": f"{LEAK}\necho built",
    "own-trap": f"trap 'rm -f build.lock' EXIT\n{LEAK}\necho built",
    "exec": f"{LEAK}\nexec sh -c 'echo built'",
    "chained": (
        "trap 'rc=$?; rm -f build.lock; jobsecrets_finish \"$rc\"' EXIT\n"
        f": > build.lock\n{LEAK}\necho built"
    ),
}


def _run_job(
    tmp_path: Path, shell: str, script: str, extra: dict[str, str] | None = None
) -> tuple[int, str, int, str]:
    """The include's before_script and ``script`` in one shell, its after_script in a new one,
    as the runner's shell executor does (`install: none`, the fake backend)."""
    _header, body = _documents(INCLUDE)
    job = body[".jobsecrets"]  # type: ignore[index]
    inputs = {
        name: str(spec.get("default", "")).lower()
        for name, spec in _header["spec"]["inputs"].items()  # type: ignore[index]
    }
    variables = {}
    for name, value in job["variables"].items():
        for input_name, default in inputs.items():
            value = str(value).replace(f"$[[ inputs.{input_name} ]]", default)
        variables[name] = value
    project = tmp_path / "p"
    project.mkdir(exist_ok=True)
    _fake_spec(project, "gl-include-canary-Tr42")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CI_", "GITLAB", "JOBSECRETS_"))
    }
    env.update(variables)
    env.update(
        {
            "JOBSECRETS_INSTALL": "none",
            "JOBSECRETS_SCAN": "out.txt",
            "GITLAB_CI": "true",
            "CI_PROJECT_DIR": str(project),
            "CI_JOB_ID": "4242",
            "CI_PIPELINE_ID": "77",
            "CI_PROJECT_PATH": "acme/app",
            "VAULT_ID_TOKEN": TOKEN,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            **(extra or {}),
        }
    )
    # The runner's bash runs with -e and pipefail; dash as a plain `sh`.
    flags = ["-e", "-o", "pipefail"] if shell == "bash" else []
    main = "\n".join([*job["before_script"], script])
    first = subprocess.run(
        [shell, *flags, "-c", main], cwd=project, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    after = subprocess.run(
        [shell, *flags, "-c", "\n".join(job["after_script"])], cwd=project, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return (
        first.returncode,
        first.stdout + first.stderr,
        after.returncode,
        after.stdout + after.stderr,
    )


@pytest.mark.parametrize("shell", ["bash", "dash"])
@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_include_scan_is_never_skipped_silently(tmp_path: Path, shell: str, ending: str) -> None:
    """A script's own EXIT trap or a final `exec` skipped the scan: the job passed, the value went
    out with the artifacts, nothing said so. Now the scan runs in the script (and fails the job)
    or, when the script's trap never ran it, in after_script, which reports it loudly."""
    code, output, after_code, after_output = _run_job(tmp_path, shell, ENDINGS[ending])
    everything = output + after_output
    assert "gl-include-canary-Tr42" not in everything, "a value reached the log"
    assert "built" in output
    skipped = "did not run when the script ended" in after_output
    found_in_after = "out.txt:1" in after_output and "ERROR: a value of this job" in after_output
    if ending in ("plain", "chained"):
        assert code == 9, f"the scan's finding did not fail the job (exit {code})"
        assert "1 finding(s)" in output
        assert not skipped and not found_in_after, "after_script scanned again"
    else:
        # after_script cannot fail the job: it scans and says so, loudly.
        assert skipped and found_in_after, after_output[-1500:]
    assert after_code == 0, "after_script must not end early (a job's own lines follow ours)"
    assert not (tmp_path / "p" / "build.lock").exists()
    assert "revoke" in after_output


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_jobsecrets_finish_takes_only_an_exit_code(tmp_path: Path, shell: str) -> None:
    """`jobsecrets_finish CODE` exits with CODE; anything but 0-255 keeps $? (never run or
    evaluated: it reaches neither `exit` nor $(( )) as it was)."""
    script = "trap 'jobsecrets_finish \"$CODE\"' EXIT\necho clean > out.txt\nexit 3"
    arguments = {"7": 7, "0": 0, "300": 3, "$(touch pwned)": 3, "a[$(touch pwned)]": 3, "": 3}
    for argument, expected in arguments.items():
        code, output, _after_code, _after_output = _run_job(
            tmp_path, shell, script, extra={"CODE": argument}
        )
        assert code == expected, f"{argument!r}: exit {code}"
        assert "0 finding(s)" in output
    assert not list(tmp_path.rglob("pwned"))
