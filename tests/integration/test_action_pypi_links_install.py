"""The Action's cold install from the locked wheels' PyPI addresses (actions/inject/lib.js).

When the runner's pip takes packages from PyPI and nowhere else, the action gives pip the page of
every locked wheel's address (actions/inject/locks/pypi-links.html, written by
scripts/lock-action-deps) with ``--no-index --find-links``: the same wheels and hashes, without pip
weighing every file of every release on each project's index page. These tests run the real
lib.js under node and install from the real PyPI (the package registry this machine and CI
reach); what decides the fast path is tested on its own in
tests/unit/test_action_pypi_links_choice.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.act import action_checkout

REPO_ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
const lib = require(process.argv[1]);
lib.ensureInstalled(JSON.parse(process.argv[2])).then(
  (r) => process.stdout.write(JSON.stringify(r)),
  (e) => { process.stderr.write(`failed: ${e.message}\\n`); process.exit(3); }
);
"""


def pip_env(tmp_path: Path, log: Path) -> dict[str, str]:
    """A runner whose pip has no configuration of its own; pip's log (--log) goes to ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV"))}
    env.update(
        {
            "HOME": str(tmp_path / "home"),
            "PIP_CONFIG_FILE": os.devnull,  # pip's own switch: read no configuration file
            "PIP_NO_CACHE_DIR": "1",
            "PIP_CERT": os.environ.get("PIP_CERT", ""),
            "PIP_LOG": str(log),
            "JOBSECRETS_PYTHON": sys.executable,
            "JOBSECRETS_INSTALLER": "pip",
            "JOBSECRETS_TOOL_CACHE": str(tmp_path / "tool-cache"),
            "RUNNER_TEMP": str(tmp_path),
        }
    )
    if not env["PIP_CERT"]:
        del env["PIP_CERT"]
    return env


def install(lib: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", "-e", DRIVER, str(lib), json.dumps(["vault"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def fetched(log: Path) -> list[str]:
    """The pages pip read, in order (its log: "Fetching project page and analyzing links: URL")."""
    marker = "Fetching project page and analyzing links: "
    return [line.split(marker, 1)[1] for line in log.read_text().splitlines() if marker in line]


def test_a_runner_on_pypi_installs_the_locked_wheels_from_their_addresses(tmp_path: Path) -> None:
    log = tmp_path / "python.log"
    env = pip_env(tmp_path, log)
    result = install(REPO_ROOT / "actions" / "inject" / "lib.js", env)
    assert result.returncode == 0, result.stderr[-2000:]
    page = REPO_ROOT / "actions" / "inject" / "locks" / "pypi-links.html"
    # Only the page: no index page of any project was read.
    assert set(fetched(log)) == {page.as_uri()}, fetched(log)
    assert "Ignoring indexes" in log.read_text()
    assert "failed" not in result.stdout
    venv_python = json.loads(result.stdout)["venvPython"]
    # daachorse too: its lock line has pyproject's marker, true on this x86-64 machine, and the
    # redactor must search with its double array there.
    probe = (
        "import hvac, jobsecrets, ahocorasick_rs, daachorse\n"
        "from jobsecrets.redact import MaskList\n"
        "masks = MaskList(); masks.add('a-value-to-mask')\n"
        "print(masks.compiled()._keys.engine)"
    )
    check = subprocess.run([venv_python, "-c", probe], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.strip() == "double array"


def test_a_runner_with_an_index_of_its_own_keeps_it(tmp_path: Path) -> None:
    log = tmp_path / "python.log"
    env = pip_env(tmp_path, log)
    # PyPI's own index, but named by the runner: the action must not go around it.
    env["PIP_INDEX_URL"] = "https://pypi.org/simple/"
    result = install(REPO_ROOT / "actions" / "inject" / "lib.js", env)
    assert result.returncode == 0, result.stderr[-2000:]
    pages = fetched(log)
    assert pages and all(url.startswith("https://pypi.org/simple/") for url in pages), pages


def test_an_address_that_fails_falls_back_to_the_index(tmp_path: Path) -> None:
    # A checkout whose page sends one wheel to a port nothing listens on (as if PyPI's file
    # host were unreachable from this runner while its index is not): the index install follows.
    checkout = action_checkout(tmp_path / "action")
    page = checkout / "actions" / "inject" / "locks" / "pypi-links.html"
    text = page.read_text()
    assert "https://files.pythonhosted.org/" in text
    page.write_text(text.replace("https://files.pythonhosted.org/", "http://127.0.0.1:9/"))
    log = tmp_path / "python.log"
    env = pip_env(tmp_path, log)
    result = install(checkout / "actions" / "inject" / "lib.js", env)
    assert result.returncode == 0, result.stderr[-2000:]
    pages = fetched(log)
    # The page first, then (after the failed download) the index.
    assert pages[0] == page.as_uri(), pages
    assert any(url.startswith("https://pypi.org/simple/") for url in pages[1:]), pages
    assert "from PyPI's file addresses failed" in result.stdout + result.stderr
