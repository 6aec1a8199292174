"""Numbers read from outside (the environment, a spec's field path): ASCII digits, and few.

``str.isdigit()`` is true of "²" (which ``int()`` refuses) and of Arabic-Indic digits, and
``int()`` of more than 4,300 digits raises: the GitLab filter stopped before reading the job's
output when ``$JOBSECRETS_MASK_MIN_LINE_LENGTH`` held such a text, and ``plan`` of a GitHub App
backend crashed on such a ``$CI_JOB_TIMEOUT``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobsecrets.backends.github import GithubBackend
from jobsecrets.recorded import MIN_LINE_LENGTH_ENV, recorded_min_line_length
from support.cli import clean_env

ODD = ["²", "٣", "9" * 5000, "-1", " 12x", ""]


@pytest.mark.parametrize("text", ODD)
def test_an_odd_min_line_length_is_none(text: str) -> None:
    assert recorded_min_line_length({MIN_LINE_LENGTH_ENV: text}) is None


def test_a_min_line_length_is_read() -> None:
    assert recorded_min_line_length({MIN_LINE_LENGTH_ENV: " 12 "}) == 12


@pytest.mark.parametrize("text", ["²", "9" * 5000])
def test_the_filter_masks_whatever_the_min_line_length_says(text: str) -> None:
    env = clean_env(
        {"JOBSECRETS_MASK_VARS": "X", "X": "env-number-secret-4", MIN_LINE_LENGTH_ENV: text}
    )
    result = subprocess.run(
        [sys.executable, "-m", "jobsecrets", "redact"],
        input=b"a env-number-secret-4 b\n",
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == b"a *** b\n"


@pytest.mark.parametrize("text", ODD)
def test_an_odd_ci_job_timeout_gives_no_warning_and_no_crash(text: str) -> None:
    options = {"app_id": 1, "private_key": "vault:secret/ci/github-app#pem"}
    assert GithubBackend.plan_warnings(options, {"CI_JOB_TIMEOUT": text}) == []


@pytest.mark.parametrize("index", ["²", "٣", "9" * 5000])
def test_a_list_index_in_a_field_path_is_ascii_digits(index: str) -> None:
    """``#list/²`` in a spec crashed the resolver (ValueError from int()); ``#list/٣`` read
    item 3. Both are a field that is not there."""
    from jobsecrets.fields import FieldMissing, extract

    with pytest.raises(FieldMissing):
        extract({"list": ["a", "b", "c", "d"]}, f"list/{index}")
    assert extract({"list": ["a", "b", "c", "d"]}, "list/3") == "d"


@pytest.mark.parametrize("app_id", ["²", "٣", "9" * 5000])
def test_an_app_id_is_ascii_digits(app_id: str) -> None:
    options = {"app_id": app_id, "private_key": "vault:secret/ci/github-app#pem"}
    assert any("app_id" in p for p in GithubBackend.validate_options(options))
    assert not any(
        "app_id" in p for p in GithubBackend.validate_options({**options, "app_id": "42"})
    )
