"""``export --format github``: masks first, heredoc entries, outputs, the summary; no server needed.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_export_safety import public_file_and_link

from jobsecrets.errors import ConfigError
from jobsecrets.identity import IdentityProvider
from jobsecrets.platforms import exporter, github
from jobsecrets.redact import MaskList
from jobsecrets.resolved import Resolution, ResolvedVar
from jobsecrets.spec.identity import IdentityConfig

SECRET = "s3cret-Value-%-with-percent"
MULTI = "first-line-abcdef\nsecond-line-ghijkl"


def resolution() -> Resolution:
    return Resolution(
        variables=[
            ResolvedVar("DB_PASSWORD", SECRET, "vault", "secret/app", "vault:secret/app#pw"),
            ResolvedVar(
                "CERT", MULTI, "vault", "pki/issue/ci", "vault:pki/issue/ci#c", lease_ttl=900
            ),
            ResolvedVar("TINY", "ab", "aws", "prod/x|y", "aws:prod/x|y"),
        ]
    )


def masks_for(res: Resolution) -> MaskList:
    masks = MaskList()
    for var in res.variables:
        masks.add(var.value, name=var.name)
    return masks


def parse_heredocs(text: str, *, recorded: bool = False) -> dict[str, str]:
    """Read entries the way the runner does: NAME<<DELIM, lines, DELIM.

    The ``JOBSECRETS_MASK_*`` entries (names for a later `jobsecrets scan`) are left out unless
    ``recorded``.
    """
    result: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines) and lines[i]:
        name, delimiter = lines[i].split("<<", 1)
        end = lines.index(delimiter, i + 1)
        if recorded or not name.startswith("JOBSECRETS_MASK_"):
            result[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return result


@pytest.fixture
def gh(tmp_path: Path) -> dict[str, str]:
    files = {
        k: tmp_path / k.lower() for k in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
    }
    for path in files.values():
        path.write_text("")
    return {k: str(v) for k, v in files.items()}


def test_values_go_to_github_env_as_heredocs(gh: dict[str, str]) -> None:
    res = resolution()
    out = io.StringIO()
    github.export(res, masks_for(res), gh, None, stream=out)
    entries = parse_heredocs(Path(gh["GITHUB_ENV"]).read_text())
    assert (entries == res.env()) is True
    assert Path(gh["GITHUB_OUTPUT"]).read_text() == ""  # outputs are off by default


def test_names_are_recorded_for_a_later_scan_step(gh: dict[str, str]) -> None:
    """Issue 19: `jobsecrets scan` in a later step finds the values by these names."""
    res = resolution()
    github.export(res, masks_for(res), gh, None, stream=io.StringIO())
    entries = parse_heredocs(Path(gh["GITHUB_ENV"]).read_text(), recorded=True)
    plain = " ".join(v.name for v in res.variables if v.file is None)
    files = " ".join(v.name for v in res.variables if v.file is not None)
    assert entries["JOBSECRETS_MASK_VARS"] == plain
    assert entries["JOBSECRETS_MASK_FILE_VARS"] == files
    assert entries["JOBSECRETS_MASK_MIN_LINE_LENGTH"].isdigit()


def test_masks_are_announced_before_any_value_is_written(gh: dict[str, str]) -> None:
    res = resolution()
    events: list[str] = []

    class Recorder(io.StringIO):
        def flush(self) -> None:
            events.append("flush" if Path(gh["GITHUB_ENV"]).read_text() == "" else "late")

    out = Recorder()
    github.export(res, masks_for(res), gh, None, stream=out)
    commands = out.getvalue().splitlines()
    assert events and events[0] == "flush"
    # Every line of the multi-line value and the %-escaped value are registered.
    assert "::add-mask::s3cret-Value-%25-with-percent" in commands
    assert "::add-mask::first-line-abcdef" in commands
    assert "::add-mask::second-line-ghijkl" in commands
    assert all(line.startswith("::add-mask::") for line in commands)


def test_outputs_when_asked_and_env_off(gh: dict[str, str]) -> None:
    res = resolution()
    env = {**gh, "JOBSECRETS_GITHUB_OUTPUTS": "true", "JOBSECRETS_GITHUB_EXPORT_ENV": "false"}
    github.export(res, masks_for(res), env, None, stream=io.StringIO())
    assert Path(gh["GITHUB_ENV"]).read_text() == ""
    assert (parse_heredocs(Path(gh["GITHUB_OUTPUT"]).read_text()) == res.env()) is True


def test_delimiter_is_random_and_a_value_holding_it_is_refused(
    gh: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert github.new_delimiter() != github.new_delimiter()
    monkeypatch.setattr(github, "new_delimiter", lambda: "ghadelimiter_fixed")
    res = resolution()
    res.variables.append(
        ResolvedVar("EVIL", "x\nghadelimiter_fixed\nPATH=/tmp/evil", "aws", "p", "aws:p")
    )
    out = io.StringIO()
    with pytest.raises(github.ExportRefused) as info:
        github.export(res, masks_for(res), gh, None, stream=out)
    assert "EVIL" in str(info.value)
    assert ("ghadelimiter_fixed" in str(info.value)) is False
    assert ("/tmp/evil" in str(info.value)) is False
    # Nothing partial: no file was touched, not even the masks were announced.
    assert Path(gh["GITHUB_ENV"]).read_text() == ""
    assert Path(gh["GITHUB_STEP_SUMMARY"]).read_text() == ""
    assert out.getvalue() == ""


def test_summary_table_has_no_value(gh: dict[str, str]) -> None:
    res = resolution()
    github.export(res, masks_for(res), gh, None, stream=io.StringIO())
    summary = Path(gh["GITHUB_STEP_SUMMARY"]).read_text()
    assert "| variable | backend | path | lease TTL | masked |" in summary
    assert "| `CERT` | vault | `pki/issue/ci` | 15m | yes |" in summary
    assert "| `DB_PASSWORD` | vault | `secret/app` | - | yes |" in summary
    # Too short to mask: said so, and a pipe in a path does not break the table.
    assert "| `TINY` | aws | `prod/x\\|y` | - | no: too short to mask |" in summary
    assert not any(v in summary for v in (SECRET, "first-line", "ab |"))


def test_binary_value_is_refused_with_a_hint(gh: dict[str, str]) -> None:
    res = Resolution(variables=[ResolvedVar("BIN", b"\xff\xfe\x00abc", "aws", "b", "aws:b")])
    with pytest.raises(github.ExportRefused) as info:
        github.export(res, MaskList(), gh, None, stream=io.StringIO())
    assert "file: true" in info.value.hint


def test_file_values_export_their_path(gh: dict[str, str], tmp_path: Path) -> None:
    path = str(tmp_path / "key.pem")
    res = Resolution(
        variables=[ResolvedVar("KEY", "-----PRIVATE-----", "vault", "pki", "vault:pki", file=path)]
    )
    github.export(res, masks_for(res), gh, None, stream=io.StringIO())
    assert parse_heredocs(Path(gh["GITHUB_ENV"]).read_text()) == {"KEY": path}
    assert "yes (file)" in Path(gh["GITHUB_STEP_SUMMARY"]).read_text()


def test_output_option_replaces_github_env(gh: dict[str, str], tmp_path: Path) -> None:
    res = resolution()
    target = tmp_path / "env-file"
    github.export(res, masks_for(res), {}, str(target), stream=io.StringIO())
    assert (parse_heredocs(target.read_text()) == res.env()) is True
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"


def test_output_option_is_held_to_the_rules_of_every_other_output(tmp_path: Path) -> None:
    """Found by a helper session: ``--format github -o FILE`` appended through a symlink, and to
    an existing file of mode 0644 left as it was: the values readable by everyone. Now a symlink
    is refused (its target untouched), and an existing file of ours is made 0600 and appended to."""
    res = resolution()
    public, link = public_file_and_link(tmp_path, "before\n")
    with pytest.raises(ConfigError, match="symbolic link"):
        github.export(res, masks_for(res), {}, str(link), stream=io.StringIO())
    assert public.read_text() == "before\n"
    assert oct(public.stat().st_mode & 0o777) == "0o644"
    github.export(res, masks_for(res), {}, str(public), stream=io.StringIO())
    assert oct(public.stat().st_mode & 0o777) == "0o600"
    text = public.read_text()
    assert text.startswith("before\n")
    assert (parse_heredocs(text.removeprefix("before\n")) == res.env()) is True


def test_outside_github_without_output_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GITHUB_ENV is not set"):
        github.export(resolution(), MaskList(), {}, None, stream=io.StringIO())
    with pytest.raises(ConfigError, match="true or false"):
        github.export(
            resolution(), MaskList(), {"JOBSECRETS_GITHUB_OUTPUTS": "yes please"}, "x", stream=None
        )


def test_exporter_is_loaded_for_the_github_format() -> None:
    assert exporter("github") is github.PLATFORM


def test_audience_from_the_environment_overrides_the_spec_default() -> None:
    spec_default = IdentityConfig(audience="from-spec")
    assert IdentityProvider(spec_default, {}).config.audience == "from-spec"
    provider = IdentityProvider(spec_default, {"JOBSECRETS_AUDIENCE": "from-action"})
    assert provider.config.audience == "from-action"


def test_cli_export_github_end_to_end(gh: dict[str, str], tmp_path: Path) -> None:
    """The CLI with the fake backend: masks on stdout, values in GITHUB_ENV, nothing on stderr."""
    docs = tmp_path / "docs.json"
    docs.write_text(json.dumps({"app": {"password": SECRET}}))
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  f: {type: fake, file: docs.json}\n"
        "secrets:\n  DB_PASSWORD: f:app#password\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "JOBSECRETS_"))}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "jobsecrets", "export", "--format", "github"),
            *("--state", str(tmp_path / "state.json")),
        ],
        cwd=tmp_path,
        env={**env, **gh},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "::add-mask::s3cret-Value-%25-with-percent" in result.stdout.splitlines()
    assert (SECRET in result.stderr) is False
    assert (parse_heredocs(Path(gh["GITHUB_ENV"]).read_text()) == {"DB_PASSWORD": SECRET}) is True


def test_a_failure_writing_outputs_takes_the_github_env_entries_back(
    gh: dict[str, str], tmp_path: Path
) -> None:
    """All or nothing: when $GITHUB_OUTPUT cannot be written, the entries already appended to
    $GITHUB_ENV are removed again (the step fails and its leases are revoked)."""
    Path(gh["GITHUB_ENV"]).write_text("EARLIER=kept\n")
    env = {**gh, "GITHUB_OUTPUT": str(tmp_path), "JOBSECRETS_GITHUB_OUTPUTS": "true"}
    res = resolution()
    with pytest.raises(ConfigError) as caught:
        github.export(res, masks_for(res), env, None, stream=io.StringIO())
    # A clear error naming the file (exit 2), not an internal error.
    assert f"cannot write to {tmp_path}" in caught.value.message
    left = Path(gh["GITHUB_ENV"]).read_text()
    assert (left == "EARLIER=kept\n") is True, "values stayed in $GITHUB_ENV after a failed export"
