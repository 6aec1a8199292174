"""Paths that name a FIFO or a device: refused at once, never a hang or an endless read.

An audit log, ``$GITHUB_ENV``/``$GITHUB_OUTPUT``/``$GITHUB_STEP_SUMMARY`` and ``scan --summary``
were opened with a plain ``open(2)``, which on a FIFO that no process reads waits for a reader
for ever: the job hung with its secrets resolved and its leases held. A FIFO with a reader (a log
shipper) still gets every record.

In-process opens run beside a watchdog that opens the FIFO for reading after a while, so the
old hang shows as a failed assertion instead of a test that never ends.

The state file (``export --state``, ``revoke --state``) was read with a plain ``open()`` and
``read()``: a FIFO hung ``export`` before it fetched anything and ``revoke`` in a post step, and
``/dev/zero`` was read into memory until the kernel killed the process.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and never a value it
compared.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_platform_github import masks_for, resolution
from test_policy import JOURNAL, obtained_and_revoked, write_fake

from jobsecrets.errors import ConfigError
from jobsecrets.platforms import github
from jobsecrets.safe_files import open_append
from support.cli import clean_env, jobsecrets

WATCHDOG_S = 5.0


@contextmanager
def watchdog(fifo: Path) -> Iterator[list[bool]]:
    """Yield a list that holds True if an open of ``fifo`` had to be released by a reader."""
    released: list[bool] = []
    done = threading.Event()

    def release() -> None:
        if not done.wait(WATCHDOG_S):
            released.append(True)
            # Opening the read end lets a writer blocked in open(2) go on.
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            done.wait(WATCHDOG_S)
            os.close(fd)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield released
    finally:
        done.set()
        thread.join()


@contextmanager
def reader(fifo: Path) -> Iterator[list[bytes]]:
    """A process-side reader of ``fifo`` (a log shipper); yields what it read once closed."""
    got: list[bytes] = []
    ready = threading.Event()

    def read() -> None:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        ready.set()
        os.set_blocking(fd, True)
        chunks = []
        try:
            # EOF only once a writer has come and gone: wait for the first byte, then drain.
            while True:
                chunk = os.read(fd, 65536)
                if chunk:
                    chunks.append(chunk)
                elif chunks:
                    break
                else:
                    threading.Event().wait(0.02)
        finally:
            os.close(fd)
        got.append(b"".join(chunks))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    ready.wait(WATCHDOG_S)
    yield got
    thread.join(30)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_open_append_refuses_a_fifo_nothing_reads(fifo: Path) -> None:
    with watchdog(fifo) as released, pytest.raises(OSError) as caught:
        fd = open_append(str(fifo))
        os.close(fd)
    assert not released, "open(2) blocked on a FIFO nothing reads"
    assert caught.value.errno == errno.ENXIO
    assert "no process reads" in (caught.value.strerror or "")


def test_open_append_writes_to_a_fifo_with_a_reader_and_blocks_again(fifo: Path) -> None:
    with reader(fifo) as got:
        fd = open_append(str(fifo))
        try:
            # Blocking again: a write larger than the pipe's buffer waits for the reader
            # instead of failing with EAGAIN half written.
            assert os.get_blocking(fd)
            os.write(fd, b"x" * 200_000)
        finally:
            os.close(fd)
    assert got == [b"x" * 200_000]


def test_open_append_creates_with_the_mode_and_leaves_an_existing_mode(tmp_path: Path) -> None:
    new = tmp_path / "new.log"
    os.close(open_append(str(new), 0o600))
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    mine = tmp_path / "shared.log"
    mine.write_text("before\n")
    mine.chmod(0o644)
    fd = open_append(str(mine), 0o600)
    os.write(fd, b"after\n")
    os.close(fd)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o644  # never the mode of what we did not create
    assert mine.read_text() == "before\nafter\n"


def test_open_append_without_follow_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(OSError) as caught:
        open_append(str(link), follow=False)
    assert caught.value.errno == errno.ELOOP
    assert target.read_text() == ""


def test_run_with_an_audit_log_fifo_nothing_reads_stops_at_once_and_revokes(
    tmp_path: Path, fifo: Path
) -> None:
    write_fake(tmp_path, "")
    result = jobsecrets(
        ["run", "--audit-log", str(fifo), "--", "sh", "-c", "echo child-ran"],
        cwd=tmp_path,
        timeout=30,
    )
    assert result.returncode == 2
    assert "child-ran" not in result.stdout
    assert "no process reads" in result.stderr
    # The log is opened before anything is fetched: nothing obtained, or all of it revoked.
    leases, revoked = obtained_and_revoked(tmp_path / JOURNAL)
    assert leases <= revoked


def test_run_with_an_audit_log_fifo_a_shipper_reads_gets_every_record(
    tmp_path: Path, fifo: Path
) -> None:
    _, value, _ = write_fake(tmp_path, "")
    with reader(fifo) as got:
        result = jobsecrets(
            ["run", "--audit-log", str(fifo), "--", "sh", "-c", "echo child-ran"],
            cwd=tmp_path,
            timeout=30,
        )
    assert result.returncode == 0
    assert "child-ran" in result.stdout
    records = [json.loads(line) for line in got[0].decode().splitlines()]
    assert any(r.get("variable") == "DB_PASS" for r in records)
    assert (value in got[0].decode()) is False


def test_github_env_fifo_fails_the_export_without_hanging(
    tmp_path: Path, fifo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = resolution()
    env = {"GITHUB_ENV": str(fifo), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    with watchdog(fifo) as released, pytest.raises(ConfigError) as caught:
        github.export(res, masks_for(res), env, None, stream=io.StringIO())
    assert not released, "the export blocked on $GITHUB_ENV"
    assert "no process reads" in caught.value.message
    assert not (tmp_path / "summary").exists()  # nothing after the failed write


def test_a_summary_fifo_is_a_warning_and_the_values_are_out(
    tmp_path: Path, fifo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = resolution()
    env_file = tmp_path / "env"
    env = {"GITHUB_ENV": str(env_file), "GITHUB_STEP_SUMMARY": str(fifo)}
    with watchdog(fifo) as released:
        github.export(res, masks_for(res), env, None, stream=io.StringIO())
    assert not released, "the export blocked on $GITHUB_STEP_SUMMARY"
    assert "DB_PASSWORD<<" in env_file.read_text()
    assert "could not write the job summary" in capsys.readouterr().err


def test_scan_summary_fifo_is_a_warning_not_a_hang(tmp_path: Path, fifo: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.txt").write_text("nothing secret here\n")
    env = {"LEAKY": "a-value-nobody-printed-7f3e", "JOBSECRETS_MASK_VARS": "LEAKY"}
    result = jobsecrets(["scan", "dist", "--summary", str(fifo)], cwd=tmp_path, env=env, timeout=30)
    assert result.returncode == 0
    assert "could not write the summary" in result.stderr


def bounded_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The old code read /dev/zero without end: a MemoryError, not the machine's OOM killer.
    return jobsecrets(args, cwd=cwd, timeout=30, memory_limit=2 << 30)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_export_refuses_a_state_path_that_is_no_file_before_fetching(
    tmp_path: Path, fifo: Path, kind: str
) -> None:
    write_fake(tmp_path, "")
    state = {"fifo": str(fifo), "device": os.devnull, "directory": str(tmp_path / "d")}[kind]
    if kind == "directory":
        os.mkdir(state)
    result = bounded_cli(["export", "--format", "json", "--state", state], tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    # A directory is click's to refuse (the option's type); the others are ours.
    expected = "is a directory" if kind == "directory" else "is not a regular file"
    assert expected in result.stderr
    # Nothing was fetched: the fake store's journal records no lease at all.
    assert obtained_and_revoked(tmp_path / JOURNAL) == (set(), set())
    if kind == "device":
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # /dev/null left as it was


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_revoke_refuses_a_state_path_that_is_no_file(tmp_path: Path, fifo: Path, kind: str) -> None:
    state = str(fifo) if kind == "fifo" else "/dev/zero"
    result = bounded_cli(["revoke", "--state", state], tmp_path)
    assert result.returncode == 2
    assert "is not a regular file" in result.stderr


def test_revoke_refuses_a_state_file_too_big_to_be_one(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with open(state, "wb") as handle:
        handle.truncate((64 << 20) + 1)  # sparse: no disk used
    state.chmod(0o600)
    result = bounded_cli(["revoke", "--state", str(state)], tmp_path)
    assert result.returncode == 2
    assert "larger than 64 MiB" in result.stderr
    assert state.stat().st_size == (64 << 20) + 1  # kept: it is no state file of ours to remove


def test_a_failed_export_puts_the_earlier_state_back_past_a_planted_fifo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """export wrote its state, then failed (no $GITHUB_ENV) and revoked: the state file must be
    the earlier export's again, byte for byte. The old code wrote it through the fixed name
    ``STATE.restore``, so a FIFO planted there hung the failed export."""
    from jobsecrets.commands.export import export_command

    write_fake(tmp_path, "")
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    state = state_dir / "state.json"
    earlier = b'{"version": 1, "backends": {}, "leases": [], "tokens": [], "files": []}'
    state.write_bytes(earlier)
    state.chmod(0o600)
    planted = state_dir / "state.json.restore"
    os.mkfifo(planted)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ENV", raising=False)  # so the github exporter fails
    monkeypatch.delenv("JOBSECRETS_GITHUB_EXPORT_ENV", raising=False)
    with watchdog(planted) as released, pytest.raises(ConfigError, match="GITHUB_ENV"):
        export_command(
            "jobsecrets.yml", None, "github", output=None, state=str(state), files_dir=None
        )  # fmt: skip
    assert not released, "the failed export blocked on a FIFO beside the state file"
    assert state.read_bytes() == earlier
    # The lock file beside it stays (removing it would race with a process waiting on it).
    assert sorted(p.name for p in state_dir.iterdir()) == [
        "state.json",
        "state.json.lock",
        "state.json.restore",
    ]


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_fake_store_file_that_is_no_file_is_a_spec_problem(
    tmp_path: Path, fifo: Path, kind: str
) -> None:
    """``type: fake`` reads the file its spec names: a FIFO hung the command, and
    ``/dev/zero`` was read into memory (a spec written to hurt)."""
    store = str(fifo) if kind == "fifo" else "/dev/zero"
    (tmp_path / "jobsecrets.yml").write_text(
        f"version: 1\nbackends:\n  store: {{type: fake, file: '{store}'}}\n"
        "secrets:\n  A: store:app#a\n"
    )
    result = bounded_cli(["export", "--format", "json"], tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no readable regular file" in result.stderr


FILE_SPEC = (
    "version: 1\nbackends:\n  fake: {type: fake, file: store.json, journal: journal.jsonl}\n"
    "secrets:\n  TLS:\n    ref: fake:tls#key\n    file: true\n"
)


def _file_spec(tmp_path: Path) -> None:
    (tmp_path / "store.json").write_text(json.dumps({"tls": {"key": "k3y-" + "x" * 20}}))
    (tmp_path / "jobsecrets.yml").write_text(FILE_SPEC)


@pytest.mark.parametrize("kind", ["device", "fifo", "shared"])
def test_export_checks_files_dir_before_fetching(tmp_path: Path, fifo: Path, kind: str) -> None:
    """``--files-dir`` naming a device or a FIFO was an internal error (NotADirectoryError from
    mkdtemp) after the values were fetched; a directory others may write to was used."""
    _file_spec(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # world-writable, not sticky
    where = {"device": os.devnull, "fifo": str(fifo), "shared": str(shared)}[kind]
    result = bounded_cli(
        ["export", "--format", "json", "--files-dir", where, "--state", "st/state.json"],
        tmp_path,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    expected = "writable by other users" if kind == "shared" else "it is not a directory"
    assert f"--files-dir {where}" in result.stderr
    assert expected in result.stderr
    journal = tmp_path / "journal.jsonl"
    assert not journal.exists() or '"read"' not in journal.read_text()
    assert not any(shared.iterdir())


def test_export_creates_a_missing_files_dir_private(tmp_path: Path) -> None:
    _file_spec(tmp_path)
    result = bounded_cli(
        ["export", "--format", "json", "--files-dir", "new/dir", "--state", "st/state.json"],
        tmp_path,
    )
    assert result.returncode == 0
    made = tmp_path / "new" / "dir"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    path = json.loads(result.stdout)["TLS"]
    assert Path(path).parent.parent == made
    assert bounded_cli(["revoke", "--state", "st/state.json"], tmp_path).returncode == 0
    assert not Path(path).exists()


def _filter(
    tmp_path: Path, done: Path, feed: bytes = b"line\n"
) -> subprocess.CompletedProcess[str]:
    env = {"JOBSECRETS_MASK_VARS": "X", "X": "filter-secret-9"}
    return jobsecrets(
        ["redact", "--done-file", str(done)], cwd=tmp_path, env=env, input=feed.decode(), timeout=30
    )


@pytest.mark.parametrize("kind", ["device", "fifo", "directory", "symlink", "missing"])
def test_the_filter_removes_only_the_regular_file_it_was_given(
    tmp_path: Path, fifo: Path, kind: str
) -> None:
    """``redact --done-file /dev/null``, run as root, removed /dev/null (found by hand in this
    round, and put back with mknod). Only a regular file found at the start is removed; here a
    device node of our own (mknod in tmp_path, the real /dev/null untouched), a FIFO, a
    directory, a symlink (and its target) and a path that did not exist all stay."""
    target = tmp_path / "target.txt"
    target.write_text("keep me\n")
    done = tmp_path / "done"
    if kind == "device":
        os.mknod(done, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a null device of our own
    elif kind == "fifo":
        done = fifo
    elif kind == "directory":
        done.mkdir()
    elif kind == "symlink":
        done.symlink_to(target)
    result = _filter(tmp_path, done, b"a filter-secret-9 b\n")
    assert result.returncode == 0
    assert result.stdout == "a *** b\n"
    assert "it will not be removed" in result.stderr
    if kind == "missing":
        assert not done.exists()
    else:
        assert os.path.lexists(done), f"the filter removed a {kind}"
    assert target.read_text() == "keep me\n"


def test_the_filter_leaves_a_file_that_replaced_its_done_file(tmp_path: Path) -> None:
    done = tmp_path / "done"
    done.write_text("")
    env = clean_env({"JOBSECRETS_MASK_VARS": "X", "X": "filter-secret-9"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobsecrets", "redact", "--done-file", str(done)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"first\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"first\n"  # started, the done file seen
    done.unlink()
    done.write_text("someone else's\n")  # a new file (another inode) at the same path
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert done.read_text() == "someone else's\n"
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()


def test_the_filter_still_removes_its_own_done_file(tmp_path: Path) -> None:
    done = tmp_path / "done"
    done.write_text("")
    result = _filter(tmp_path, done)
    assert result.returncode == 0
    assert not done.exists()
    assert "will not be removed" not in result.stderr


@pytest.mark.parametrize("fails", ["unlink", "rewrite"])
def test_revoke_that_cannot_update_its_state_file_still_revokes_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fails: str
) -> None:
    """A state file in a directory that became read-only (EROFS, EACCES): everything it lists was
    revoked, then removing it (or rewriting what could not be revoked) raised an OSError, an
    "internal error" (exit 1) after the revocation had worked. Root passes every permission check
    here, so the failing call is made to fail in-process."""
    from jobsecrets.commands import revoke as revoke_module
    from jobsecrets.errors import RevokeError

    write_fake(tmp_path, "")
    state = tmp_path / "state" / "state.json"
    exported = jobsecrets(["export", "--format", "json", "--state", str(state)], cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    monkeypatch.chdir(tmp_path)

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    if fails == "unlink":
        monkeypatch.setattr(revoke_module.os, "unlink", read_only)
        revoke_module.revoke_command(str(state))
    else:
        # One lease the store cannot revoke: what is left must be written back, and cannot be.
        real_load = revoke_module.load_state

        def failing_store(path: str, env: object) -> object:
            ledger = real_load(path, env)  # type: ignore[arg-type]
            assert ledger is not None
            for lease in ledger.leases.values():
                store = ledger.backends[lease.backend].store  # type: ignore[attr-defined]
                store.fail_revoke.add(lease.lease_id)
            return ledger

        monkeypatch.setattr(revoke_module, "load_state", failing_store)
        monkeypatch.setattr(revoke_module, "write_state", read_only)
        with pytest.raises(RevokeError):
            revoke_module.revoke_command(str(state))
    shown = capsys.readouterr().err
    assert "could not" in shown and "state file" in shown, shown
    obtained, revoked = obtained_and_revoked(tmp_path / JOURNAL)
    if fails == "unlink":
        assert obtained and obtained <= revoked, "a lease outlived revoke"
    assert state.exists(), "the state file was removed after all"
