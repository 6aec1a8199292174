"""Which locks the GitHub Action installs for a spec (``specGroups`` in actions/inject/lib.js).

The action reads the spec's backend types from its text without a YAML parser, erring on the side
of installing more: these tests hold it to never installing *less* than the real parser
(:func:`jobsecrets.spec.parser.parse_spec`) says the spec uses, and to installing no boto3 for
Vault-only specs written the usual ways. They run the real lib.js under node.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from jobsecrets.spec.parser import parse_spec

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "actions" / "inject" / "lib.js"
LOCKS = ROOT / "actions" / "inject" / "locks"

DRIVER = """
const lib = require(process.argv[1]);
const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const locked = lib.lockGroups(lib.REPO_ROOT);
process.stdout.write(JSON.stringify(texts.map((t) => lib.specGroups(t, locked))));
"""


def spec_groups(*texts: str) -> list[list[str]]:
    """lib.specGroups for each spec text, in one node process."""
    result = subprocess.run(
        ["node", "-e", DRIVER, str(LIB)],
        input=json.dumps(list(texts)),
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(result.stdout))


def lock_names(group: str) -> set[str]:
    """The package names pinned in ``<group>.lock``."""
    text = (LOCKS / f"{group}.lock").read_text()
    return set(re.findall(r"^([a-z0-9-]+)==", text, re.M))


VAULT_ONLY = """\
version: 1
backends:
  vault:
    type: vault
    auth: {method: jwt, role: ci}
secrets:
  DB_PASSWORD: vault:secret/app#password
"""

BASE = ["aws", "core", "vault"]

MIXED = VAULT_ONLY + "  STRIPE_KEY: aws:prod/stripe#key\n"

CASES = {
    "vault only": (VAULT_ONLY, ["core", "vault"]),
    "vault and an implicit aws backend": (MIXED, ["aws", "core", "vault"]),
    # A backend named like its type needs no `type:`.
    "named like its type": (
        "version: 1\nbackends:\n  vault:\n    address: https://v\nsecrets:\n  A: vault:s/a#x\n",
        ["core", "vault"],
    ),
    "no backends section: implicit from references": (
        "version: 1\nsecrets:\n  A: aws:prod/a\n",
        ["aws", "core"],
    ),
    "custom backend names": (
        textwrap.dedent(
            """\
            version: 1
            backends:
              prod:
                type: "aws"
                region: eu-west-1
              ci: {type: 'vault'}
            secrets:
              A: prod:x
              B:
                from: ci:secret/b#y
            """
        ),
        ["aws", "core", "vault"],
    ),
    "flow style, two types on one line": (
        "{version: 1, backends: {p: {type: aws}, q: {type: vault}}, secrets: {A: 'p:x'}}\n",
        ["aws", "core", "vault"],
    ),
    "vals forms": (
        "version: 1\nsecrets:\n  A: ref+awssecrets://x\n  B: ref+vault://secret/b#/y\n",
        ["aws", "core", "vault"],
    ),
    "github app token": (
        "version: 1\nbackends:\n  gh:\n    type: github\n    app_id: 1\nsecrets:\n  T: gh:acme\n",
        ["core", "github"],
    ),
    "the testing backend needs no backend lock": (
        "version: 1\nbackends:\n  f: {type: fake, path: store.json}\nsecrets:\n  A: f:x\n",
        ["core"],
    ),
    # Cannot be told: the base install (what `pip install jobsecrets` has), plus what is seen.
    "a type without a lock (a third party's backend)": (
        "version: 1\nbackends:\n  k:\n    type: keepass\nsecrets:\n  A: k:x\n",
        BASE,
    ),
    "a type through an alias": (
        "version: 1\nx: &t aws\nbackends:\n  k:\n    type: *t\nsecrets:\n  A: k:x\n",
        BASE,
    ),
    "a type on the next line": (
        "version: 1\nbackends:\n  k:\n    type:\n      aws\nsecrets:\n  A: k:x\n",
        BASE,
    ),
    # YAML forms that make a key `type` (or a backend's name) of other text: the base install.
    "an explicit key": (
        "version: 1\nbackends:\n  prod:\n    ? type\n    : aws\nsecrets:\n  A: prod:x\n",
        BASE,
    ),
    "an explicit key in a flow mapping": (
        "version: 1\nbackends:\n  prod: {? type : aws}\nsecrets:\n  A: prod:x\n",
        BASE,
    ),
    "an explicit key in a sequence": (
        "version: 1\nbackends:\n  - ? type\n    : aws\n",
        BASE,
    ),
    "an alias as a key": (
        "version: 1\nx: &k type\nbackends:\n  prod: {*k : aws}\nsecrets:\n  A: prod:x\n",
        BASE,
    ),
    "an alias as a block key": (
        "version: 1\nx: &k type\nbackends:\n  prod:\n    *k: aws\nsecrets:\n  A: prod:x\n",
        BASE,
    ),
    "an escape in a double-quoted key": (
        'version: 1\nbackends:\n  prod:\n    "t\\x79pe": aws\nsecrets:\n  A: prod:x\n',
        BASE,
    ),
    "a backend named by an escape": (
        'version: 1\nbackends:\n  "\\x61ws": {region: x}\nsecrets:\n  A: "\\x61ws:x"\n',
        BASE,
    ),
    # Aliases and quotes that make no key stay certain.
    "a merge key and an alias as a value": (
        "version: 1\nx: &v {type: vault}\nbackends:\n  ci:\n    <<: *v\n"
        '    auth: *a\nsecrets:\n  A: "ci:s/a#x"\n  B: ci:s/b?v=1\n',
        ["core", "vault"],
    ),
    # import.lock is `jobsecrets import`'s (ruamel.yaml): no spec selects it, whatever it names.
    "a backend named like the import command's lock": (
        "version: 1\nbackends:\n  import:\n    type: vault\nsecrets:\n  A: import:s/a#x\n",
        ["core", "vault"],
    ),
    "a type named like the import command's lock": (
        "version: 1\nbackends:\n  k:\n    type: import\nsecrets:\n  A: k:x\n",
        BASE,
    ),
    "an unknown type beside a github backend": (
        "version: 1\nbackends:\n  k: {type: keepass}\n  gh: {type: github}\nsecrets:\n  A: k:x\n",
        ["aws", "core", "github", "vault"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_groups_for_a_spec(case: str) -> None:
    text, expected = CASES[case]
    assert spec_groups(text) == [expected]


def test_never_fewer_than_the_parser_finds() -> None:
    """Every spec in examples/ and the cases above: each backend type the real parser sees has
    its lock selected (or the base install is used)."""
    texts = {
        str(p.relative_to(ROOT)): p.read_text() for p in sorted(ROOT.glob("examples/**/*.yml"))
    }
    texts = {k: v for k, v in texts.items() if "jobsecrets" in Path(k).name}
    assert len(texts) >= 6
    texts.update({case: text for case, (text, _) in CASES.items()})
    # A long flow-style line with many `type:` stays quick (the lookahead is bounded).
    texts["long line"] = (
        "backends: {" + ", ".join(f"b{i}: {{type: vault}}" for i in range(20000)) + "}\n"
    )
    results = dict(zip(texts, spec_groups(*texts.values()), strict=True))
    checked = 0
    for name, text in texts.items():
        try:
            spec = parse_spec(text, name)
        except Exception:  # noqa: S112 (a case the parser rejects uses no backend)
            continue
        types = {b.type for b in spec.backends.values()} - {"fake"}
        groups = results[name]
        assert groups is not None and types <= set(groups), name
        checked += 1
    assert checked >= 10


def test_vault_only_locks_hold_no_aws_package() -> None:
    """What a Vault-only spec installs (core.lock + vault.lock) has no boto3/botocore."""
    installed = lock_names("core") | lock_names("vault")
    assert "hvac" in installed and "requests" in installed
    assert not {"boto3", "botocore", "s3transfer"} & installed
    assert "botocore" in lock_names("aws")
    assert {"pyjwt", "cryptography"} <= lock_names("github")
    # ruamel.yaml (`jobsecrets import` only) is in no lock the action installs.
    assert lock_names("import") == {"ruamel-yaml"}
    for group in ("core", "vault", "aws", "github"):
        assert "ruamel-yaml" not in lock_names(group), group
    # Shared packages are pinned identically in every file that lists them.
    pins: dict[str, str] = {}
    for lock in LOCKS.glob("*.lock"):
        for entry in re.split(r"\n(?=[a-z])", lock.read_text()):
            found = re.match(r"([a-z0-9-]+)==\S+", entry)
            if found:
                assert pins.setdefault(found.group(1), entry.strip()) == entry.strip(), lock.name


REUSE_DRIVER = """
const lib = require(process.argv[1]);
const [root, prefix, label] = process.argv.slice(2);
process.stdout.write(JSON.stringify(lib.reusableInstall(root, prefix, label)));
"""


def test_an_install_with_more_groups_is_reused(tmp_path: Path) -> None:
    """A Vault-only step after a Vault+AWS one (or a scan step, core only) installs nothing; an
    incomplete install (no marker: cancelled mid-way) or one of another ref is never used."""
    prefix = "0.1.0-abc-"
    for name, complete in [
        (prefix + "aws+core+vault", True),
        (prefix + "aws+core+github+vault", True),
        (prefix + "core+github", False),
        ("0.1.0-old-core", True),
        (prefix + "core+vault.tmp-1-ab", True),
    ]:
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / ".jobsecrets-complete").write_text("")

    def reuse(label: str) -> str | None:
        result = subprocess.run(
            ["node", "-e", REUSE_DRIVER, str(LIB), str(tmp_path), prefix, label],
            capture_output=True,
            text=True,
            check=True,
        )
        found = json.loads(result.stdout)
        return None if found is None else Path(found).name

    assert reuse("core+vault") == prefix + "aws+core+vault"  # the smallest that fits
    assert reuse("core") == prefix + "aws+core+vault"
    assert reuse("core+github") == prefix + "aws+core+github+vault"
    assert reuse("aws+core+vault") == prefix + "aws+core+vault"
    assert reuse("core+extra.zstd") is None


SPEC_OF_DRIVER = """
const lib = require(process.argv[1]);
const locked = lib.lockGroups(lib.REPO_ROOT);
process.stdout.write(JSON.stringify(process.argv.slice(2).map((p) => lib.specGroupsOf(p, locked))));
"""


def test_spec_paths_that_are_no_file_are_not_read(tmp_path: Path) -> None:
    """The spec path comes from the repository: a committed symlink to /dev/zero made the action
    read without end (stat says size 0), a FIFO made it wait for ever. Both now give the base
    install (null) at once; a symlink to a real spec is still followed."""
    real = tmp_path / "real.yml"
    real.write_text(VAULT_ONLY)
    (tmp_path / "linked.yml").symlink_to(real)
    (tmp_path / "zero.yml").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.yml")
    (tmp_path / "dir.yml").mkdir()
    names = ["linked.yml", "zero.yml", "fifo.yml", "dir.yml", "missing.yml"]
    result = subprocess.run(
        ["node", "-e", SPEC_OF_DRIVER, str(LIB), *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    linked, zero, fifo, directory, missing = json.loads(result.stdout)
    assert linked == spec_groups(VAULT_ONLY)[0]
    assert "vault" in linked
    assert [zero, fifo, directory, missing] == [None, None, None, None]
