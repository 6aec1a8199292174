"""``jobsecrets import`` against inputs written to hurt it (found by a helper session).

Each was an internal error or minutes of CPU before its fix; the hang guards here (a subprocess
timeout far above the fixed cost) are not measurements.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobsecrets.errors import ConfigError
from jobsecrets.importer.command import convert
from jobsecrets.spec import parse_spec
from support.cli import jobsecrets

DATA = Path(__file__).resolve().parents[1] / "data" / "import"


def test_extends_diamonds_are_followed_once(tmp_path: Path) -> None:
    """Each job extending two that extend the same two...: following every path again was
    exponential (20 levels: 41 s; 40: never ended). The secrets above are still found."""
    depth = 40
    lines = [
        f".l{depth}:",
        "  id_tokens: {VAULT_ID_TOKEN: {aud: vault}}",
        "  secrets:",
        "    DB_PASSWORD: {vault: app/db/password@secret, token: $VAULT_ID_TOKEN}",
        f".r{depth}:",
        "  variables: {X: '1'}",
    ]
    for level in range(depth - 1, -1, -1):
        for side in "lr":
            lines += [f".{side}{level}:", f"  extends: [.l{level + 1}, .r{level + 1}]"]
    lines += ["deploy:", "  extends: [.l0, .r0]", "  script: [./deploy.sh]"]
    (tmp_path / ".gitlab-ci.yml").write_text("\n".join(lines) + "\n")
    result = jobsecrets(["import", ".gitlab-ci.yml"], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr[-800:]
    # Without --write the spec is printed: its text up to the diff of the rewritten file.
    spec_text = result.stdout.split("# ---- jobsecrets.yml ----\n", 1)[1].split("\n--- a/", 1)[0]
    spec = parse_spec(spec_text, "jobsecrets.yml")
    assert [s.name for s in spec.secrets] == ["DB_PASSWORD"]


def test_a_dotenv_line_with_a_long_run_of_spaces_is_read_at_once(tmp_path: Path) -> None:
    """'.*?\\s*$' backtracked over the spaces: 40,000 of them took 7.6 s, 150,000 over 20 s."""
    (tmp_path / ".env").write_text(
        "DB_PASSWORD=ref+vault://secret/app#/password" + " " * 150_000 + "\n"
        "OTHER=not-a-reference" + " " * 150_000 + "b\n"  # the regex ran on every line
    )
    result = jobsecrets(["import", ".env"], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr[-800:]
    assert "  DB_PASSWORD: vault:secret/app#password  # .env:1\n" in result.stdout


def test_yaml_nested_too_deeply_is_a_clear_error(tmp_path: Path) -> None:
    """[[[...]]] 500 deep in a workflow was a RecursionError: an internal error."""
    (tmp_path / "wf.yml").write_text("on: push\ndeep: " + "[" * 500 + "]" * 500 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        convert([str(tmp_path / "wf.yml")])


def test_write_refuses_a_symlinked_workflow_before_writing_anything(tmp_path: Path) -> None:
    """Every target is checked first: the spec used to be written, then the workflow refused."""
    real = tmp_path / "shared" / "ci.yml"
    real.parent.mkdir()
    shutil.copy(DATA / "github" / "va-expression-path.yml", real)
    (tmp_path / "w.yml").symlink_to(real)
    before = real.read_bytes()
    result = jobsecrets(["import", "--write", "w.yml"], cwd=tmp_path)
    assert result.returncode == 2
    assert "refusing to replace w.yml: not a regular file" in result.stderr
    assert "import the file it points to" in result.stderr
    assert not (tmp_path / "jobsecrets.yml").exists(), "nothing may be written"
    assert (tmp_path / "w.yml").is_symlink() and real.read_bytes() == before
    # The file it points to is imported and rewritten as usual.
    ok = jobsecrets(["import", "--write", "shared/ci.yml"], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert real.read_bytes() != before and (tmp_path / "jobsecrets.yml").is_file()
