"""``jobsecrets import`` on files written to hurt: a spec that loads, or a ConfigError.

Hypothesis takes each real-world shape of tests/data/import (vault-action and
aws-secretsmanager-get-secrets steps, GitLab ``secrets:``, vals references) and changes one part
of it: a key or item replaced by anything, removed, or given a sibling, and, in the one-line
syntaxes (vault-action's ``path key | NAME ;``, the AWS action's ``NAME,secret-id``), characters
of that syntax inserted anywhere. What the import writes must load with the real spec parser and
every file it rewrites must still be YAML; input it cannot take is a ConfigError (exit 2), never
a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from test_spec_property import SCALARS, _paths, _values

from jobsecrets.errors import ConfigError
from jobsecrets.importer.command import ImportResult, convert
from jobsecrets.spec import parse_spec

DATA = Path(__file__).resolve().parent.parent / "data" / "import"
SHAPES = sorted(p for d in ("github", "gitlab") for p in (DATA / d).iterdir())


class _AnyTags(yaml.SafeLoader):
    """Safe loading that also reads GitLab's own tags (``!reference [.job, script]``)."""


def _untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_AnyTags.add_multi_constructor("!", _untagged)

#: The characters the one-line syntaxes are made of, and some that break them.
SYNTAX = ["|", ";", ",", ".", "*", "/", " ", "\n", "#", ":", '"', "${{ env.X }}", "$X", "\t"]


@st.composite
def _damaged(draw: st.DrawFn) -> tuple[str, str]:
    """(file name, text): one shape of tests/data/import with one part changed."""
    path = draw(st.sampled_from(SHAPES))
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_AnyTags)  # noqa: S506 (safe + tags)
    where = draw(st.sampled_from(_paths(doc)[1:]))
    parent: Any = doc
    for step in where[:-1]:
        parent = parent[step]
    value = parent[where[-1]]
    how = draw(st.sampled_from(["syntax", "replace", "remove", "sibling"]))
    if how == "syntax" and isinstance(value, str):
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(value)))
            value = value[:at] + draw(st.sampled_from(SYNTAX)) + value[at:]
        parent[where[-1]] = value
    elif how in ("syntax", "replace"):
        parent[where[-1]] = draw(_values(SCALARS))
    elif how == "remove":
        del parent[where[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(_values(SCALARS))
    else:
        parent.append(draw(_values(SCALARS)))
    event(f"{how} in {path.parent.name}")
    return path.name, yaml.safe_dump(doc, default_flow_style=False)


def _import(folder: Path, name: str, text: str) -> ImportResult | None:
    """Import ``text`` written to ``folder/name``: its result, every spec checked by the real
    parser, or None when the import refused it with a ConfigError (anything else propagates)."""
    (folder / name).write_text(text, encoding="utf-8", errors="surrogatepass")
    cwd = Path.cwd()
    try:
        os.chdir(folder)  # the import names files as given, relative to the working directory
        try:
            result = convert([name])
        except ConfigError as error:
            assert str(error), "a ConfigError with no message"
            event("a ConfigError")
            return None
    finally:
        os.chdir(cwd)
    for spec_file in result.specs:
        parse_spec(spec_file.text, spec_file.path)  # raises if the import wrote a bad spec
    event("imported")
    return result


def test_the_shapes_are_there() -> None:
    assert len(SHAPES) >= 30


@settings(
    max_examples=250,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(_damaged())
# Found by this test (seed 408): a job's variables: or id_tokens: that is no mapping crashed
# the GitLab reader (AttributeError, TypeError).
@example(
    (
        "vars.gitlab-ci.yml",
        "job:\n  script: [x]\n  variables: aws\n  id_tokens: {VAULT_ID_TOKEN: {aud: a}}\n"
        "  secrets:\n    A: {vault: ci/a/b@secret}\n",
    )
)
@example(
    (
        "tokens.gitlab-ci.yml",
        "job:\n  script: [x]\n  id_tokens: 5\n  secrets:\n    A: {vault: a/b@s}\n",
    )
)
def test_any_damaged_workflow_imports_to_a_spec_that_loads_or_is_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, str]
) -> None:
    name, text = case
    result = _import(tmp_path_factory.mktemp("import"), name, text)
    if result is None:
        return
    for _, new in result.rewritten.values():
        yaml.load(new, Loader=_AnyTags)  # noqa: S506 (safe loading, GitLab's tags read as plain)


@st.composite
def _vals_file(draw: st.DrawFn) -> str:
    """A dotenv file of vals references, some lines damaged with the syntax's own characters."""
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        line = draw(
            st.sampled_from(
                [
                    "DB_PASSWORD=ref+vault://secret/data/app/db#/password",
                    "API_KEY=ref+vault://secret/app?address=https://vault.example.com#/api_key",
                    "STRIPE_KEY=ref+awssecrets://prod/stripe?region=eu-west-1#/key",
                    "X=ref+gcpsecrets://p/s",
                    "PLAIN=not-a-secret",
                    "# a comment",
                    "",
                ]
            )
        )
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(line)))
            piece = draw(
                st.one_of(
                    st.sampled_from([*SYNTAX, "=", "?", "&", "ref+", "//"]), st.text(max_size=3)
                )
            )
            line = line[:at] + piece + line[at:]
        lines.append(line)
    return "\n".join(lines) + "\n"


@settings(
    max_examples=150,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(_vals_file())
def test_any_damaged_vals_file_imports_to_a_spec_that_loads_or_is_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    _import(tmp_path_factory.mktemp("vals"), "app.env", text)
