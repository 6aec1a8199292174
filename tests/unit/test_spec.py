"""The spec parser: good specs become typed objects, bad ones list every problem with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jobsecrets.errors import ConfigError
from jobsecrets.refs import parse_reference
from jobsecrets.spec import load_spec, parse_spec

GOOD = """\
version: 1
backends:
  vault:
    type: vault
    address: https://vault.example.com:8200
    auth: {method: jwt, role: ci-deploy, audience: vault}
  aws:
    type: aws
    region: eu-west-1
secrets:
  DB_PASSWORD: vault:secret/app#password
  STRIPE_KEY: aws:prod/payments#stripe_key
  CONFIG_BLOB: aws:prod/blob
  DB_USER: vault:database/creds/ci#username
  TLS_KEY:
    ref: vault:pki/issue/ci#private_key
    params: {common_name: ci.example.com, ttl: 15m}
    file: true
  FEATURE_FLAG:
    ref: aws:maybe/missing#flag
    optional: true
  VALS: ref+vault://secret/other#/nested/key
"""


def problems_of(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(ConfigError) as info:
        parse_spec(textwrap.dedent(text), "jobsecrets.yml")
    assert info.value.exit_code == 2
    for problem in info.value.problems:
        assert problem.file == "jobsecrets.yml"
    return [(p.line, p.message) for p in info.value.problems]


def test_good_spec_parses_into_typed_objects() -> None:
    spec = parse_spec(GOOD, "jobsecrets.yml")
    assert [s.name for s in spec.secrets] == [
        "DB_PASSWORD",
        "STRIPE_KEY",
        "CONFIG_BLOB",
        "DB_USER",
        "TLS_KEY",
        "FEATURE_FLAG",
        "VALS",
    ]
    tls = spec.secret("TLS_KEY")
    assert (
        tls.file
        and tls.ref.field == "private_key"
        and tls.params["common_name"] == "ci.example.com"
    )
    assert spec.secret("FEATURE_FLAG").optional
    assert spec.secret("CONFIG_BLOB").ref.field is None
    vals = spec.secret("VALS")
    assert (
        vals.backend == "vault"
        and vals.ref.path == "secret/other"
        and vals.ref.field == "nested/key"
    )
    assert spec.backends["vault"].options["auth"]["role"] == "ci-deploy"
    assert spec.secret("DB_PASSWORD").line == 11


def test_references() -> None:
    ref = parse_reference("vault:secret/app#password")
    assert (ref.backend, ref.path, ref.field) == ("vault", "secret/app", "password")
    ref = parse_reference("ref+awssecrets://prod/blob#/a/b")
    assert (ref.backend, ref.backend_type, ref.path, ref.field) == (None, "aws", "prod/blob", "a/b")
    assert parse_reference("aws:prod/payments/*").is_prefix
    for bad in ["", "nobackend", "ref+foo://x", "vault:", "vault:#x", "1x:path", "aws:a*/b"]:
        with pytest.raises(ValueError):
            parse_reference(bad)


def test_type_defaults_to_the_backend_name() -> None:
    spec = parse_spec(
        "version: 1\nbackends:\n  vault: {address: http://127.0.0.1:1}\nsecrets:\n  A: vault:x/y#z\n"
    )
    assert spec.backends["vault"].type == "vault"


def test_implicit_backend_for_a_type_name() -> None:
    spec = parse_spec("version: 1\nsecrets:\n  A: vault:x/y#z\n  B: ref+awssecrets://s#k\n")
    assert spec.backends["vault"].implicit and spec.backends["aws"].type == "aws"


def test_every_problem_is_listed_with_its_line() -> None:
    found = problems_of(
        """\
        version: 1
        colour: blue
        backends:
          vault:
            type: vault
            adress: http://x
          other:
            type: nosuch
        secrets:
          GOOD: vault:secret/app#password
          UNKNOWN_BACKEND: nope:secret/x#y
          BAD_REF: "vault:"
          1BAD: vault:secret/app#x
          LD_PRELOAD: vault:secret/app#x
          PATH: vault:secret/app#x
          GITHUB_TOKEN: vault:secret/app#x
          LONG:
            ref: vault:secret/app#x
            file: "yes"
            surprise: 1
          NOREF:
            file: true
          GOOD: vault:secret/app#again
        """
    )
    lines = {line for line, _ in found}
    text = "\n".join(message for _, message in found)
    assert "unknown top-level key 'colour'" in text
    assert "unknown option 'adress'" in text
    assert "unknown backend type 'nosuch'" in text
    assert "unknown backend 'nope'" in text
    assert "empty path" in text
    assert "'1BAD' is not a valid environment variable name" in text
    assert (
        "'LD_PRELOAD' is refused" in text
        and "'PATH' is refused" in text
        and "'GITHUB_TOKEN' is refused" in text
    )
    assert "'file' must be true or false" in text
    assert "unknown key 'surprise'" in text
    assert "secret 'NOREF' has no 'ref'" in text
    assert "duplicate key 'GOOD'" in text
    assert {2, 6, 8, 11, 12, 13, 14, 15, 16, 20, 22, 23} <= lines


def test_yaml_syntax_error_has_a_line() -> None:
    found = problems_of("version: 1\nsecrets:\n  A: [unclosed\n  B: x\n")
    assert len(found) == 1 and "YAML syntax error" in found[0][1] and found[0][0] is not None


def test_wrong_types() -> None:
    text = "\n".join(m for _, m in problems_of("version: 2\nsecrets: [a, b]\nallow_names: LD_*\n"))
    assert "unsupported version 2" in text
    assert "'secrets' must be a mapping" in text
    assert "'allow_names' must be a list" in text


def test_missing_sections_and_empty_file() -> None:
    assert any("missing 'secrets:'" in m for _, m in problems_of("version: 1\n"))
    assert any("missing 'version: 1'" in m for _, m in problems_of("secrets:\n  A: vault:a/b#c\n"))
    assert any("empty" in m for _, m in problems_of(""))
    assert any("'secrets' is empty" in m for _, m in problems_of("version: 1\nsecrets: {}\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(tmp_path / "nope.yml")
    assert info.value.exit_code == 2 and "not found" in str(info.value)


def test_allow_names_lets_a_denied_name_through() -> None:
    spec = parse_spec(
        "version: 1\nallow_names: [LD_LIBRARY_PATH]\nsecrets:\n  LD_LIBRARY_PATH: vault:a/b#c\n"
    )
    assert spec.secrets[0].name == "LD_LIBRARY_PATH"


def test_backend_option_validation() -> None:
    text = "\n".join(
        m
        for _, m in problems_of(
            """\
            version: 1
            backends:
              vault:
                type: vault
                address: ftp://x
                auth: {method: jwt}
              v2:
                type: vault
                auth: {method: magic}
            secrets:
              A: vault:secret/a#b
              B:
                ref: v2:secret/a#b
                kv_version: 3
            """
        )
    )
    assert "must start with http:// or https://" in text
    assert "auth method jwt needs a 'role'" in text
    assert "auth method 'magic' is not one of" in text
    assert "'kv_version' must be 1 or 2" in text


def test_ambiguous_vals_reference() -> None:
    text = "\n".join(
        m
        for _, m in problems_of(
            "version: 1\nbackends:\n  a: {type: vault}\n  b: {type: vault}\nsecrets:\n  X: ref+vault://s/x#y\n"
        )
    )
    assert "ambiguous" in text


def test_only_selects_and_rejects_unknown_names() -> None:
    spec = parse_spec(GOOD)
    assert [s.name for s in spec.select(["DB_USER", "VALS"]).secrets] == ["DB_USER", "VALS"]
    with pytest.raises(ConfigError):
        spec.select(["NOPE"])


def test_settings_redact_and_identity() -> None:
    spec = parse_spec(
        "version: 1\nsettings: {timeout: 5s, deadline: 1m, concurrency: 4}\n"
        "redact: {replacement: '[masked]', min_line_length: 6}\n"
        "identity: {variable: MY_TOKEN}\nsecrets:\n  A: vault:a/b#c\n"
    )
    assert (spec.settings.timeout, spec.settings.deadline, spec.settings.concurrency) == (5, 60, 4)
    assert spec.redact.replacement == "[masked]" and spec.redact.min_line_length == 6
    assert spec.identity.variable == "MY_TOKEN"
    found = problems_of(
        "version: 1\nsettings: {timeout: soon, colour: red}\nredact: {replacement: ''}\n"
        "identity: {provider: carrier-pigeon}\nsecrets:\n  A: vault:a/b#c\n"
    )
    text = "\n".join(m for _, m in found)
    assert "is not a duration" in text and "unknown key 'colour'" in text
    assert "'replacement' must be" in text and "carrier-pigeon" in text


def test_a_duration_past_100_years_is_a_spec_problem_not_a_crash_later() -> None:
    """A deadline the platform's clock cannot hold was an OverflowError in the middle of a run
    ("internal error ... threading.py"); every duration the spec writes is bounded now."""
    huge = "99999999999999999999999d"
    found = problems_of(
        f"version: 1\nsettings: {{timeout: {huge}, deadline: 36501d}}\n"
        f"identity: {{clock_skew: '{'9' * 5000}s'}}\npolicy: {{max_ttl: {huge}}}\n"
        "secrets:\n  A: vault:a/b#c\n"
    )
    messages = [m for _, m in found]
    assert sum("longer than 100" in m for m in messages) == 4, messages
    assert all(len(m) < 200 for m in messages), "a huge value is cut short in the message"
    spec = parse_spec("version: 1\nsettings: {deadline: 36500d}\nsecrets:\n  A: vault:a/b#c\n")
    assert spec.settings.deadline == 36500 * 86400


@pytest.mark.parametrize(
    "name", ["PERL5DB", "PERL5SHELL", "perl5db", "PYTHONSTARTUP", "ld_preload"]
)
def test_every_documented_denied_family_is_refused(name: str) -> None:
    """README: `PERL5*`, `PYTHON*`, `LD_*` (whatever the case) are refused unless allowed."""
    from jobsecrets.names import check_name

    problem = check_name(name)
    assert problem is not None and "refused" in problem
    assert check_name(name, [name]) is None


def test_duplicate_keys_in_nested_mappings_are_problems() -> None:
    """A repeated key anywhere (auth, params, policy, identity) is reported, not silently last-wins."""
    found = problems_of(
        """\
        version: 1
        backends:
          vault:
            auth: {method: jwt, role: ci, method: token}
        identity: {variable: A_TOKEN, variable: B_TOKEN}
        policy: {max_age: 1d, max_age: 90d}
        secrets:
          A:
            ref: vault:pki/issue/ci#private_key
            params: {ttl: 1m, ttl: 15m}
        """
    )
    assert [line for line, m in found if "duplicate key 'method'" in m] == [4]
    assert [line for line, m in found if "duplicate key 'variable'" in m] == [5]
    assert [line for line, m in found if "duplicate key 'max_age'" in m] == [6]
    assert [line for line, m in found if "duplicate key 'ttl'" in m] == [10]


def test_weird_references_are_spec_problems() -> None:
    """Caught by plan (exit 2, nothing fetched), not by the store at run time."""
    for bad in ["vault:secret/app#", "aws:prod/x#", "vault: secret/app#password"]:
        with pytest.raises(ValueError):
            parse_reference(bad)
    text = "\n".join(
        m
        for _, m in problems_of(
            """\
            version: 1
            secrets:
              A: vault:secret/x/../app#password
              B: vault:./secret/app#password
              C: {ref: "vault:secret/app#password", kv_version: true}
            """
        )
    )
    assert text.count("'.' or '..'") == 2
    assert "'kv_version' must be 1 or 2" in text


def test_empty_config_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_spec("")
    assert info.value.exit_code == 2 and "-c/--config is empty" in str(info.value)


def test_name_prefix_that_can_only_make_bad_names_is_a_spec_problem() -> None:
    text = "\n".join(
        m
        for _, m in problems_of(
            """\
            version: 1
            secrets:
              A: {ref: "aws:prod/a/*", name_prefix: "1X_"}
              B: {ref: "aws:prod/b/*", name_prefix: "LD_"}
            """
        )
    )
    assert "'name_prefix' '1X_' cannot start" in text
    assert "'name_prefix' 'LD_' cannot start" in text
    spec = parse_spec(
        'version: 1\nallow_names: ["LD_*"]\nsecrets:\n  B: {ref: "aws:p/*", name_prefix: LD_}\n'
    )
    assert spec.secrets[0].name_prefix == "LD_"
