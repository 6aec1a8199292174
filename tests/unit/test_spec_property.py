"""A spec written to hurt: whatever the file holds, loading it gives a Spec or a ConfigError.

Hypothesis writes specs from the spec's own vocabulary (its sections, every backend's options,
references, durations, policy rules) mixed with arbitrary keys and values, dumps them as YAML in
either style, and then, for some, damages the text (a character inserted, deleted or replaced).
Each goes through :func:`jobsecrets.spec.load_spec`, as ``jobsecrets plan`` reads a file: any other
exception (a ``TypeError`` from a list where a mapping was expected, a ``RecursionError``) is a crash
a user would see as a traceback, and each must end quickly (the deadline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import test_spec
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from jobsecrets.backends.registry import available_types, get_backend_class
from jobsecrets.errors import ConfigError
from jobsecrets.spec import load_spec
from jobsecrets.spec.identity import IDENTITY_KEYS
from jobsecrets.spec.model import Spec
from jobsecrets.spec.parser import SECRET_KEYS, TOP_KEYS
from jobsecrets.spec.policy import POLICY_KEYS


def _backend_words() -> list[str]:
    words: set[str] = set()
    for name in available_types():
        cls = get_backend_class(name)
        words.update(cls.OPTIONS)
        words.update(cls.SECRET_OPTIONS)
    return sorted(words)


TYPES = sorted(available_types())
KEYS = sorted(
    {*TOP_KEYS, *SECRET_KEYS, *IDENTITY_KEYS, *POLICY_KEYS, *_backend_words(), "type", "auth"}
)
SCALARS = st.one_of(
    st.sampled_from(
        [
            *TYPES,
            "vault:kv/data/app#password",
            "aws:prod/db",
            "aws:prod/db#user",
            "vault:database/creds/ro",
            "fake:app#a",
            "kv/data/app",
            "#",
            ":",
            "vault:",
            "5m",
            "0s",
            "-1h",
            "P1D",
            "1e999",
            "utf-8",
            "base64",
            "fail",
            "warn",
            "github",
            "gitlab",
            "*",
            "${{ secrets.X }}",
        ]
    ),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.binary(max_size=8),
)
NAMES = st.one_of(
    st.sampled_from(["DB_PASSWORD", "A", "a", "PATH", "LD_PRELOAD", "GITHUB_TOKEN", "1X", "X-Y"]),
    st.text(max_size=10),
)


def _values(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5
            ),
        ),
        max_leaves=12,
    )


@st.composite
def _specs(draw: st.DrawFn) -> str:
    doc: dict[Any, Any] = {}
    if draw(st.integers(0, 9)):  # mostly there: a spec without it stops at the first check
        doc["version"] = draw(st.one_of(st.just(1), SCALARS))
    backends = draw(
        st.dictionaries(
            st.one_of(st.sampled_from(TYPES), st.text(max_size=6)),
            st.one_of(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(TYPES)},
                    optional={key: _values(SCALARS) for key in _backend_words()[:12]},
                ),
                _values(SCALARS),
            ),
            max_size=3,
        )
    )
    if backends or draw(st.booleans()):
        doc["backends"] = backends
    secrets = draw(
        st.dictionaries(
            NAMES,
            st.one_of(
                SCALARS,
                st.fixed_dictionaries(
                    {"ref": SCALARS},
                    optional={key: _values(SCALARS) for key in sorted(SECRET_KEYS - {"ref"})},
                ),
                _values(SCALARS),
            ),
            max_size=4,
        )
    )
    if secrets or draw(st.booleans()):
        doc["secrets"] = secrets
    for key in draw(
        st.lists(st.sampled_from(sorted(TOP_KEYS - {"version", "backends", "secrets"})))
    ):
        doc[key] = draw(_values(SCALARS))
    if draw(st.booleans()):
        doc[draw(st.text(max_size=8))] = draw(_values(SCALARS))
    text = yaml.safe_dump(doc, default_flow_style=draw(st.sampled_from([False, True, None])))
    if draw(st.booleans()):
        # Damage: one character inserted, deleted or replaced somewhere.
        at = draw(st.integers(0, len(text)))
        char = draw(
            st.sampled_from(
                [
                    "\t",
                    ":",
                    "-",
                    "&a",
                    "*a",
                    "!!python/object:os.system",
                    "\x00",
                    "\ufeff",
                    "{",
                    "'",
                    '"',
                    "\n",
                    " ",
                ]
            )
        )
        how = draw(st.sampled_from(["insert", "delete", "replace"]))
        if how == "insert":
            text = text[:at] + char + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


#: A spec that loads, with every section: test_spec's, and what it leaves out. The start of
#: ``_one_part_changed``.
GOOD: dict[str, Any] = yaml.safe_load(test_spec.GOOD)
GOOD["backends"]["aws"]["role_arn"] = "arn:aws:iam::123456789012:role/ci"
GOOD["backends"]["gh"] = {
    "type": "github",
    "client_id": "Iv23liEXAMPLE00000000",
    "private_key": "vault:secret/ci/github-app#pem",
    "job_timeout": "30m",
}
GOOD["secrets"].update(
    {
        "APP_": {"ref": "aws:prod/app#*", "name_prefix": "APP_", "flatten": True},
        "GH_TOKEN": {
            "ref": "gh:acme/app",
            "permissions": {"contents": "read"},
            "repositories": ["app"],
        },
    }
)
GOOD.update(
    yaml.safe_load(
        """
allow_names: [PATH_EXTRA]
identity: {provider: github, audience: jobsecrets}
redact: {min_line_length: 6}
settings: {timeout: 30s}
policy: {max_ttl: 1h, require_dynamic: true, on_violation: warn}
"""
    )
)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a key or item of ``node``."""
    out = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*at, index))
    return out


@st.composite
def _one_part_changed(draw: st.DrawFn) -> str:
    """:data:`GOOD` with one key or item replaced by anything, removed, or given a sibling."""
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    path = draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    how = draw(st.sampled_from(["replace", "remove", "sibling"]))
    if how == "replace":
        parent[path[-1]] = draw(_values(SCALARS))
    elif how == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)))] = draw(_values(SCALARS))
    else:
        parent.append(draw(_values(SCALARS)))
    return yaml.safe_dump(doc, default_flow_style=draw(st.sampled_from([False, True, None])))


def test_the_changed_spec_starts_from_one_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "jobsecrets.yml"
    path.write_text(yaml.safe_dump(GOOD))
    assert len(load_spec(path).secrets) == len(GOOD["secrets"])


@settings(
    max_examples=300,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.one_of(_specs(), _one_part_changed()))
@example("version: 1\nsecrets: {A: !!python/object/apply:os.system [true]}\n")
@example("version: 1\nbackends: [vault]\nsecrets: [A]\n")
@example("version: 1\nsecrets:\n  A: {ref: [1, 2]}\n")
# Found by this test (seed 104): a list is no member of the set of encodings, a TypeError.
@example("secrets:\n  DB_PASSWORD:\n    encoding: []\n    ref: vault:kv/data/app#password\n")
@example("version: 1\nsecrets:\n  ? [A, B]\n  : vault:kv/data/app#password\n")
@example("version: 1\nsecrets:\n  A: {ref: 'vault:a#b', ? {x: 1} : 2}\n")
def test_any_spec_loads_or_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "jobsecrets.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        spec = load_spec(path)
    except ConfigError as error:
        assert str(error), "a ConfigError with no message"
        event("a ConfigError")
    else:
        assert isinstance(spec, Spec)
        event(f"loaded, {len(spec.secrets)} secret(s)")
