"""No cyclic garbage collection while a command starts and resolves; back on before the job's work.

Importing hvac and boto3, building a Secrets Manager client (botocore loads its service model) and
parsing a spec allocate enough container objects to trigger some 50 collections before the first
secret is read: 40-60 ms of a 2-core runner's CPU on the critical path of ``run`` and ``export``,
for next to no garbage (what is allocated then lives until the process ends). So ``main`` pauses
collection first thing, and it resumes when resolution ends (``pipeline``) or, for a command that
resolves nothing, as soon as the command is known (``cli``); ``run`` then pumps the child's output
for as long as it runs with collection on. Reference counting frees everything else meanwhile.

Turning collection back on is not enough: the first collection after the pause would traverse
every container allocated during it (45 ms at 100 variables, after resolution and before the
child starts). So the pause ``main`` makes is ended with :func:`gc.freeze`: what exists by then
(modules, clients, the resolution) moves to the permanent generation, which collections never
traverse, and only garbage made later is looked at. The cost: a reference cycle that became garbage
during the pause is never freed; start-up makes few (measured in ``bench/scaling.py``'s peak RSS).
A pause made by :func:`paused` alone (a library calling ``pipeline`` in a longer process) only
turns collection back on.

Only a pause this module made is undone: a program that disabled collection itself keeps it off.
"""

from __future__ import annotations

__all__ = ["pause", "paused", "resume"]

import contextlib
import gc
from collections.abc import Iterator

_paused_here = False
_freeze_on_resume = False


def pause(*, freeze: bool = False) -> None:
    """Turn automatic collection off, remembering to turn it back on (no-op if already off).

    ``freeze``: the process's own start-up pause (``main``): :func:`resume` freezes what exists.
    """
    global _paused_here, _freeze_on_resume
    if gc.isenabled():
        gc.disable()
        _paused_here = True
        _freeze_on_resume = freeze


def resume() -> None:
    """Turn automatic collection back on if :func:`pause` turned it off."""
    global _paused_here
    if _paused_here:
        _paused_here = False
        if _freeze_on_resume:
            gc.freeze()
        gc.enable()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collection inside the block; on after it if it was on before it or at start-up."""
    pause()
    try:
        yield
    finally:
        resume()
