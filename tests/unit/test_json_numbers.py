"""A JSON number in a store's value reaches the variable as the store wrote it (jsonsafe.Number).

``json.loads`` wrote ``1.50`` back as ``1.5``, ``1e3`` as ``1000.0``, ``1e400`` as ``inf`` (and as
``Infinity``, no JSON, inside a structure), ``-0`` as ``0``, and refused an integer of more than
4,300 digits, so the whole secret was "not JSON". Values are compared as booleans: a failing
test prints none.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import requests

from jobsecrets import jsonsafe
from jobsecrets.backends.vault.answers import seconds
from jobsecrets.fields import extract, to_text
from jobsecrets.fieldsets import select
from jobsecrets.maskforms import json_leaves
from support.cli import jobsecrets
from support.vault_stub import KV2_MOUNT, VaultStub

BIG = "9" * 4999 + "7"  # past Python's 4,300 digits of int text
NUMBERS = [
    "1.50",
    "1e3",
    "1E+3",
    "2.5e-3",
    "-0",
    "-0.0",
    "0.1",
    "1e400",
    "-1e400",
    "123456789012345678901234567890.000",
    "18446744073709551617",
    BIG,
    "-" + BIG,
    BIG + ".5e-10",
]


@pytest.mark.parametrize("number", NUMBERS, ids=lambda text: text[:24])
def test_a_number_leaf_is_its_text_in_the_store(number: str) -> None:
    secret = '{"v": ' + number + ', "s": "x"}'  # an AWS SecretString
    ok = to_text(extract(secret, "v")) == number
    assert ok, "the number's text changed"


@pytest.mark.parametrize("number", NUMBERS, ids=lambda text: text[:24])
def test_a_structure_writes_its_numbers_as_written(number: str) -> None:
    secret = '{"doc": {"b": [' + number + ', 1, true, null], "a": ' + number + "}}"
    text = to_text(extract(secret, "doc"))
    ok = text == '{"a":' + number + ',"b":[' + number + ",1,true,null]}"
    assert ok, "the structure's text changed"
    jsonsafe.loads(text)  # still JSON (1e400 was written "Infinity")


def test_an_ordinary_integer_stays_an_int_for_arithmetic() -> None:
    """TTLs, versions, ``lease_duration``: plain ints, as code reading answers expects."""
    answer = jsonsafe.loads('{"lease_duration": 3600, "version": 3, "n": -12}')
    assert all(type(value) is int for value in answer.values())
    assert answer == {"lease_duration": 3600, "version": 3, "n": -12}


def test_a_number_of_another_kind_is_still_a_number() -> None:
    """A float TTL still counts (3600.5 -> 3600); one no int holds gives the default."""
    assert seconds(jsonsafe.loads("3600.5")) == 3600
    assert seconds(jsonsafe.loads("1e400"), 7) == 7
    assert seconds(jsonsafe.loads(BIG), 7) == 7
    number = jsonsafe.loads("1.50")
    assert isinstance(number, float) and number == 1.5 and number * 2 == 3.0
    assert str(number) == "1.50" and f"{number}" == "1.50" and f"{number:.1f}" == "1.5"


def test_the_text_survives_pickling() -> None:
    """The forked AWS process sends documents to the parent pickled."""
    document = jsonsafe.loads('{"a": [1.50, -0, ' + BIG + '], "b": {"c": 1e3}}')
    copy = pickle.loads(pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301
    ok = jsonsafe.compact(copy) == '{"a":[1.50,-0,' + BIG + '],"b":{"c":1e3}}'
    assert ok, "pickling changed a number"


def test_flattened_fields_keep_their_numbers() -> None:
    pairs = select('{"n": 1.50, "db": {"port": 5.0}}', "*", name="X", flatten=True)
    ok = [(name, to_text(value)) for name, value in pairs] == [("N", "1.50"), ("DB_PORT", "5.0")]
    assert ok, "a flattened field's number changed"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_kept_as_written(constant: str) -> None:
    """No JSON, but Python reads them and a SecretString may hold them: neither refused (a secret
    that worked would fail) nor rewritten (they were ``nan``, ``inf``)."""
    secret = '{"a": "x", "b": ' + constant + ', "c": [' + constant + "]}"
    ok = (to_text(extract(secret, "a")), to_text(extract(secret, "b"))) == ("x", constant)
    assert ok and to_text(extract(secret, "c")) == "[" + constant + "]", "rewritten"


def test_masking_still_finds_the_strings_of_a_value_with_odd_numbers() -> None:
    """A whole value's strings are masked one by one: a NaN or an integer past Python's limit
    (which made it "not JSON") must not keep them from it."""
    leaves = json_leaves(b'{"password": "hunter2-long", "x": NaN, "big": ' + BIG.encode() + b"}")
    assert ("password", b"hunter2-long") in leaves


@pytest.mark.parametrize(
    "value",
    [
        {"b": [1, 2.5, None, True, False], "a": '\u00e9\u2028\x00"\\/<>', "c": {}},
        [float("nan"), float("inf"), -float("inf"), -0.0, 10**30, (1, "x")],
        {2: "int keys", 1: "sorted as ints"},
        {2.5: "a float key"},
        {True: 1},
        {None: 2},
        "plain",
        1e300,
    ],
)
def test_compact_writes_what_json_dumps_writes_of_python_data(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), sort_keys=True)
    assert jsonsafe.compact(value) == expected


def test_compact_refuses_what_json_dumps_refuses() -> None:
    with pytest.raises(TypeError):
        jsonsafe.compact({"a": object()})
    with pytest.raises(TypeError):
        jsonsafe.compact({(1, 2): "tuple key"})


# ---- the Vault client's adapter ------------------------------------------------------------------


def _answer(body: bytes, status: int = 200, charset: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = "application/json" + (
        f"; charset={charset}" if charset else ""
    )
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    return response


def _adapter_reading(monkeypatch: pytest.MonkeyPatch, response: requests.Response) -> Any:
    import hvac.adapters

    from jobsecrets.backends.vault.adapter import ExactJSONAdapter

    monkeypatch.setattr(hvac.adapters.RawAdapter, "request", lambda *_a, **_k: response)
    return ExactJSONAdapter(base_uri="http://127.0.0.1:1").request("GET", "/v1/secret/data/x")


def test_the_vault_adapter_reads_numbers_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    body = (
        '{"data": {"data": {"n": 1.50, "big": ' + BIG + ', "d": {"x": 1e3}}}, "lease_duration": 60}'
    )
    reply = _adapter_reading(monkeypatch, _answer(body.encode()))
    data = reply["data"]["data"]
    ok = (to_text(data["n"]), to_text(data["big"]), to_text(data["d"])) == (
        "1.50",
        BIG,
        '{"x":1e3}',
    )
    assert ok, "a number changed on its way through the adapter"
    assert type(reply["lease_duration"]) is int and reply["lease_duration"] == 60


def test_the_vault_adapter_answers_as_hvac_s_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not JSON, or not 200: the response itself; JSON in another charset: read in it."""
    not_json = _answer(b"<html>")
    assert _adapter_reading(monkeypatch, not_json) is not_json
    no_content = _answer(b"", status=204)
    assert _adapter_reading(monkeypatch, no_content) is no_content
    latin = _answer('{"a": "\u00e9", "n": 1.0}'.encode("latin-1"), charset="latin-1")
    reply = _adapter_reading(monkeypatch, latin)
    assert reply["a"] == "\u00e9" and str(reply["n"]) == "1.0"


def test_the_vault_adapter_says_an_answer_is_nested_too_deeply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not swallowed as "not JSON" (that read as "no data"): the backend names it."""
    deep = _answer(b'{"data": ' + b"[" * 20_000 + b"]" * 20_000 + b"}")
    with pytest.raises(jsonsafe.NestedTooDeeply):
        _adapter_reading(monkeypatch, deep)


def test_export_writes_a_vault_answer_s_numbers_as_the_answer_does(tmp_path: Path) -> None:
    """Through the CLI, from a stand-in store whose answer has what OpenBao cannot keep (it reads
    numbers as float64) and another Vault may: 5,000 digits, 1e400, 1.50."""
    body = (
        '{"data": {"data": {"n": 1.50, "big": ' + BIG + ', "huge": 1e400, "doc": {"x": 1e3, '
        '"y": [-0, 2.50]}}, "metadata": {"version": 1}}, "lease_duration": 0}'
    ).encode()
    expected = {"N": "1.50", "BIG": BIG, "HUGE": "1e400", "DOC": '{"x":1e3,"y":[-0,2.50]}'}
    spec = "version: 1\nbackends:\n  vault: {type: vault}\nsecrets:\n" + "".join(
        f"  {name}: vault:secret/app#{name.lower()}\n" for name in expected
    )
    (tmp_path / "jobsecrets.yml").write_text(spec)
    routes = {
        ("GET", "sys/internal/ui/mounts/*"): KV2_MOUNT,
        ("GET", "secret/data/app"): (200, body),
    }
    with VaultStub(routes) as vault:
        env = {"VAULT_ADDR": vault.url, "VAULT_TOKEN": "user-token-for-the-stub"}
        result = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-800:]
    out = json.loads(result.stdout)
    wrong = sorted(name for name in expected if out.get(name) != expected[name])
    assert not wrong, f"changed: {wrong}"
