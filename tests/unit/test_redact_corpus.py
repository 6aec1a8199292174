"""Every case of the shared masking corpus through the real ``jobsecrets redact`` process.

The filter runs as the GitLab include runs it: the values in its environment, by the names in
``$JOBSECRETS_MASK_VARS``, the case's chunks written to its stdin one write at a time with the
case's pauses (capped, see ``support.masking_corpus.MAX_PAUSE_MS``). The oracle
(``support.masking_corpus.verdict``) decides; the cases that do not hold must be exactly
``NOT_COVERED``, the list docs/masking.md gives with its reasons, so a case that
starts or stops holding is noticed. A missing corpus fails (never skips).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.cli import clean_env
from support.masking_corpus import Case, case_env, corpus_path, feed_process, load_cases, verdict

#: Cases that do not hold, by the reason docs/masking.md gives ("Not covered").
NOT_COVERED: dict[str, str] = {
    **{
        f"ar-section-{i}": "ANSI colour codes inserted inside the value by the printing program"
        for i in range(1, 8)
    },
    **{
        f"ar-addmask-line-{s}": "a line of a multi-line value shorter than min_line_length"
        for s in ("abc", "def", "ghi", "jkl")
    },
    **{
        f"ar-b64var-{i}": "base64 of the value without its first bytes, printed on its own"
        for i in (2, 3, 5, 6)
    },
    **{
        case: "a value shorter than 3 bytes"
        for case in (
            "gl-masker-9",
            "bk-lorem-9-one",
            "bk-lorem-9-bytewise",
            "bk-multibyte",
            "aws-json-leaves-short",
        )
    },
    "gl-token-pattern-unknown": "a token the job was not given (pattern scanning)",
    "gl-url-pattern-signature": "a value derived from a secret (a signature) the job was not given",
}


def test_the_corpus_is_there() -> None:
    path = corpus_path()
    assert path.is_file(), f"masking corpus missing at {path} (set $JOBSECRETS_MASKING_CORPUS)"
    assert len(load_cases(path)) >= 251


def _run(case: Case) -> tuple[str, str]:
    argv = [sys.executable, "-m", "jobsecrets", "redact"]
    out = feed_process(argv, case_env(case, clean_env()), case)
    return case.id, verdict(case, out)


@pytest.fixture(scope="module")
def results() -> dict[str, str]:
    """Every case's verdict: one process per case, three at a time."""
    cases = load_cases()
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(_run, cases))


def test_exactly_the_listed_cases_do_not_hold(results: dict[str, str]) -> None:
    failing = {case for case, result in results.items() if result != "ok"}
    newly_failing = sorted(failing - set(NOT_COVERED))
    newly_holding = sorted(set(NOT_COVERED) - failing)
    # Ids and reasons only: never a value.
    assert not newly_failing, {case: results[case] for case in newly_failing}
    assert not newly_holding, f"now hold, update NOT_COVERED and docs/masking.md: {newly_holding}"


def test_every_claimed_and_preserved_case_holds(results: dict[str, str]) -> None:
    cases = {case.id: case for case in load_cases()}
    claimed = [c for c in cases.values() if c.claimed and results[c.id] != "ok"]
    assert not claimed, [c.id for c in claimed]
    # No false positive anywhere: every "preserved" case passes byte for byte.
    preserved = [c.id for c in cases.values() if c.expect == "preserved" and results[c.id] != "ok"]
    assert not preserved, preserved


def test_not_covered_reasons_are_in_the_readme() -> None:
    from support.masking_corpus import ROOT

    readme = (ROOT / "docs" / "masking.md").read_text()
    for reason in sorted(set(NOT_COVERED.values())):
        assert reason in readme, f"docs/masking.md does not list: {reason}"
