"""Tests for run_child, with real child processes.

Most tests run ``run_child`` inside a small wrapper process so that its fds 1 and 2 can be
captured (and signalled) as a whole. Canary values reach the wrapper and the child only
through the environment. Assertions use booleans with fixed messages so a failure never
prints a canary.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from jobsecrets import runner
from jobsecrets.errors import ChildError
from jobsecrets.redact import MaskList
from jobsecrets.runner import run_child

WRAPPER = r"""
import json, os, sys
from jobsecrets.redact import MaskList
from jobsecrets.runner import run_child

masks = MaskList()
for i, value in enumerate(os.environ["TEST_CANARIES"].split(",")):
    masks.add(bytes.fromhex(value), name=f"C{i}")
argv = json.loads(os.environ["TEST_CHILD_ARGV"])
tty = {"1": True, "0": False}[os.environ["TEST_TTY"]]
sys.exit(run_child(argv, os.environ, masks, tty=tty))
"""


def canary() -> bytes:
    return b"CANARY" + secrets.token_hex(10).encode()


def child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def wrapper_env(values: list[bytes], argv: list[str], tty: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["TEST_CANARIES"] = ",".join(v.hex() for v in values)
    env["TEST_CHILD_ARGV"] = json.dumps(argv)
    env["TEST_TTY"] = "1" if tty else "0"
    for i, value in enumerate(values):
        env[f"SECRET{i}"] = value.decode()
    return env


def run_wrapped(
    values: list[bytes], argv: list[str], *, tty: bool = False, merge: bool = False
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", WRAPPER],
        env=wrapper_env(values, argv, tty),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        timeout=60,
        check=False,
    )


def leaked(values: list[bytes], *outputs: bytes) -> bool:
    return any(v in out for v in values for out in outputs)


SPLIT_WRITE = """
import os, sys, time
value = os.environ["SECRET0"]
stream = getattr(sys, {stream!r})
stream.write("before " + value[:9]); stream.flush()
time.sleep(0.2)
stream.write(value[9:] + " after\\n"); stream.flush()
"""


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_value_split_across_two_writes_is_masked(stream: str) -> None:
    value = canary()
    result = run_wrapped([value], child(SPLIT_WRITE.format(stream=stream)))
    out = result.stdout if stream == "stdout" else result.stderr
    assert not leaked([value], result.stdout, result.stderr), "canary leaked"
    assert out == b"before *** after\n"
    assert result.returncode == 0


def test_base64_output_is_masked() -> None:
    value = canary()
    code = """
import base64, os, sys, time
blob = base64.b64encode(b"xx" + os.environb[b"SECRET0"] + b"yy").decode()
print(blob[:7], end="", flush=True)
time.sleep(0.1)
print(blob[7:], flush=True)
print(base64.urlsafe_b64encode(os.environb[b"SECRET0"]).decode().rstrip("="))
print(os.environb[b"SECRET0"].hex())
"""
    result = run_wrapped([value], child(code))
    encodings = [
        base64.b64encode(value),
        base64.b64encode(value)[4:-4],
        base64.b64encode(b"xx" + value)[4:-4],
        base64.urlsafe_b64encode(value).rstrip(b"="),
        value.hex().encode(),
    ]
    bad = leaked([value, *encodings], result.stdout, result.stderr)
    assert not bad, "the canary or an encoding of it leaked"
    assert result.stdout.count(b"***") == 3


def test_pty_mode_keeps_colours_and_masks() -> None:
    value = canary()
    multi = canary() + b"\n" + canary()
    code = r"""
import os, sys
print("tty:", os.isatty(1))
print("\x1b[31m" + os.environ["SECRET0"] + "\x1b[0m")
print(os.environ["SECRET1"])
"""
    result = run_wrapped([value, multi], child(code), tty=True)
    assert not leaked([value, *multi.split(b"\n")], result.stdout, result.stderr), "leaked"
    assert b"tty: True" in result.stdout
    assert b"\x1b[31m***\x1b[0m" in result.stdout
    assert result.returncode == 0


def test_pipe_mode_child_sees_no_tty() -> None:
    result = run_wrapped([canary()], child("import os; print(os.isatty(1))"))
    assert result.stdout == b"False\n"


def test_order_of_stdout_and_stderr_is_kept() -> None:
    code = """
import sys, time
for i in range(3):
    print("out", i, flush=True); time.sleep(0.05)
    print("err", i, file=sys.stderr, flush=True); time.sleep(0.05)
"""
    result = run_wrapped([canary()], child(code), merge=True)
    expected = b"".join(b"out %d\nerr %d\n" % (i, i) for i in range(3))
    assert result.stdout == expected


def test_interactive_line_is_not_held_back() -> None:
    code = """
import sys, time
print("prompt %.6f" % time.time(), flush=True)
time.sleep(3)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER],
        env=wrapper_env([canary()], child(code), tty=False),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        received = time.time()
    finally:
        proc.kill()
        proc.wait()
    sent = float(line.split()[1])
    # The goal is < 50 ms; the bound leaves room for a loaded CI machine, yet is far below
    # the 3 s a redactor that waited for more output (or for the exit) would take.
    assert received - sent < 0.5, f"line took {received - sent:.3f}s"


@pytest.mark.parametrize(("code", "expected"), [("raise SystemExit(3)", 3), ("pass", 0)])
def test_exit_code_is_the_childs(code: str, expected: int) -> None:
    assert run_wrapped([canary()], child(code)).returncode == expected


def test_killed_by_signal_is_128_plus_n() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert run_wrapped([canary()], child(code)).returncode == 128 + signal.SIGKILL


def test_a_background_process_holding_the_output_does_not_keep_us_running() -> None:
    argv = ["sh", "-c", "sleep 5 & echo started; exit 3"]
    result = run_wrapped([canary()], argv)
    assert result.returncode == 3
    assert result.stdout == b"started\n"


def test_output_a_background_process_prints_soon_after_a_quiet_child_exits_is_kept() -> None:
    """The idle time before we stop reading counts from the child's exit, not from its last
    output: a child that was quiet for a while must not cut its background job short."""
    argv = ["sh", "-c", "sleep 2.5; (sleep 1; echo late) & exit 0"]
    result = run_wrapped([canary()], argv)
    assert result.returncode == 0
    assert result.stdout == b"late\n"


TRAPS_TERM = """
import signal, sys, time
def bye(signum, frame):
    print("child got", signum, flush=True)
    sys.exit(42)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
time.sleep(30)
"""
SLEEPS = """
import time
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize(("code", "expected"), [(TRAPS_TERM, 42), (SLEEPS, 128 + 15)])
def test_sigterm_is_forwarded(code: str, expected: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER],
        env=wrapper_env([canary()], child(code), tty=False),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == expected
    if expected == 42:
        assert rest == b"child got %d\n" % signal.SIGTERM


def test_sigterm_is_forwarded_in_pty_mode() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER],
        env=wrapper_env([canary()], child(TRAPS_TERM), tty=True),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 42
    assert b"child got" in rest


def _run_in_process(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    return run_child(argv, env if env is not None else dict(os.environ), MaskList(), tty=False)


def test_not_found_is_127() -> None:
    with pytest.raises(ChildError) as info:
        _run_in_process(["jobsecrets-no-such-command-" + secrets.token_hex(4)])
    assert info.value.exit_code == 127
    assert ChildError.exit_code == 126, "the class default must not change"


def test_not_executable_is_126(tmp_path: os.PathLike[str]) -> None:
    script = os.path.join(tmp_path, "script.sh")
    with open(script, "w") as fh:
        fh.write("#!/bin/sh\necho hi\n")
    os.chmod(script, 0o644)
    with pytest.raises(ChildError) as info:
        _run_in_process([script])
    assert info.value.exit_code == 126


def test_no_shell_and_handlers_restored(capfd: pytest.CaptureFixture[str]) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    assert _run_in_process(["echo", "$HOME;", "`id`", "|x"]) == 0
    assert capfd.readouterr().out == "$HOME; `id` |x\n"
    after = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    assert before == after


def test_env_is_passed_and_masked_in_process(capfd: pytest.CaptureFixture[str]) -> None:
    value = canary()
    masks = MaskList()
    masks.add(value, name="TOKEN")
    env = dict(os.environ, TOKEN=value.decode())
    code = run_child(child("import os; print('t=' + os.environ['TOKEN'])"), env, masks, tty=False)
    out = capfd.readouterr().out
    bad = value.decode() in out
    assert not bad, "canary leaked"
    assert code == 0 and out == "t=***\n"


def test_an_output_error_stops_the_child_before_it_leaves(tmp_path: Path) -> None:
    """Our stdout failing (here /dev/full: ENOSPC) must not leave the child running unwaited."""
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
        "print('x' * 100, flush=True); time.sleep(60)"
    )
    wrapper = (
        "import sys\n"
        "from jobsecrets.redact import MaskList\n"
        "from jobsecrets.runner import run_child\n"
        f"run_child([sys.executable, '-c', {child!r}, {str(pid_file)!r}], {{}}, MaskList(), tty=False)\n"
    )
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-c", wrapper],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=30,
            check=False,
        )
    assert result.returncode != 0
    assert not alive(int(pid_file.read_text())), "the child outlived a failed run_child"


def alive(pid: int) -> bool:
    """Whether process ``pid`` still exists (it was reaped if it was ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("tty", [False, True])
def test_masks_built_after_the_start_still_mask_output_printed_before(
    capfd: pytest.CaptureFixture[str], tty: bool
) -> None:
    """A mask-list builder runs once the child has started; what the child printed first waits."""
    value = canary()
    env = dict(os.environ, TOKEN=value.decode())
    built_after: list[bool] = []
    marker = Path(os.environ.get("TMPDIR", "/tmp")) / f"jobsecrets-test-{secrets.token_hex(8)}"

    def build() -> MaskList:
        # The child writes the marker first, then prints the value: by the time we build, it has
        # (usually) printed already, and that output must come out masked all the same.
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        built_after.append(marker.exists())
        masks = MaskList()
        masks.add(value, name="TOKEN")
        return masks

    code = (
        f"import os; open({str(marker)!r}, 'w').close(); "
        "print('t=' + os.environ['TOKEN'], flush=True)"
    )
    try:
        assert run_child(child(code), env, build, tty=tty) == 0
    finally:
        marker.unlink(missing_ok=True)
    out = capfd.readouterr().out
    bad = value.decode() in out
    assert not bad, "canary leaked"
    assert built_after == [True], "the masks were built before the child started"
    assert out.replace("\r\n", "\n") == "t=***\n"


def test_a_failing_mask_builder_stops_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"

    def build() -> MaskList:
        deadline = time.monotonic() + 10
        # Until the pid is written, not only the file created: stopped in between, the child
        # would leave an empty file and the check below could not read its pid.
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        raise MemoryError("no room for the matcher")

    start = time.monotonic()
    with pytest.raises(MemoryError):
        run_child([*child(code), str(pid_file)], dict(os.environ), build, tty=False)
    assert time.monotonic() - start < 30
    assert not alive(int(pid_file.read_text())), "the child outlived a failed mask build"


@pytest.mark.parametrize("name", ["", "a-directory"])
def test_a_name_that_finds_no_file_is_127_as_in_a_shell(tmp_path: Path, name: str) -> None:
    """execvp says EACCES for '' and for a directory on PATH; bash says 'command not found'."""
    (tmp_path / "a-directory").mkdir()
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    with pytest.raises(ChildError) as info:
        _run_in_process([name], env)
    assert info.value.exit_code == 127
    assert "command not found" in str(info.value)


def test_a_directory_given_as_a_path_is_126(tmp_path: Path) -> None:
    with pytest.raises(ChildError) as info:
        _run_in_process([str(tmp_path)])
    assert info.value.exit_code == 126
    assert "is a directory" in str(info.value)


def test_a_background_process_that_keeps_writing_does_not_hold_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The drain after the child's exit stopped only after 2 s of quiet: a process it left
    behind that printed every second held `run`, and the job's leases, for as long as it
    printed. Now the drain ends a bounded time after the exit (shortened here), while that
    process still runs."""
    monkeypatch.setattr(runner, "_DRAIN_MAX", 1.0, raising=False)
    pid_file = tmp_path / "background.pid"
    script = (
        f"(sh -c 'echo $PPID' > '{pid_file}'; "
        "for i in $(seq 300); do echo tick; sleep 0.1; done) & exit 3"
    )
    with caplog.at_level("WARNING", logger="jobsecrets"):
        code = _run_in_process(["sh", "-c", script])
    assert code == 3
    background = int(pid_file.read_text())
    try:
        # Running, not a zombie no one reaps (PID 1 of a container may not).
        stat_line = Path(f"/proc/{background}/stat").read_text()
        alive = stat_line.rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        alive = False
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(background, signal.SIGKILL)
    assert alive, "run returned only once the background process had ended"
    assert any("still writes to its output" in r.getMessage() for r in caplog.records)
