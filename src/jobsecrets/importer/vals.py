"""vals-style references (``ref+vault://PATH?QUERY#/FIELD``, ``ref+awssecrets://ID?QUERY#/KEY``).

Read from a dotenv file (``NAME=ref+...``) or a flat YAML mapping (``NAME: ref+...``): each
becomes a variable of the same name. Query parameters become backend options where jobsecrets
has one (``address``, ``namespace``, ``region``, ``role_arn``, ``version_stage``, ``version_id``);
the others are reported.
"""

from __future__ import annotations

__all__ = ["read_vals"]

import re
from typing import Any
from urllib.parse import parse_qsl

from .model import Backend, ImportError_, Job, Note, Secret, Where

_REF = re.compile(
    r"^ref\+(?P<scheme>vault|awssecrets)://(?P<path>[^?#]+)(?:\?(?P<query>[^#]*))?(?:#/?(?P<field>.*))?$"
)
# The value is the rest of the line, stripped in code: ".*?\s*$" backtracked over a long run of
# spaces before a last character (40,000 spaces: 7.6 s for one line).
_DOTENV = re.compile(r"\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=(?P<value>.*)")
VAULT_QUERY = {"address": "address", "namespace": "namespace"}
AWS_QUERY = {"region": "region", "role_arn": "role_arn"}
AWS_SECRET_QUERY = {"version_stage": "version_stage", "version_id": "version_id"}


def _entries(path: str, text: str, data: Any) -> list[tuple[str, str, int]]:
    if isinstance(data, dict):
        from .yamlio import key_line

        return [
            (str(k), str(v), key_line(data, k) or 0)
            for k, v in data.items()
            if isinstance(v, str) and v.strip().startswith("ref+")
        ]
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _DOTENV.fullmatch(line)
        value = match.group("value").strip() if match else ""
        if match and "ref+" in value:
            found.append((match.group("name"), value.strip("'\""), number))
    return found


def read_vals(path: str, text: str, data: Any) -> tuple[list[Job], list[Note]]:
    """One job (the file) with a variable per reference."""
    notes: list[Note] = []
    job = Job(path, path, Where(path, 1))
    group: list[Secret] = []
    for name, value, line in _entries(path, text, data):
        where = Where(path, line or None)
        match = _REF.match(value.strip())
        if not match:
            notes.append(
                Note(
                    where,
                    f"{name}: {value.split('://')[0]}:// is not a vals scheme jobsecrets reads (vault, awssecrets): not carried over",
                    "error",
                )
            )
            continue
        query = dict(parse_qsl(match.group("query") or "", keep_blank_values=True))
        field = match.group("field") or None  # a JSON pointer a/b: jobsecrets reads it as is
        options: dict[str, Any] = {}
        secret_options: dict[str, Any] = {}
        if match.group("scheme") == "vault":
            backend_type, allowed = "vault", VAULT_QUERY
            secret_path = match.group("path").strip("/")
            head, sep, rest = secret_path.partition("/data/")
            if sep and head and rest and "/" not in head:
                secret_path = f"{head}/{rest}"  # the KV v2 API path: jobsecrets adds data/
            if query.get("token_env"):
                options["auth"] = {"method": "token", "token_env": query.pop("token_env")}
        else:
            backend_type, allowed = "aws", AWS_QUERY
            secret_path = match.group("path").strip("/")
            for key in AWS_SECRET_QUERY:
                if key in query:
                    secret_options[key] = query.pop(key)
        for key, option in allowed.items():
            if key in query:
                options[option] = query.pop(key)
        for key in sorted(query):
            notes.append(Note(where, f"{name}: vals parameter {key!r} not carried over"))
        group.append(
            Secret(
                name,
                Backend.of(backend_type, options),
                secret_path,
                field,
                where,
                options=secret_options,
            )
        )
    if not group and not notes:
        raise ImportError_.at(
            Where(path, 1), "no vals reference (ref+vault://, ref+awssecrets://) found"
        )
    if group:
        job.groups.append(group)
    notes.append(
        Note(
            Where(path, 1),
            "vals references: run the command with `jobsecrets run --only "
            + ",".join(s.name for s in group)
            + " -- CMD` instead of `vals exec`",
            "info",
        )
    )
    return ([job] if group else []), notes
