"""JSON from outside (a store's value or reply, a token, a state file): unreadable is ``ValueError``,
and a number keeps the text the document wrote.

``json.loads`` raises ``RecursionError``, not ``ValueError``, for a document nested deeper than the
interpreter's recursion limit lets it follow (about a thousand levels, fewer deep in a call
stack), and ``json.dumps`` does the same. A store can hold such a value (Vault's decoder takes
10,000 levels) and every caller here catches ``ValueError`` for bad JSON: without this module a
hostile value was an "internal error" of ours, not a message about the value.

Numbers: ``json.loads`` makes a Python float of ``1.50`` (written back as ``1.5``), of ``1e3``
(``1000.0``) and of ``1e400`` (``inf``, written back as ``Infinity``, which is no JSON), an int
of ``-0`` (``0``), and refuses an integer of more than 4,300 digits (Python's limit on int text).
A secret's value changed silently is data lost, so here a number that Python's int does not
write back exactly as the document did is a :class:`Number`: a float for arithmetic, holding its
text, which :func:`compact` and :func:`~jobsecrets.fields.to_text` write verbatim. An ordinary
integer (``3600``, a TTL) stays an ``int``: its text is exactly what ``str()`` writes.

``NaN``, ``Infinity`` and ``-Infinity`` are no JSON (RFC 8259), but Python's parser takes them and
a SecretString may hold them: they are kept as written too (a :class:`Number`), never refused
(a secret that worked would stop working) and never rewritten (``nan``, ``inf``).
"""

from __future__ import annotations

__all__ = ["NestedTooDeeply", "Number", "compact", "loads"]

import json
from json.encoder import encode_basestring_ascii
from typing import Any


class NestedTooDeeply(ValueError):
    """JSON nested deeper than Python follows (read or written)."""


class Number(float):
    """A JSON number read from a document, with the text it was written in (``.text``).

    Its float value serves arithmetic (a 5,000-digit integer or ``1e400`` is ``inf``, ``NaN`` a
    float nan); ``str()`` and :func:`compact` give the text, so the digits reach a variable
    exactly as stored.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> Number:
        """The number ``text`` (JSON number syntax, as the parser hands it over)."""
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Number({self.text!r})"

    def __reduce__(self) -> tuple[type[Number], tuple[str]]:
        # Pickled (the forked AWS process sends documents over a socket) with its text.
        return (Number, (self.text,))


def _integer(text: str) -> int | Number:
    if text == "-0":  # the one integer text an int does not write back (as "0")
        return Number(text)
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return Number(text)


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads`` with numbers kept as written (see the module docstring); a document nested
    too deeply is a ``ValueError`` like any bad JSON."""
    try:
        return json.loads(data, parse_float=Number, parse_int=_integer, parse_constant=Number)
    except RecursionError:
        raise NestedTooDeeply("JSON nested too deeply to read") from None


def compact(value: Any) -> str:
    """``value`` as compact JSON with sorted keys, a :class:`Number` in its own text; nested too
    deeply is a ``ValueError``.

    As ``json.dumps(value, separators=(",", ":"), sort_keys=True)`` writes it otherwise (ASCII
    only, the same escapes), which cannot be told to write a number's own text.
    """
    parts: list[str] = []
    try:
        _write(value, parts)
    except RecursionError:
        raise NestedTooDeeply("a document nested too deeply to write as JSON") from None
    return "".join(parts)


def _scalar(value: Any) -> str | None:
    """A scalar's JSON text; None for anything else."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Number):
        return value.text
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        # What json.dumps writes of a float not read from a document (allow_nan=True).
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return None


def _key(key: Any) -> str:
    if isinstance(key, str):
        return encode_basestring_ascii(key)
    if isinstance(key, (int, float)) or key is None:
        # json.dumps turns these keys into strings; bool before int (True is "true").
        return encode_basestring_ascii(_scalar(key) or "")
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _write(value: Any, parts: list[str]) -> None:
    text = _scalar(value)
    if text is not None:
        parts.append(text)
    elif isinstance(value, dict):
        parts.append("{")
        for index, (key, item) in enumerate(sorted(value.items(), key=_first)):
            parts.append(("," if index else "") + _key(key) + ":")
            _write(item, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]
