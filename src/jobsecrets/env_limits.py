"""What an environment variable can hold, checked before ``run`` starts its command.

A value that cannot be passed makes the start fail with a message that names nothing useful
(``ValueError: embedded null byte``, or the shell's ``Argument list too long``, exit 126), or
worse, arrives changed. So ``run`` checks its variables first and names the one at fault:

- NUL: environment strings are C strings; no variable can hold one.
- Linux's ``MAX_ARG_STRLEN`` (32 pages, 128 KiB): the largest single ``NAME=value`` string
  ``execve`` accepts, whatever the total.
- ``ARG_MAX`` (``sysconf(_SC_ARG_MAX)``; on Linux a quarter of the stack limit): the whole
  argument list and environment together, each string with its NUL and its pointer.
"""

from __future__ import annotations

__all__ = ["check_child_env"]

import os
import sys
from collections.abc import Collection, Mapping, Sequence

from .errors import ValueNotExportable

#: Linux's MAX_ARG_STRLEN: 32 * PAGE_SIZE (4 KiB pages on every Linux runner).
MAX_ARG_STRLEN = 32 * 4096
_POINTER = 8


def _arg_max() -> int:
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        value = -1
    return value if value > 0 else 128 * 1024


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def check_child_env(env: Mapping[str, str], argv: Sequence[str], ours: Collection[str]) -> None:
    """Raise ValueNotExportable naming every variable of ``ours`` that ``execve`` could not pass."""
    problems = []
    for name in ours:
        value = env.get(name)
        if value is None:
            continue
        if "\x00" in value:
            problems.append(f"  - {name}: the value holds a NUL byte")
        elif (
            sys.platform.startswith("linux") and _size(name) + 1 + _size(value) + 1 > MAX_ARG_STRLEN
        ):
            problems.append(
                f"  - {name}: the value is {_size(value)} bytes; Linux passes at most "
                f"{MAX_ARG_STRLEN // 1024} KiB in one variable"
            )
    if not problems:
        total = sum(_size(k) + _size(v) + 2 + _POINTER for k, v in env.items())
        total += sum(_size(a) + 1 + _POINTER for a in argv)
        limit = _arg_max()
        if total > limit:
            largest = sorted(
                (n for n in ours if n in env), key=lambda n: _size(env[n]), reverse=True
            )[:3]
            problems.append(
                f"  - the environment and arguments take {total} bytes, more than this "
                f"system's limit ({limit} bytes); largest: {', '.join(largest) or 'none of ours'}"
            )
    if problems:
        raise ValueNotExportable(
            "cannot pass these values to the command as environment variables; "
            "the command was not started:\n" + "\n".join(problems),
            hint="use 'file: true' for these secrets: the variable then holds the path of a 0600 "
            "file with the exact value",
        )
