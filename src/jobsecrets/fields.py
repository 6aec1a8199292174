"""Picking one field out of a document, and turning it into the text a variable holds."""

from __future__ import annotations

__all__ = ["FieldMissing", "extract", "to_text"]

import base64
from collections.abc import Mapping
from typing import Any

from . import jsonsafe
from .digits import is_digits
from .names import CONTROL_CHARS

#: How many field names a "not found" message lists, and how long each may be.
_MAX_LISTED, _MAX_NAME = 20, 40


class FieldMissing(LookupError):
    """The field is not in the document. The message names the field, never a value."""


def _lookup(data: Any, field: str) -> Any:
    """Find ``field`` in ``data``: the whole key first, then a ``/``- or ``.``-separated path."""
    if isinstance(data, Mapping) and field in data:
        return data[field]
    for separator in ("/", "."):
        if separator not in field:
            continue
        node = data
        for part in field.split(separator):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and is_digits(part) and int(part) < len(node):
                node = node[int(part)]
            else:
                break
        else:
            return node
    raise FieldMissing(f"field {field!r} not found{_existing(data)}")


def _existing(data: Any) -> str:
    """The names the document does have (names only, never a value): the fix is usually a typo.

    Names come from the store and are treated as hostile: control characters dropped, bounded.
    """
    if not isinstance(data, Mapping):
        return ""
    if not data:
        return "; the document has no fields"
    names = sorted(CONTROL_CHARS.sub("", str(key))[:_MAX_NAME] for key in data)
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return f"; the fields are {shown}{more}"


def extract(data: Mapping[str, Any] | str | bytes, field: str | None) -> Any:
    """The value of ``field`` in a document (the whole document when ``field`` is None).

    A ``str`` document is parsed as JSON when a field is asked for (AWS SecretString).
    """
    if field is None:
        return data
    if isinstance(data, bytes):
        raise FieldMissing(f"field {field!r} asked of a binary secret")
    if isinstance(data, str):
        try:
            parsed = jsonsafe.loads(data)
        except jsonsafe.NestedTooDeeply:
            raise FieldMissing(
                f"field {field!r} asked of a secret whose JSON is nested too deeply to read"
            ) from None
        except ValueError:
            raise FieldMissing(f"field {field!r} asked of a secret that is not JSON") from None
        if not isinstance(parsed, (dict, list)):
            raise FieldMissing(f"field {field!r} asked of a secret that is not a JSON object")
        data = parsed  # type: ignore[assignment]
    return _lookup(data, field)


def to_text(value: Any, encoding: str = "utf-8") -> str | bytes:
    """The variable's text: strings as they are, structures as compact JSON, bytes kept as bytes
    unless ``encoding`` is ``base64``. Bytes that are valid UTF-8 become text. A number read
    from a document is its text there (``1.50`` stays ``1.50``, in a structure too: see
    :mod:`~jobsecrets.jsonsafe`). A structure nested too deeply to write as JSON is a
    :class:`~jobsecrets.jsonsafe.NestedTooDeeply`.
    """
    if isinstance(value, bytes):
        if encoding == "base64":
            return base64.b64encode(value).decode("ascii")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if encoding == "base64":
        text = value if isinstance(value, str) else _json(value)
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, jsonsafe.Number):
        return value.text
    if isinstance(value, (int, float)):
        return str(value)
    return _json(value)


def _json(value: Any) -> str:
    return jsonsafe.compact(value)
