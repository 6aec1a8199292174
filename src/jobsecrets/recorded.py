"""How a later step of the same job finds the job's values: by the variable *names* ``export`` recorded.

Values never travel in argv or a file: ``export`` (GitLab's shell lines, GitHub's ``$GITHUB_ENV``)
records in ``$JOBSECRETS_MASK_VARS`` which variables hold values and in ``$JOBSECRETS_MASK_FILE_VARS``
which hold the path of a ``file: true`` value; the ``jobsecrets redact`` filter and ``jobsecrets scan``
read them back from their own environment with the functions here.
"""

from __future__ import annotations

__all__ = [
    "FILE_VARS_ENV",
    "MIN_LINE_LENGTH_ENV",
    "REPLACEMENT_ENV",
    "VARS_ENV",
    "parse_names",
    "recorded_min_line_length",
    "recorded_names",
    "values_from_env",
]

import logging
import re
from collections.abc import Mapping

from .digits import is_digits
from .names import is_identifier
from .safe_files import read_regular

log = logging.getLogger("jobsecrets")

VARS_ENV = "JOBSECRETS_MASK_VARS"
FILE_VARS_ENV = "JOBSECRETS_MASK_FILE_VARS"
REPLACEMENT_ENV = "JOBSECRETS_MASK_REPLACEMENT"
MIN_LINE_LENGTH_ENV = "JOBSECRETS_MASK_MIN_LINE_LENGTH"

# A file: true secret bigger than this is not read into the mask list (certificates and keys are
# a few KiB, keystores and CA bundles up to a few hundred; a file of several MiB read here is
# more likely /dev/zero's kind of trouble). Past it the job is told, loudly: not masked.
_MAX_FILE_MASK = 16 << 20


def parse_names(text: str) -> list[str]:
    """Variable names from a comma- and/or whitespace-separated list; invalid ones are dropped."""
    names = []
    for item in re.split(r"[,\s]+", text.strip()):
        if item and is_identifier(item) and item not in names:
            names.append(item)
    return names


def recorded_names(env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The names ``export`` recorded in ``env``: plain variables, and ``file: true`` ones.

    Shared with ``jobsecrets scan``, which finds the job's values the same way in a later step.
    """
    return parse_names(env.get(VARS_ENV, "")), parse_names(env.get(FILE_VARS_ENV, ""))


def values_from_env(
    env: Mapping[str, str], names: list[str], file_names: list[str]
) -> tuple[list[tuple[str, str | bytes]], list[str]]:
    """``(name, value)`` for every listed variable that holds one; also the names that held nothing.

    For ``file_names`` the variable holds a path: the value is the file's contents (the path is
    not a secret).
    """
    values: list[tuple[str, str | bytes]] = []
    missing = []
    for name in names:
        value = env.get(name)
        if value:
            values.append((name, value))
        else:
            missing.append(name)
    for name in file_names:
        path = env.get(name)
        content = _file_value(path)
        if content is None:
            missing.append(name)
            if path:
                # Set but not read: its contents will show in the log. Not an info line (a
                # 1.2 MB file: true value went unmasked, with nothing said).
                log.warning(
                    "%s names no regular file of at most %d MiB that can be read: its contents "
                    "are NOT masked",
                    name,
                    _MAX_FILE_MASK >> 20,
                )
        else:
            values.append((name, content))
    return values, missing


def _file_value(path: str | None) -> bytes | None:
    """The contents of the regular file at ``path`` (at most ``_MAX_FILE_MASK`` bytes), else None.

    The path comes from the environment: a FIFO there blocked the open (the filter never
    started), a device such as /dev/zero was read without end.
    """
    return read_regular(path, _MAX_FILE_MASK) if path else None


def recorded_min_line_length(env: Mapping[str, str]) -> int | None:
    """The spec's ``min_line_length`` as ``export`` recorded it; None when not recorded."""
    raw_min = env.get(MIN_LINE_LENGTH_ENV, "").strip()
    # A text int() refuses would stop the GitLab filter before it reads the job's output.
    return int(raw_min) if is_digits(raw_min, 9) else None
