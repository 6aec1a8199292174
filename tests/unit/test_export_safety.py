"""Everything jobsecrets writes is read back exactly by the program it is for, or refused.

Every character U+0001..U+00FF (each on its own, and all together with quotes, backticks, ``$``
and newlines) is round-tripped through the real consumers: bash and dash (``eval`` and ``.``),
``set -a`` dotenv in both, the GitLab include's ``eval`` and a parser of docker's ``--env-file``
rules (no docker daemon runs here; the rules are docker/cli ``opts/file.go``, cited in
:mod:`jobsecrets.formats`). A NUL, which no environment variable can hold, is refused naming the
variable before anything is written. Values are compared as booleans: a failure shows no value.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from jobsecrets.errors import ConfigError, ValueNotExportable
from jobsecrets.formats import render
from jobsecrets.platforms.github import ExportRefused, heredoc_entry
from jobsecrets.safe_files import write_private
from support.cli import jobsecrets

SHELLS = ["bash", "dash"]
ALL = "".join(chr(code) for code in range(1, 256))
AWKWARD = "it's `id` $HOME ${X} \\ \" \n\r\t end\n"


def values() -> dict[str, str]:
    env = {f"C{code:03d}": f"a{chr(code)}b" for code in range(1, 256)}
    env["ALL"] = ALL
    env["AWKWARD"] = AWKWARD
    env["EDGES"] = "\n\n'leading and trailing'\n\n"
    env["EMPTY"] = ""
    return env


def read_back(shell: str, setup: str, names: list[str]) -> dict[str, bytes]:
    """Run ``setup`` in ``shell``, then print each variable NUL-terminated; name -> bytes."""
    script = setup + "".join(f'printf "%s\\000" "${name}"\n' for name in names)
    found = shutil.which(shell)
    assert found, f"{shell} is not installed (.ci/run installs it)"
    out = subprocess.run([found, "-c", script], capture_output=True, check=True).stdout
    parts = out.split(b"\0")[:-1]
    assert len(parts) == len(names)
    return dict(zip(names, parts, strict=True))


def mismatches(expected: dict[str, str], got: dict[str, bytes]) -> list[str]:
    return [name for name, value in expected.items() if got.get(name) != value.encode("utf-8")]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("how", ["eval", "source"])
def test_shell_format_round_trips_every_character(tmp_path: Path, shell: str, how: str) -> None:
    env = values()
    path = tmp_path / "out.sh"
    path.write_text(render("shell", env), encoding="utf-8")
    setup = f'eval "$(cat {path})"\n' if how == "eval" else f". {path}\n"
    assert mismatches(env, read_back(shell, setup, list(env))) == []


@pytest.mark.parametrize("shell", SHELLS)
def test_dotenv_round_trips_every_character_with_set_a(tmp_path: Path, shell: str) -> None:
    env = values()
    path = tmp_path / "out.env"
    path.write_text(render("dotenv", env), encoding="utf-8")
    # `set -a` exports what `.` assigns: read back from a child process's environment.
    names = list(env)
    setup = f"set -a\n. {path}\nset +a\n"
    printer = "import os,sys\nfor n in sys.argv[1:]: sys.stdout.buffer.write(os.environb[n.encode()]+bytes(1))"
    script = setup + f"exec {_sq(sys.executable)} -c {_sq(printer)} " + " ".join(names) + "\n"
    out = subprocess.run([shell, "-c", script], capture_output=True, check=True).stdout
    got = dict(zip(names, out.split(b"\0")[:-1], strict=True))
    assert mismatches(env, got) == []


@pytest.mark.parametrize("shell", SHELLS)
def test_gitlab_include_eval_round_trips_every_character(shell: str) -> None:
    from jobsecrets.platforms.gitlab import render_gitlab
    from jobsecrets.redact import MaskList
    from jobsecrets.resolved import Resolution, ResolvedVar

    env = values()
    resolution = Resolution(
        variables=[ResolvedVar(name, value, "b", "p", "b:p") for name, value in env.items()]
    )
    text = render_gitlab(resolution, MaskList(), {})
    got = read_back(shell, f"eval {_sq(text)}\n", list(env))
    assert mismatches(env, got) == []


def _sq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def parse_docker_env_file(data: bytes) -> dict[str, str]:
    """docker/cli ``opts/file.go`` ``parseKeyValueFile``, rule for rule (see jobsecrets.formats)."""
    result: dict[str, str] = {}
    # bufio.ScanLines: split on \n, drop one \r before it; the last line may lack \n.
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        assert len(raw) < 64 * 1024, "bufio.Scanner: token too long"
        text = raw.decode("utf-8")  # docker refuses a line that is not valid UTF-8
        if number == 1:
            text = text.removeprefix("\ufeff")
        line = text.lstrip()  # strings.TrimLeftFunc(line, unicode.IsSpace)
        if not line or line.startswith("#"):
            continue
        name, has_value, value = line.partition("=")
        assert not any(c in name for c in " \t"), "variable contains whitespaces"
        if has_value:
            result[name] = value
    return result


def test_docker_env_file_round_trips_every_character_it_can_carry() -> None:
    env = {
        name: value
        for name, value in values().items()
        if "\n" not in value and not value.endswith("\r")
    }
    env["LEADING"] = "  # not a comment, = not a separator"
    env["CR_INSIDE"] = "a\rb"
    got = parse_docker_env_file(render("docker", env).encode("utf-8"))
    assert [name for name in env if got.get(name) != env[name]] == []


@pytest.mark.parametrize(
    "value", ["two\nlines", "ends with cr\r", "x" * (64 * 1024)], ids=["newline", "cr", "64k"]
)
def test_docker_format_refuses_what_docker_would_change(value: str) -> None:
    with pytest.raises(ValueNotExportable) as caught:
        render("docker", {"OK": "fine", "BAD": value})
    assert "BAD" in str(caught.value) and "OK:" not in str(caught.value)


def test_github_env_file_round_trips_every_character() -> None:
    env = values()
    delimiter = "ghadelimiter_0123456789abcdef"
    text = "".join(heredoc_entry(name, value, delimiter) for name, value in env.items())
    # The runner's documented syntax: NAME<<DELIM, the value's lines, DELIM.
    got: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines) - 1:
        name, _, delim = lines[index].partition("<<")
        end = lines.index(delim, index + 1)
        got[name] = "\n".join(lines[index + 1 : end])
        index = end + 1
    assert [name for name in env if got.get(name) != env[name]] == []


@pytest.mark.parametrize("fmt", ["shell", "dotenv", "docker"])
def test_a_nul_is_refused_naming_the_variable(fmt: str) -> None:
    with pytest.raises(ValueNotExportable) as caught:
        render(fmt, {"FINE": "x", "WITH_NUL": "a\x00b"})
    message = str(caught.value)
    assert "WITH_NUL" in message and "NUL" in message and "file: true" in caught.value.hint
    assert "FINE" not in message


def test_github_refuses_a_nul() -> None:
    with pytest.raises(ExportRefused) as caught:
        heredoc_entry("WITH_NUL", "a\x00b", "ghadelimiter_x")
    assert "WITH_NUL" in str(caught.value)


def _fake_spec(tmp_path: Path, documents: dict[str, object], secrets: str) -> Path:
    store = tmp_path / "store.json"
    store.write_text(json.dumps(documents))
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        f"version: 1\nbackends:\n  fake:\n    type: fake\n    file: {store}\nsecrets:\n{secrets}"
    )
    return spec


@pytest.mark.parametrize("fmt", ["shell", "dotenv", "docker", "gitlab"])
def test_export_of_a_nul_writes_nothing(tmp_path: Path, fmt: str) -> None:
    _fake_spec(
        tmp_path,
        {"app": {"a": "fine-value-1", "n": "nul\x00inside"}},
        "  A: fake:app#a\n  N: fake:app#n\n",
    )
    out = tmp_path / "out"
    result = jobsecrets(
        ["export", "--format", fmt, "-o", str(out), "--state", str(tmp_path / "state")],
        cwd=tmp_path,
    )
    assert result.returncode == 11, result.stderr  # fetched, but not exportable: not a spec error
    assert "N:" in result.stderr and "NUL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists(), "something was written"


# ---- output files ---------------------------------------------------------------------------


def test_write_private_creates_a_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "new"
    write_private(str(path), "x=1\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "x=1\n"


def test_write_private_truncates_an_own_file_and_makes_it_0600(tmp_path: Path) -> None:
    path = tmp_path / "old"
    path.write_text("a much longer earlier content\n")
    path.chmod(0o644)
    write_private(str(path), "x=1\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "x=1\n"


def test_write_private_refuses_a_fifo_without_blocking_or_chmod(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o644)
    with pytest.raises(ConfigError, match="not a regular file"):
        write_private(str(fifo), "x=1\n")
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644


def public_file_and_link(tmp_path: Path, text: str = "keep\n") -> tuple[Path, Path]:
    """A 0644 file holding ``text``, and a symlink to it: what no output may write through."""
    target = tmp_path / "target"
    target.write_text(text)
    target.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    return target, link


def test_write_private_refuses_a_symlink(tmp_path: Path) -> None:
    target, link = public_file_and_link(tmp_path)
    with pytest.raises(ConfigError, match="symbolic link"):
        write_private(str(link), "x=1\n")
    assert target.read_text() == "keep\n" and stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_private_refuses_another_users_file(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test makes a file of another user: it needs root (CI runs as root)")
    path = tmp_path / "theirs"
    path.write_text("theirs\n")
    path.chmod(0o644)
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigError, match="another user"):
        write_private(str(path), "x=1\n")
    assert path.read_text() == "theirs\n" and stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_private_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        write_private(str(tmp_path), "x=1\n")


def test_export_to_a_fifo_is_refused(tmp_path: Path) -> None:
    _fake_spec(tmp_path, {"app": {"a": "fine-value-1"}}, "  A: fake:app#a\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o644)
    result = jobsecrets(
        ["export", "--format", "shell", "-o", str(fifo), "--state", str(tmp_path / "state")],
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "not a regular file" in result.stderr
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644
