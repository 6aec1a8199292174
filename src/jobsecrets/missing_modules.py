"""What to tell a user whose install of jobsecrets lacks a library a backend imports.

The backends import their client libraries when first used (botocore, hvac, pyjwt): an install
without one failed with ``internal error: ModuleNotFoundError``, which names neither the library
nor how to get it. The GitHub Action installs a backend type's libraries only for the types its
spec scanner reads in the spec (actions/inject/lib.js, ``specGroups``), so there the likely cause
is a spec whose ``type:`` the scanner did not read; its install is marked ``jobsecrets-action``
in the package's ``INSTALLER`` file.
"""

from __future__ import annotations

__all__ = ["ACTION_INSTALLER", "missing_module_error"]

import re

from .errors import ConfigError

#: The ``INSTALLER`` of the GitHub Action's own install (lib.js, ``installSource``).
ACTION_INSTALLER = "jobsecrets-action"

#: Top-level module: (what needs it, how ``pip`` gets it).
_PROVIDERS: dict[str, tuple[str, str]] = {
    "botocore": ("the aws backend (AWS Secrets Manager)", "pip install jobsecrets"),
    "hvac": ("the vault backend (Vault/OpenBao)", "pip install jobsecrets"),
    "jwt": ("the github backend", "pip install 'jobsecrets[github]'"),
    "cryptography": ("the github backend", "pip install 'jobsecrets[github]'"),
}

#: A module name as the import system gives it; anything else is not repeated in the message.
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _installer() -> str:
    """The ``INSTALLER`` of this jobsecrets' metadata, or ``""`` when it cannot be read."""
    try:
        from importlib.metadata import distribution

        return (distribution("jobsecrets").read_text("INSTALLER") or "").strip()
    except Exception:  # no metadata (a source checkout on PYTHONPATH): not the Action's
        return ""


def missing_module_error(error: ModuleNotFoundError, installer: str | None = None) -> ConfigError:
    """A ConfigError naming the module ``error`` says is missing, what needs it and how to
    install it; ``installer`` (default: read from the package's metadata) says whether this is
    the GitHub Action's install, whose hint is about its spec scanner."""
    name = error.name or ""
    module = name if _MODULE_NAME.fullmatch(name) and len(name) <= 100 else "?"
    top = module.partition(".")[0]
    needs, pip = _PROVIDERS.get(top, ("jobsecrets", "pip install jobsecrets"))
    message = (
        f"{needs} needs the Python module {module!r}, which this install of jobsecrets "
        "does not have"
    )
    if (_installer() if installer is None else installer) == ACTION_INSTALLER:
        hint = (
            "the GitHub Action installs a backend's libraries for the types it reads in the "
            "spec, and did not read this one: write `type: <type>` as a plain `key: value` "
            "line (no `?` explicit key, alias or escape)"
        )
        if top in ("jwt", "cryptography"):
            hint = "add `extras: github` to the Action's inputs"
    else:
        hint = f"`{pip}` installs it"
    return ConfigError(message, hint=hint)
