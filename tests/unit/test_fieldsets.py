"""Every field of a document as variables (``#*``, ``#**``, ``flatten``): naming, collisions, spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobsecrets.backends.base import BackendContext
from jobsecrets.errors import ConfigError
from jobsecrets.fields import FieldMissing
from jobsecrets.fieldsets import FieldSetError, key_name, select
from jobsecrets.lifecycle.ledger import Ledger
from jobsecrets.resolver import resolve
from jobsecrets.spec import parse_spec


def test_upper_case_and_kept_case_naming() -> None:
    doc = {"api-key": "a", "dbUser": "b", "9lives": "c"}
    assert select(doc, "*", name="L", name_prefix="APP_") == [
        ("APP_API_KEY", "a"),
        ("APP_DBUSER", "b"),
        ("APP_9LIVES", "c"),
    ]
    assert [n for n, _ in select(doc, "**", name="L")] == ["api_key", "dbUser", "_9lives"]
    assert key_name("a.b c", keep_case=True) == "a_b_c"


def test_an_ordinary_field_is_one_pair() -> None:
    assert select({"a": "x"}, "a", name="A") == [("A", "x")]
    with pytest.raises(FieldMissing):
        select({"a": "x"}, "b", name="B")


def test_flatten_joins_nested_keys_like_parse_json_secrets() -> None:
    doc = json.dumps({"db": {"user": "u", "conn": {"port": 5432}}, "tags": ["a"], "empty": {}})
    pairs = select(doc, "*", name="L", name_prefix="PROD_", flatten=True)
    assert pairs == [("PROD_DB_USER", "u"), ("PROD_DB_CONN_PORT", 5432), ("PROD_TAGS", ["a"])]
    # Without flatten a nested object is one variable (its JSON).
    assert select(doc, "*", name="L")[0] == ("DB", {"user": "u", "conn": {"port": 5432}})


@pytest.mark.parametrize(
    ("doc", "flatten"),
    [({"a-b": "1", "a_b": "2"}, False), ({"a_b": "1", "a": {"b": "2"}}, True)],
)
def test_collisions_are_refused_and_name_both_keys(doc: dict, flatten: bool) -> None:
    with pytest.raises(FieldSetError) as caught:
        select(doc, "*", name="L", flatten=flatten)
    assert "A_B" in str(caught.value)
    assert "'1'" not in str(caught.value) and "'2'" not in str(caught.value)


@pytest.mark.parametrize("data", ["not json", "[1, 2]", b"\x00\x01"])
def test_every_field_of_something_that_is_no_object(data: object) -> None:
    with pytest.raises(FieldSetError):
        select(data, "*", name="L")
    # flatten (parse-json-secrets): such a value is one variable named after the entry.
    assert select(data, "*", name="L", name_prefix="L_", flatten=True) == [("L", data)]


def _spec(tmp_path: Path, documents: dict, secrets: str) -> tuple:
    (tmp_path / "store.json").write_text(json.dumps(documents))
    text = "version: 1\nbackends:\n  fake: {type: fake, file: store.json}\nsecrets:\n" + secrets
    spec = parse_spec(text, str(tmp_path / "jobsecrets.yml"))
    return spec, BackendContext(env={}, spec_dir=str(tmp_path))


def test_resolver_makes_one_variable_per_field(tmp_path: Path) -> None:
    spec, context = _spec(
        tmp_path,
        {"app": {"user": "u", "pass-word": "p"}, "other": {"x": "1"}},
        "  APP: {ref: 'fake:app#*', name_prefix: APP_}\n  X: fake:other#x\n",
    )
    assert resolve(spec, context, Ledger()).env() == {
        "APP_USER": "u",
        "APP_PASS_WORD": "p",
        "X": "1",
    }


@pytest.mark.parametrize(
    ("documents", "secrets", "message"),
    [
        ({"app": {"x": "1"}}, "  APP: {ref: 'fake:app#*'}\n  X: fake:app#x\n", "name taken"),
        ({"app": {"path": "1"}}, "  APP: {ref: 'fake:app#*'}\n", "PATH"),
        ({"app": {"a-b": "1", "a_b": "2"}}, "  APP: fake:app#*\n", "both make"),
    ],
)
def test_resolver_refuses_taken_denied_and_colliding_names(
    tmp_path: Path, documents: dict, secrets: str, message: str
) -> None:
    spec, context = _spec(tmp_path, documents, secrets)
    with pytest.raises(ConfigError) as caught:
        resolve(spec, context, Ledger())
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("{ref: 'fake:app#x', flatten: true}", "'flatten' goes with every field"),
        ("{ref: 'fake:app#*', file: true}", "cannot be 'file: true'"),
        ("{ref: 'fake:app#x', name_prefix: P_}", "'name_prefix' only goes with"),
        ("{ref: 'fake:app#*', flatten: 1}", "'flatten' must be true or false"),
    ],
)
def test_spec_validation(secret: str, message: str) -> None:
    text = (
        "version: 1\nbackends:\n  fake: {type: fake, file: s.json}\nsecrets:\n  A: " + secret + "\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_spec(text, "s.yml")
    assert message in str(caught.value.problems[0])


def test_plan_shows_how_every_field_is_named(tmp_path: Path) -> None:
    from support.cli import jobsecrets

    (tmp_path / "store.json").write_text("{}")
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  fake: {type: fake, file: store.json}\nsecrets:\n"
        "  APP: {ref: 'fake:app#**', name_prefix: APP_, flatten: true}\n"
    )
    result = jobsecrets(["plan"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        "APP (every field as APP_<KEY>: key case kept, nested keys joined with _)" in result.stdout
    )
    as_json = jobsecrets(["plan", "--format", "json"], cwd=tmp_path)
    assert '"every_field": "every field as APP_<KEY>' in as_json.stdout
