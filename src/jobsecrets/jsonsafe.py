"""JSON from outside (a store's value or reply, a token, a state file): unreadable is ``ValueError``.

``json.loads`` raises ``RecursionError``, not ``ValueError``, for a document nested deeper than the
interpreter's recursion limit lets it follow (about a thousand levels, fewer deep in a call
stack), and ``json.dumps`` does the same. A store can hold such a value (Vault's decoder takes
10,000 levels) and every caller here catches ``ValueError`` for bad JSON: without this module a
hostile value was an "internal error" of ours, not a message about the value.
"""

from __future__ import annotations

__all__ = ["NestedTooDeeply", "compact", "loads"]

import json
from typing import Any


class NestedTooDeeply(ValueError):
    """JSON nested deeper than Python follows (read or written)."""


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads``; a document nested too deeply is a ``ValueError`` like any bad JSON."""
    try:
        return json.loads(data)
    except RecursionError:
        raise NestedTooDeeply("JSON nested too deeply to read") from None


def compact(value: Any) -> str:
    """``value`` as compact JSON with sorted keys; nested too deeply is a ``ValueError``."""
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    except RecursionError:
        raise NestedTooDeeply("a document nested too deeply to write as JSON") from None
