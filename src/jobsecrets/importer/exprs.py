"""GitHub ``${{ }}`` and GitLab ``$VAR`` expressions: values known only when the job runs."""

from __future__ import annotations

__all__ = ["gitlab_variable", "has_expression"]

import re

_GITLAB_VAR = re.compile(
    r"^\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))$"
)


def has_expression(text: str) -> bool:
    """True when a GitHub expression (``${{ ... }}``) is in ``text``."""
    return "${{" in text


def gitlab_variable(text: str) -> str | None:
    """``$NAME`` or ``${NAME}`` -> ``NAME``; anything else -> None."""
    match = _GITLAB_VAR.match(text.strip())
    if not match:
        return None
    return match.group("braced") or match.group("plain")
