"""How ``export`` writes values: shell, dotenv and JSON (the CI platforms add their own formats)."""

from __future__ import annotations

__all__ = ["FORMATS", "render"]

import json
import shlex
from collections.abc import Callable, Mapping


def _shell(env: Mapping[str, str]) -> str:
    # shlex.quote makes any value one literal word: nothing in it is expanded by `eval`/`source`.
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def _dotenv_value(value: str) -> str:
    if "'" not in value and "\n" not in value and "\r" not in value:
        # Single quotes: dotenv readers do no escapes or ${} interpolation inside them.
        return f"'{value}'"
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("$", "\\$")
    )
    return f'"{escaped}"'


def _dotenv(env: Mapping[str, str]) -> str:
    return "".join(f"{name}={_dotenv_value(value)}\n" for name, value in env.items())


def _json(env: Mapping[str, str]) -> str:
    return json.dumps(dict(env), indent=2, sort_keys=True) + "\n"


FORMATS: dict[str, Callable[[Mapping[str, str]], str]] = {
    "shell": _shell,
    "dotenv": _dotenv,
    "json": _json,
}


def render(fmt: str, env: Mapping[str, str]) -> str:
    """The text of ``env`` in format ``fmt`` (one of :data:`FORMATS`)."""
    return FORMATS[fmt](env)
