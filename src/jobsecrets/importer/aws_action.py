"""aws-actions/aws-secretsmanager-get-secrets steps, read as the action reads them.

``secret-ids`` is one entry per line: ``ID``, ``ALIAS,ID``, ``,ID`` (with ``parse-json-secrets``:
the keys without the secret's name in front) or ``PREFIX*``. A variable is named after the
secret (its name, also when the entry is an ARN) with every character that is not a letter,
digit or ``_`` turned into ``_``, a leading ``_`` before a digit, then upper-cased (the default
``name-transformation``). ``parse-json-secrets`` makes ``NAME_KEY`` per key of a JSON object,
nested keys joined with ``_``; a value that is no JSON object keeps ``NAME``.
"""

from __future__ import annotations

__all__ = ["INPUTS", "AwsStepResult", "convert_step", "env_name"]

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .exprs import has_expression
from .model import Backend, ImportError_, Note, Secret, Where

INPUTS = frozenset(
    {
        "secret-ids",
        "parse-json-secrets",
        "name-transformation",
        "auto-select-family-attempt-timeout",
    }
)
TRANSFORMATIONS = ("uppercase", "lowercase", "none")
_PREFIX = re.compile(r"^[a-zA-Z0-9/_+=.@-]{3,}\*$")
_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[^:]*:\d{12,}:secret:(?P<name>.+)$")


@dataclass
class AwsStepResult:
    """What one aws-secretsmanager-get-secrets step becomes."""

    secrets: list[Secret] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


def env_name(
    secret_name: str, transformation: str = "uppercase", *, has_prefix: bool = False
) -> str:
    """The action's ``transformToValidEnvName``."""
    if not has_prefix and secret_name[:1].isdigit():
        secret_name = "_" + secret_name
    secret_name = re.sub(r"[^a-zA-Z0-9_]", "_", secret_name)
    if transformation == "lowercase":
        return secret_name.lower()
    if transformation == "none":
        return secret_name
    return secret_name.upper()


def _name_of(secret_id: str) -> str:
    """The secret's name: an ARN ends in ``NAME-XXXXXX`` (six random characters)."""
    match = _ARN.fullmatch(secret_id)
    if not match:
        return secret_id
    name = match.group("name")
    return name[:-7] if re.search(r"-[A-Za-z0-9]{6}$", name) else name


def convert_step(
    inputs: dict[str, Any],
    where: Where,
    line_of: Callable[[str], int | None],
    find: Callable[[int | None, str], int | None],
    backend: Backend,
) -> AwsStepResult:
    """Convert one step's ``with:`` for the AWS backend ``backend``."""
    result = AwsStepResult()
    unknown = sorted(k for k in inputs if k not in INPUTS)
    if unknown:
        raise ImportError_.at(
            Where(where.file, line_of(unknown[0]) or where.line),
            f"aws-secretsmanager-get-secrets has no input {unknown[0]!r}",
            hint="its inputs are: " + ", ".join(sorted(INPUTS)),
        )

    def here(key: str) -> Where:
        return Where(where.file, line_of(key) or where.line)

    parse_json = str(inputs.get("parse-json-secrets", "false")).strip().lower() == "true"
    transformation = str(inputs.get("name-transformation") or "uppercase").strip().lower()
    if transformation not in TRANSFORMATIONS:
        raise ImportError_.at(
            here("name-transformation"),
            f"name-transformation {transformation!r} is not one of {', '.join(TRANSFORMATIONS)}",
        )
    if "auto-select-family-attempt-timeout" in inputs:
        result.notes.append(
            Note(
                here("auto-select-family-attempt-timeout"),
                "auto-select-family-attempt-timeout not carried over: jobsecrets bounds every "
                "request with settings.timeout",
            )
        )
    raw = inputs.get("secret-ids")
    if raw is None or not str(raw).strip():
        raise ImportError_.at(where, "aws-secretsmanager-get-secrets needs 'secret-ids'")
    start = line_of("secret-ids") or where.line
    seen: set[str] = set()
    for entry in (line.strip() for line in str(raw).splitlines()):
        if not entry or entry in seen:
            continue  # the action de-duplicates entries
        seen.add(entry)
        start = find(start, entry)  # entries come in order: look from the one before
        spot = Where(where.file, start)
        if has_expression(entry):
            result.notes.append(
                Note(
                    spot,
                    f"entry {entry!r} holds an expression known only at run time: not carried over",
                    "error",
                )
            )
            continue
        alias: str | None = None
        secret_id = entry
        if "," in entry:
            alias, _, secret_id = (p.strip() for p in entry.partition(","))
            if alias and alias != env_name(alias, transformation):
                raise ImportError_.at(
                    spot,
                    f"alias {alias!r} is not a valid variable name (the action refuses it too)",
                )
        if parse_json and transformation == "lowercase":
            result.notes.append(
                Note(
                    spot,
                    "parse-json-secrets with name-transformation lowercase: jobsecrets names "
                    "keys in upper case (or as they are, for 'none'). Not carried over",
                    "error",
                )
            )
            continue
        if "*" in secret_id:
            secret = _prefix(secret_id, alias, parse_json, transformation, spot, backend, result)
        else:
            secret = _single(secret_id, alias, parse_json, transformation, spot, backend)
        if secret is not None:
            result.secrets.append(secret)
    return result


def _single(
    secret_id: str,
    alias: str | None,
    parse_json: bool,
    transformation: str,
    spot: Where,
    backend: Backend,
) -> Secret:
    name = alias or env_name(_name_of(secret_id), transformation)
    if not parse_json:
        return Secret(name, backend, secret_id, None, spot)
    # parse-json-secrets: NAME_KEY per key (nested joined with _), NAME if the value is no object;
    # a blank alias (',ID') drops NAME_ in front of the keys.
    prefix = "" if alias == "" else name + "_"
    field = "**" if transformation == "none" else "*"
    return Secret(name, backend, secret_id, field, spot, name_prefix=prefix, flatten=True)


def _prefix(
    secret_id: str,
    alias: str | None,
    parse_json: bool,
    transformation: str,
    spot: Where,
    backend: Backend,
    result: AwsStepResult,
) -> Secret | None:
    if not _PREFIX.fullmatch(secret_id):
        raise ImportError_.at(
            spot, f"{secret_id!r}: a prefix needs at least 3 characters and must end in '*'"
        )
    if alias:
        result.notes.append(
            Note(
                spot,
                f"'{alias},{secret_id}' names the one secret a prefix finds: jobsecrets cannot; "
                "write its full name instead. Not carried over",
                "error",
            )
        )
        return None
    if transformation != "uppercase":
        result.notes.append(
            Note(
                spot,
                f"name-transformation {transformation} with a prefix: jobsecrets names prefix "
                "members in upper case. Not carried over",
                "error",
            )
        )
        return None
    prefix = secret_id[:-1]
    # The action names each secret after its whole name; jobsecrets after the rest of it, so
    # the prefix's own transformed text goes in front.
    name_prefix = env_name(prefix)
    label = name_prefix.strip("_") or "SECRETS"
    if not prefix.endswith("/"):
        result.notes.append(
            Note(
                spot,
                f"prefix {prefix!r} does not end in '/': a secret named '{prefix}/x' is named "
                f"{name_prefix}X by jobsecrets ({name_prefix}_X by the action)",
            )
        )
    return Secret(
        label,
        backend,
        secret_id,
        "*" if parse_json else None,
        spot,
        name_prefix=name_prefix,
        flatten=parse_json,
    )
