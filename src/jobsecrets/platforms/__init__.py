"""CI systems: detection, job ids, identity token, audit context, state directory, export format.

Everything jobsecrets knows about one CI system lives in that system's module here (a
:class:`~jobsecrets.platforms.base.Platform` subclass named ``PLATFORM``); the rest of the package asks
this registry. Adding a CI system is one module and one name in :data:`PLATFORM_MODULES`.
"""

from __future__ import annotations

__all__ = [
    "PLATFORM_MODULES",
    "Platform",
    "all_platforms",
    "detect",
    "exporter",
    "job_key",
    "session_name",
    "state_base",
]

import importlib
from collections.abc import Mapping
from functools import cache

from ..errors import ConfigError
from .base import Platform

#: Modules under jobsecrets.platforms, in detection order.
PLATFORM_MODULES = ("github", "gitlab")
_LOCAL = Platform()


@cache
def all_platforms() -> tuple[Platform, ...]:
    """One instance of every CI platform, in detection order."""
    found = []
    for name in PLATFORM_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        found.append(module.PLATFORM)
    return tuple(found)


def detect(env: Mapping[str, str]) -> Platform:
    """The CI system this process runs in (its own marker variables), else the local machine."""
    for platform in all_platforms():
        if platform.detect(env):
            return platform
    return _LOCAL


def job_key(env: Mapping[str, str]) -> str:
    """Text unique to this job run across the CI systems' ids, ``""`` outside CI."""
    return "".join(platform.job_key(env) for platform in all_platforms())


def state_base(env: Mapping[str, str]) -> str:
    """The directory a job's state file belongs in: the CI system's, else the temp directory."""
    for platform in (detect(env), *all_platforms()):
        base = platform.state_base(env)
        if base:
            return base
    import tempfile  # rarely needed: not on every start

    return env.get("TMPDIR") or tempfile.gettempdir()


def session_name(env: Mapping[str, str]) -> str:
    """A name for this job as a cloud provider's audit trail shows it (AWS RoleSessionName)."""
    for platform in all_platforms():
        name = platform.session_name(env)
        if name:
            return name
    return "jobsecrets-local"


def exporter(fmt: str) -> Platform:
    """The platform that handles ``export --format fmt``."""
    for platform in all_platforms():
        if platform.export_format == fmt:
            return platform
    raise ConfigError(f"export format {fmt!r} is not available in this version")
