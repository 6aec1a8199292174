"""Finding the spec file when ``-c`` is not given: ``jobsecrets.yml`` or ``.yaml``, walking up.

From the working directory up to the root of the git repository it is in (the directory holding
``.git``), the first directory with either name wins; outside a repository only the working
directory is looked at, so a stray file in a parent directory (``$HOME``) is never picked up.
"""

from __future__ import annotations

__all__ = ["DEFAULT_NAMES", "find_spec"]

import os

#: The names looked for in each directory, in order.
DEFAULT_NAMES = ("jobsecrets.yml", "jobsecrets.yaml")


def find_spec(start: str | None = None) -> str:
    """The spec file for a command run in ``start`` (default: the working directory).

    Returns a path relative to ``start`` when the file is there (messages stay short), else an
    absolute one; ``jobsecrets.yml`` when nothing is found, so the "no such file" message names
    the usual file.
    """
    here = os.path.abspath(start or os.getcwd())
    top = _repository_root(here) or here
    directory = here
    while True:
        for name in DEFAULT_NAMES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return name if directory == here else candidate
        if directory == top:
            return DEFAULT_NAMES[0]
        directory = os.path.dirname(directory)


def _repository_root(directory: str) -> str | None:
    """The nearest directory at or above ``directory`` holding ``.git``, or ``None``."""
    while True:
        if os.path.exists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
