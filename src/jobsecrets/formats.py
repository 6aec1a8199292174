"""How ``export`` writes values: shell, dotenv, docker and JSON (CI platforms add their own formats).

Each format is written for the program that reads it, and every character a value can hold is
either carried exactly or refused, naming the variable, before anything is written:

- ``shell``: ``export NAME='...'`` for bash, dash and any POSIX sh, by ``eval`` or ``.``/``source``.
  Single quotes end every expansion; a ``'`` in the value is written ``'\\''``.
- ``dotenv``: ``NAME='...'`` with the same quoting, for ``set -a; . FILE`` in any POSIX shell
  (a newline stays inside the quotes). Readers that are not a shell (python-dotenv, compose)
  agree on values without a ``'``; a backtick or ``$`` is never expanded by either.
- ``docker``: ``NAME=value`` as ``docker run --env-file`` reads it (docker/cli ``opts/file.go``,
  ``parseKeyValueFile``): lines are split on ``\\n`` by a ``bufio.Scanner``, which also drops a
  ``\\r`` at the end of a line and refuses a line over 64 KiB; leading white space of a line is
  trimmed, lines starting with ``#`` are comments, the name ends at the first ``=`` and the rest
  of the line is the value, as it is, with no quotes or escapes. So a value with a newline, or
  ending with a carriage return, cannot be carried and is refused.
- ``json``: an object, which carries anything.

No environment can hold a NUL (C strings end there): a value with one is refused by every format
but ``json``. Nor can a lone surrogate be written as UTF-8.
"""

from __future__ import annotations

__all__ = ["FORMATS", "check_values", "render"]

import json
from collections.abc import Callable, Mapping

from .errors import ValueNotExportable

#: bufio.Scanner's default maximum token (line) size, which docker's env-file reader uses.
DOCKER_MAX_LINE = 64 * 1024


def _single_quoted(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _shell(env: Mapping[str, str]) -> str:
    # Single quotes make any value one literal word: nothing in it is expanded by `eval`/`source`.
    return "".join(f"export {name}={_single_quoted(value)}\n" for name, value in env.items())


def _dotenv(env: Mapping[str, str]) -> str:
    return "".join(f"{name}={_single_quoted(value)}\n" for name, value in env.items())


def _docker(env: Mapping[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in env.items())


def _json(env: Mapping[str, str]) -> str:
    return json.dumps(dict(env), indent=2, sort_keys=True) + "\n"


FORMATS: dict[str, Callable[[Mapping[str, str]], str]] = {
    "shell": _shell,
    "dotenv": _dotenv,
    "docker": _docker,
    "json": _json,
}


def _problem(fmt: str, name: str, value: str) -> str | None:
    """Why ``value`` cannot be carried by ``fmt`` (no value in the text), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "the value is not valid Unicode text (a lone surrogate)"
    if fmt == "json":
        return None
    if "\x00" in value:
        return "the value holds a NUL byte, which no environment variable can carry"
    if fmt == "docker":
        if "\n" in value:
            return "the value holds a newline, which docker's --env-file cannot carry"
        if value.endswith("\r"):
            return "the value ends with a carriage return, which docker's --env-file drops"
        if len(f"{name}={value}".encode()) >= DOCKER_MAX_LINE:
            return f"the line is longer than docker's --env-file limit ({DOCKER_MAX_LINE} bytes)"
    return None


def check_values(fmt: str, env: Mapping[str, str]) -> None:
    """Raise ValueNotExportable naming every variable whose value ``fmt`` cannot carry exactly."""
    problems = [
        f"  - {name}: {problem}"
        for name, value in env.items()
        if (problem := _problem(fmt, name, value)) is not None
    ]
    if problems:
        raise ValueNotExportable(
            f"--format {fmt} cannot carry {len(problems)} value(s); nothing was written:\n"
            + "\n".join(problems),
            hint="use 'file: true' for these secrets (the variable then holds the path of a "
            "0600 file with the exact value), or --format json",
        )


def render(fmt: str, env: Mapping[str, str]) -> str:
    """The text of ``env`` in format ``fmt`` (one of :data:`FORMATS`); refuses what it cannot carry."""
    check_values(fmt, env)
    return FORMATS[fmt](env)
