"""``jobsecrets import`` on the workflow, GitLab and vals files of tests/data/import.

Each file is converted, its spec checked by the real parser, and the rewritten file checked: still
YAML, every full-line comment kept, no converted step left behind. A table of expectations pins
the variable names (what a job's script sees) and the notes each file must produce.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jobsecrets.errors import ConfigError
from jobsecrets.importer.command import convert
from jobsecrets.spec import parse_spec
from support.cli import jobsecrets

DATA = Path(__file__).resolve().parent.parent / "data" / "import"
GOOD = sorted(p for d in ("github", "gitlab", "vals") for p in (DATA / d).iterdir())
BAD = sorted((DATA / "bad").iterdir())

# file -> (the spec's variable names, in order; notes of level "error")
EXPECTED: dict[str, tuple[list[str], int]] = {
    "github/va-token-basic.yml": (["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "NPM_TOKEN"], 0),
    "github/va-outputs.yml": (["USERNAME", "PASSWORD"], 0),
    "github/va-wildcard.yml": (["TEST", "FLAG"], 0),
    "github/va-expression-path.yml": (["LICENSE_KEY"], 1),
    "github/va-nested-selector.yml": (["APP_PASSWORD", "DB_HOST", "APIKEY"], 0),
    "github/va-denied-name.yml": (["GITHUB_TOKEN", "GH_APP_ID"], 0),
    "github/va-pki.yml": (["CICLIENT_CERT", "CICLIENT_KEY", "CICLIENT_CA", "CICLIENT_CA_CHAIN"], 0),
    "github/aws-basic.yml": (["EXAMPLESECRETNAME", "TEST1"], 0),
    "github/aws-alias.yml": (["SECRET_ALIAS_1", "ENV_VAR_NAME_2"], 0),
    "github/aws-parse-json.yml": (["PROD_APP_DATABASE", "CONFIG"], 0),
    "github/aws-lowercase-prefix.yml": (["my_token"], 1),
    "github/mixed-vault-aws.yml": (["DB_PASSWORD", "REDIS_URL", "STRIPE_KEY", "DATADOG_KEY"], 0),
    "gitlab/hidden-extends.gitlab-ci.yml": (["REGISTRY_PASSWORD", "PROD_KUBECONFIG"], 0),
    "gitlab/gcp-azure.gitlab-ci.yml": (["VAULT_ONE"], 2),
    "gitlab/role-in-settings.gitlab-ci.yml": (["NPM_TOKEN"], 1),
    "vals/app.env": (["DB_PASSWORD", "API_KEY", "STRIPE_KEY"], 0),
}


def _rel(path: Path) -> str:
    return str(path.relative_to(DATA))


def test_at_least_40_real_world_shapes() -> None:
    assert len(GOOD) >= 40


@pytest.mark.parametrize("path", GOOD, ids=_rel)
def test_each_file_converts_to_a_valid_spec(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    if path.name == "va-github-method.yml":
        # Its only step signs in with a method jobsecrets lacks: nothing to carry over, and
        # the error says why, with the line.
        with pytest.raises(ConfigError) as caught:
            convert([_rel(path)])
        assert "va-github-method.yml:10: auth method 'github' is not supported" in str(caught.value)
        return
    result = convert([_rel(path)])
    assert result.specs
    names: list[str] = []
    for spec_file in result.specs:
        spec = parse_spec(spec_file.text, spec_file.path)  # the real parser, again
        names.extend(s.name for s in spec.secrets)
        # Every variable says where it came from.
        entries = [line for line in spec_file.text.split("secrets:\n", 1)[1].splitlines()]
        assert all(re.search(rf"# {re.escape(_rel(path))}:\d+$", e) for e in entries), entries
    rel = _rel(path)
    if rel in EXPECTED:
        want_names, want_errors = EXPECTED[rel]
        assert names == want_names
        assert [n.level for n in result.notes].count("error") == want_errors, result.notes
    for changed, (old, new) in result.rewritten.items():
        assert yaml.safe_load(new.replace("!reference", "")) is not None
        kept = [line.strip() for line in old.splitlines() if line.strip().startswith("#")]
        assert all(comment in new for comment in kept), changed
        converted = [n for n in result.notes if n.level == "error" and "left as it is" in n.message]
        if not converted:
            assert "hashicorp/vault-action@" not in new
            assert "aws-secretsmanager-get-secrets@" not in new


@pytest.mark.parametrize(
    ("name", "where", "message"),
    [
        ("not-yaml.yml", ":11:", "flow sequence that starts at line 10"),
        ("unknown-input.yml", ":11:", "has no input 'secret'"),
        ("aws-unknown-input.yml", ":9:", "has no input 'parse-json'"),
        ("duplicate-across-steps.yml", ":14:", "API_TOKEN is set again (first at line 11)"),
        ("missing-semicolon.yml", ":12:", "separated by ';'"),
        ("bad-short-form.gitlab-ci.yml", ":5:", "is not PATH/FIELD[@MOUNT]"),
        ("jsonata-without-name.yml", ":12:", "vault-action refuses it too"),
        ("invalid-name.yml", ":12:", "MY-TOKEN"),
    ],
)
def test_bad_input_is_refused_with_file_and_line(name: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        convert([str(DATA / "bad" / name)])
    text = str(caught.value)
    assert f"{name}{where}" in text, text
    assert message in text, text


def test_every_bad_file_is_tested() -> None:
    tested = {
        "not-yaml.yml",
        "unknown-input.yml",
        "aws-unknown-input.yml",
        "duplicate-across-steps.yml",
        "missing-semicolon.yml",
        "bad-short-form.gitlab-ci.yml",
        "jsonata-without-name.yml",
        "invalid-name.yml",
    }
    assert {p.name for p in BAD} == tested


def test_two_jobs_that_disagree_get_two_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    result = convert(["github/va-two-jobs.yml"], spec_out="ci/secrets.yml")
    assert [s.path for s in result.specs] == ["ci/secrets.yml", "ci/secrets-2.yml"]
    new = result.rewritten["github/va-two-jobs.yml"][1]
    assert "config: ci/secrets.yml" in new and "config: ci/secrets-2.yml" in new


def test_write_edits_in_place_and_a_second_run_finds_nothing(tmp_path: Path) -> None:
    for rel in ("github/mixed-vault-aws.yml", "gitlab/hidden-extends.gitlab-ci.yml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / rel, tmp_path / rel)
    files = ["github/mixed-vault-aws.yml", "gitlab/hidden-extends.gitlab-ci.yml"]
    before = {f: (tmp_path / f).read_text() for f in files}
    result = jobsecrets(["import", "--write", *files], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote jobsecrets.yml (6 variable(s))" in result.stdout
    spec = parse_spec((tmp_path / "jobsecrets.yml").read_text(), "jobsecrets.yml")
    assert len(spec.secrets) == 6
    for name in files:
        after = (tmp_path / name).read_text()
        assert after != before[name]
        assert "# Vault: app credentials" in after or "# Secrets shared" in after
    plan = jobsecrets(["plan", "--only", "DB_PASSWORD,STRIPE_KEY"], cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    again = jobsecrets(["import", "--write", "--force", *files], cwd=tmp_path)
    assert again.returncode == 2
    assert "nothing to import" in again.stderr


def test_write_keeps_each_file_s_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Rewritten files keep their mode (set on a new file of ours, never through a path someone
    else may have made); the new spec gets the usual 0644 under a 022 umask."""
    shutil.copy(DATA / "github" / "va-expression-path.yml", tmp_path / "w.yml")
    (tmp_path / "w.yml").chmod(0o640)
    result = jobsecrets(["import", "--write", "w.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "w.yml").stat().st_mode) == 0o640
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "jobsecrets.yml").stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobsecrets.yml", "w.yml"]


def test_default_prints_spec_diff_and_report_and_writes_nothing(tmp_path: Path) -> None:
    shutil.copy(DATA / "github" / "va-expression-path.yml", tmp_path / "w.yml")
    result = jobsecrets(["import", "w.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "# ---- jobsecrets.yml ----" in out
    assert "--- a/w.yml" in out and "+++ b/w.yml" in out
    assert "w.yml:18: error: entry 'secret/data/${{ matrix.env }}/app token" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.yml"]


def test_existing_spec_is_not_overwritten(tmp_path: Path) -> None:
    shutil.copy(DATA / "github" / "va-kv1.yml", tmp_path / "w.yml")
    (tmp_path / "jobsecrets.yml").write_text("mine\n")
    result = jobsecrets(["import", "--write", "w.yml"], cwd=tmp_path)
    assert result.returncode == 2
    assert "jobsecrets.yml exists" in result.stderr
    assert (tmp_path / "jobsecrets.yml").read_text() == "mine\n"


def test_paths_that_are_no_regular_files_are_neither_read_nor_replaced(tmp_path: Path) -> None:
    """`import /dev/zero` was read without end and a FIFO blocked it; `--spec-out FIFO --force`
    renamed our file over the FIFO (run as root, over /dev/null just the same)."""
    shutil.copy(DATA / "github" / "va-kv1.yml", tmp_path / "w.yml")
    os.mkfifo(tmp_path / "in.fifo")
    for odd in ("/dev/zero", "in.fifo"):
        read = jobsecrets(["import", odd], cwd=tmp_path, timeout=30)
        assert read.returncode == 2 and "not a readable regular file" in read.stderr
    os.mkfifo(tmp_path / "out.fifo")
    for extra in ([], ["--force"]):
        wrote = jobsecrets(
            ["import", "--spec-out", "out.fifo", *extra, "w.yml"], cwd=tmp_path, timeout=30
        )
        assert wrote.returncode == 2, wrote.stderr
        assert stat.S_ISFIFO((tmp_path / "out.fifo").lstat().st_mode), "the FIFO was replaced"


def test_rewritten_files_pass_the_ci_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(DATA)
    github = [p for p in GOOD if p.parent.name == "github" and p.name != "composite-action.yml"]
    gitlab = [p for p in GOOD if p.parent.name == "gitlab"]
    result = convert([_rel(p) for p in github + gitlab])
    checker = Path(sys.executable).parent / "check-jsonschema"
    transform: dict[str, list[str]] = {
        "github-workflows": [],
        "gitlab-ci": ["--data-transform", "gitlab-ci"],
    }
    for kind, paths in (("github-workflows", github), ("gitlab-ci", gitlab)):
        written = []
        for path in paths:
            text = result.rewritten.get(_rel(path), ("", path.read_text()))[1]
            target = tmp_path / kind / path.name
            target.parent.mkdir(exist_ok=True)
            target.write_text(text)
            written.append(str(target))
        check = subprocess.run(
            [str(checker), "--builtin-schema", f"vendor.{kind}", *transform[kind], *written],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_a_file_mixing_indentation_styles_keeps_both(monkeypatch: pytest.MonkeyPatch) -> None:
    # `schedule:` indents its dashes, `steps:` does not: only the rewritten step changes.
    monkeypatch.chdir(DATA)
    old, new = convert(["github/va-approle.yml"]).rewritten["github/va-approle.yml"]
    assert '    - cron: "0 3 * * *"\n' in new
    assert "    - run: python report.py\n" in new
    removed = [line for line in old.splitlines() if line not in new.splitlines()]
    assert len(removed) == 9, removed  # the old uses: and the eight lines of its with:
