"""The documentation site builds with no warning and covers every spec key and command option."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click

from jobsecrets.backends.registry import get_backend_class
from jobsecrets.cli import cli
from jobsecrets.spec.identity import IDENTITY_KEYS
from jobsecrets.spec.parser import SECRET_KEYS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (ROOT / "docs" / "reference.md").read_text()


def test_mkdocs_strict_build(tmp_path: Path) -> None:
    """Broken links, anchors and pages missing from the nav fail the build (strict mode)."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "troubleshooting" / "index.html").is_file()


def test_reference_names_every_spec_key() -> None:
    keys = set(SECRET_KEYS) | set(IDENTITY_KEYS)
    for type_name in ("vault", "aws"):
        cls = get_backend_class(type_name)
        keys |= set(cls.OPTIONS) | set(cls.SECRET_OPTIONS)
    missing = sorted(k for k in keys if f"`{k}`" not in REFERENCE)
    assert not missing, f"spec keys missing from docs/reference.md: {missing}"


def test_reference_names_every_command_and_option() -> None:
    assert isinstance(cli, click.Group)
    missing = []
    for name, command in cli.commands.items():
        if f"`{name}`" not in REFERENCE:
            missing.append(name)
        for param in command.params:
            if isinstance(param, click.Option):
                longest = max(param.opts, key=len)
                if longest not in REFERENCE:
                    missing.append(f"{name} {longest}")
    assert not missing, f"missing from docs/reference.md: {missing}"


def test_readme_starts_with_the_two_commands_and_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme.splitlines()[:6]
    assert head[3].startswith("./scripts/demo ") and head[4].startswith("./scripts/test ")
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), f"README links to a missing file: {target}"
