"""Every field of a document as variables: ``#*``, ``#**`` and JSON flattening.

``vault:secret/app#*`` with ``name_prefix: APP_`` makes one variable per top-level key of the
document, named ``APP_`` + the key with every character that is not a letter, digit or ``_``
turned into ``_`` and letters upper-cased (``api-key`` -> ``APP_API_KEY``). ``#**`` keeps the
key's case (``apiKey`` -> ``APP_apiKey``), as vault-action's ``**`` does. With ``flatten: true``
nested objects become one variable per leaf, keys joined with ``_`` (``{"db": {"user": ..}}``
-> ``APP_DB_USER``), as aws-secretsmanager-get-secrets' ``parse-json-secrets`` does, and, as it
does, a value that is not a JSON object is one variable named after the entry. Two keys
that end up with one name are refused, never silently merged. A name that would start with a
digit gets a leading ``_``.

Pure functions: no I/O, no spec, no resolver. Key names come from the store and are treated as
hostile (the caller checks every name against the denylist); values are never in a message.
"""

from __future__ import annotations

__all__ = ["FIELD_SETS", "FieldSetError", "is_field_set", "key_name", "select"]

import re
from collections.abc import Mapping
from typing import Any

from . import jsonsafe
from .fields import extract
from .names import CONTROL_CHARS

# The field of a reference that selects every field: upper-cased names, or the key's own case.
FIELD_SETS = ("*", "**")

_INVALID = re.compile(r"[^A-Za-z0-9_]")


class FieldSetError(ValueError):
    """The document cannot be turned into variables (not an object, or two keys share a name)."""


def is_field_set(field: str | None) -> bool:
    """True when ``field`` selects every field of the document (``*`` or ``**``)."""
    return field in FIELD_SETS


def key_name(key: str, *, keep_case: bool = False) -> str:
    """The part of a variable name a document key gives: invalid characters become ``_``."""
    name = _INVALID.sub("_", key)
    return name if keep_case else name.upper()


def _document(data: Any) -> Mapping[str, Any]:
    if isinstance(data, (str, bytes)):
        try:
            data = jsonsafe.loads(data)
        except ValueError:
            raise FieldSetError("every field was asked of a secret that is not JSON") from None
    if not isinstance(data, Mapping):
        raise FieldSetError("every field was asked of a secret that is not a JSON object")
    return data


def _shown(key: str) -> str:
    return repr(CONTROL_CHARS.sub("?", key)[:80])


def select(
    data: Any,
    field: str | None,
    *,
    name: str,
    name_prefix: str = "",
    flatten: bool = False,
) -> list[tuple[str, Any]]:
    """The (variable name, raw value) pairs a reference gives.

    An ordinary field (or none) gives ``[(name, value)]`` and may raise
    :class:`~jobsecrets.fields.FieldMissing`; ``*``/``**`` give one pair per field, named as the
    module docstring says, in the document's order.
    """
    if not is_field_set(field):
        return [(name, extract(data, field))]
    keep_case = field == "**"
    if flatten:
        try:
            document = _document(data)
        except FieldSetError:
            return [(name, data)]  # parse-json-secrets: a value that is no object keeps its name
    else:
        document = _document(data)
    pairs: list[tuple[str, Any]] = []
    origin: dict[str, str] = {}

    def walk(node: Mapping[str, Any], prefix: str, path: str) -> None:
        for key, value in node.items():
            key = str(key)
            where = f"{path}.{key}" if path else key
            if flatten and isinstance(value, Mapping):
                walk(value, prefix + key_name(key, keep_case=keep_case) + "_", where)
                continue
            var = prefix + key_name(key, keep_case=keep_case)
            if var[:1].isdigit():
                var = "_" + var
            if var in origin:
                raise FieldSetError(
                    f"keys {_shown(origin[var])} and {_shown(where)} both make the variable "
                    f"{var}: rename one in the store, or name them one by one"
                )
            origin[var] = where
            pairs.append((var, value))

    try:
        walk(document, name_prefix, "")
    except RecursionError:
        # A document the parser could follow, nested too deeply for this walk (a store's).
        raise FieldSetError("the document is nested too deeply to name its fields") from None
    return pairs
