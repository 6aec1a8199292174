"""The ``jobsecrets`` command's entry point: collection paused before the CLI is imported.

Importing the CLI (click, the spec model, the errors) allocates enough container objects for some
23 cyclic collections, 3-4 ms of every invocation's critical path, for objects that all live until
the process ends. ``cli.main`` pauses collection first thing, but only once its module is imported;
this module pauses it before, and ``cli.main`` ends the pause as always (``_collect``).
"""

from __future__ import annotations

__all__ = ["main"]

from . import _collect


def main() -> None:
    """Console-script entry point: :func:`jobsecrets.cli.main`, imported with collection paused."""
    _collect.pause(freeze=True)
    from .cli import main as cli_main

    cli_main()
