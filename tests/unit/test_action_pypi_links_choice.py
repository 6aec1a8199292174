"""When the Action fetches the locked wheels from their PyPI addresses (actions/inject/lib.js):
only when the runner's pip takes packages from PyPI and nowhere else, and only with the page that
was written with the locks. Run under node against the real lib.js; the install itself is in
tests/integration/test_action_pypi_links_install.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "actions" / "inject" / "lib.js"

DRIVER = """
const lib = require(process.argv[1]);
const [env, files] = JSON.parse(process.argv[2]);
process.stdout.write(JSON.stringify(lib.pipUsesPyPIOnly(env, files)));
"""

PAGE_DRIVER = """
const lib = require(process.argv[1]);
const root = process.argv[2];
process.stdout.write(JSON.stringify(lib.usableLinksPage(root, lib.readProject(root))));
"""


def pypi_only(env: dict[str, str], files: list[Path]) -> bool:
    result = subprocess.run(
        ["node", "-e", DRIVER, str(LIB), json.dumps([env, [str(f) for f in files]])],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    answer = json.loads(result.stdout)
    assert isinstance(answer, bool)
    return answer


@pytest.mark.parametrize(
    "name", ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_INDEX"]
)
def test_an_index_in_the_environment_keeps_pip_on_it(name: str) -> None:
    assert pypi_only({}, []) is True
    assert pypi_only({name: "https://mirror.example/simple"}, []) is False


@pytest.mark.parametrize(
    "line",
    [
        "index-url = https://mirror.example/simple",
        "extra-index-url=https://extra.example/simple",
        "  find-links: /opt/wheels",
        "no-index = true",
    ],
)
def test_an_index_in_a_config_file_keeps_pip_on_it(tmp_path: Path, line: str) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\ncert = /etc/ssl/certs/ca.pem\n\n[install]\n{line}\n")
    assert pypi_only({}, [tmp_path / "missing.conf", conf]) is False
    # Also when it is the file PIP_CONFIG_FILE names.
    assert pypi_only({"PIP_CONFIG_FILE": str(conf)}, []) is False


def test_settings_that_name_no_source_leave_pypi(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\ncert = /etc/ssl/certs/ca.pem\ntimeout = 60\n# index-url = x\n")
    assert pypi_only({"PIP_CERT": "/ca.pem", "PIP_DEFAULT_TIMEOUT": "60"}, [conf]) is True


def test_a_config_file_that_cannot_be_read_counts_as_an_index(tmp_path: Path) -> None:
    unreadable = tmp_path / "pip.conf"
    unreadable.mkdir()  # a directory where pip.conf should be
    assert pypi_only({}, [unreadable]) is False
    # A FIFO is not waited on (a read would block until a writer came) and counts as an index.
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    assert pypi_only({}, [fifo]) is False


def test_pip_config_file_devnull_reads_no_file(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\n")
    assert pypi_only({"PIP_CONFIG_FILE": os.devnull}, [conf]) is True


def test_the_links_page_is_used_only_when_made_with_the_locks_in_force(tmp_path: Path) -> None:
    def page_of(root: Path) -> object:
        result = subprocess.run(
            ["node", "-e", PAGE_DRIVER, str(LIB), str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout)

    assert page_of(ROOT) == str(ROOT / "actions" / "inject" / "locks" / "pypi-links.html")
    copy = tmp_path / "repo"
    (copy / "actions" / "inject" / "locks").mkdir(parents=True)
    (copy / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for lock in (ROOT / "actions" / "inject" / "locks").glob("*.lock"):
        (copy / "actions" / "inject" / "locks" / lock.name).write_text(lock.read_text())
    assert page_of(copy) is None  # no page
    page = (ROOT / "actions" / "inject" / "locks" / "pypi-links.html").read_text()
    target = copy / "actions" / "inject" / "locks" / "pypi-links.html"
    target.write_text(page)
    assert page_of(copy) == str(target)
    # A dependency added without regenerating the page: its header no longer matches.
    project = (copy / "pyproject.toml").read_text()
    (copy / "pyproject.toml").write_text(project.replace('"click>=8.1",', '"click>=8.2",'))
    assert page_of(copy) is None


def test_every_address_is_pypis_and_carries_its_locked_hash() -> None:
    page = (ROOT / "actions" / "inject" / "locks" / "pypi-links.html").read_text()
    locks = "".join(p.read_text() for p in (ROOT / "actions" / "inject" / "locks").glob("*.lock"))

    links = re.findall(r'<a href="([^"#]+)#sha256=([0-9a-f]{64})">([^<]+)</a>', page)
    assert len(links) >= 20
    locked = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", locks))
    assert {digest for _, digest, _ in links} == locked
    for url, _digest, filename in links:
        assert url.startswith("https://files.pythonhosted.org/packages/"), url
        assert url.endswith("/" + filename) and filename.endswith(".whl"), url
