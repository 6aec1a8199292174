"""Spec mistakes a new user makes get a message that says what to do (issue 17).

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``(value in log) is False``).
"""

from __future__ import annotations

import pytest

from jobsecrets.errors import ConfigError
from jobsecrets.fields import FieldMissing, extract
from jobsecrets.spec.parser import parse_spec


def _problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_spec(text, "jobsecrets.yml")
    return str(caught.value)


def test_space_before_field_is_refused() -> None:
    text = "version: 1\nsecrets:\n  A: vault:secret/app #password\n"
    message = _problems(text)
    assert "jobsecrets.yml:3:" in message
    assert "write 'vault:secret/app#password' (no space)" in message


@pytest.mark.parametrize(
    "line",
    [
        "  A: vault:secret/app#password  #note",  # a field already: the comment is harmless
        "  A: vault:secret/app  # the whole document, on purpose",
        "  A: 'vault:secret/app' #quoted",  # quoted: the author wrote the comment on purpose
    ],
)
def test_ordinary_comments_are_fine(line: str) -> None:
    spec = parse_spec(f"version: 1\nsecrets:\n{line}\n", "jobsecrets.yml")
    assert [s.name for s in spec.secrets] == ["A"]


def test_tab_gets_a_readable_message() -> None:
    message = _problems("version: 1\nsecrets:\n\tA: vault:secret/app#p\n")
    assert "a tab character; YAML indents with spaces only" in message
    assert "jobsecrets.yml:3" in message


def test_missing_field_lists_names_only() -> None:
    with pytest.raises(FieldMissing) as caught:
        extract({"password": "canary-value-1", "user\x1b[31m": "x"}, "pasword")
    message = str(caught.value)
    assert message == "field 'pasword' not found; the fields are 'password', 'user[31m'"
    assert ("canary-value-1" in message) is False
    with pytest.raises(FieldMissing, match="the document has no fields"):
        extract({}, "a")
    many = {f"k{i:02}": i for i in range(25)}
    with pytest.raises(FieldMissing, match=r"and 5 more$"):
        extract(many, "zz")
