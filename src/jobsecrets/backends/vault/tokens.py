"""Where a Vault/OpenBao token the user supplies comes from, and how ``plan`` names it.

The order is the one the ``vault``/``bao`` CLIs use: the variable the spec names (default
``$VAULT_TOKEN``), then ``$BAO_TOKEN``, then the token helper file ``~/.vault-token`` that
``vault login``/``bao login`` leave behind. The file is read on the user's own machine only: on a
CI runner it belongs to whoever set the runner up, and a job must not sign in as them silently.

Nothing here returns a token except :func:`find_token`; every description names a source, never a
value.
"""

from __future__ import annotations

__all__ = [
    "HELPER_FILE",
    "MAX_TOKEN_FILE",
    "TokenSourceInfo",
    "describe_source",
    "find_token",
    "looked_in",
    "missing_hint",
    "token_variables",
]

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...safe_files import read_regular

#: The token helper file, relative to the home directory.
HELPER_FILE = ".vault-token"
#: A token file larger than this holds no token.
MAX_TOKEN_FILE = 1 << 20


@dataclass(frozen=True)
class TokenSourceInfo:
    """A token and the name of its source (``$VAULT_TOKEN``, ``~/.vault-token``)."""

    source: str
    token: str = field(repr=False)


def token_variables(auth: Mapping[str, Any]) -> tuple[str, ...]:
    """The variables looked at, in order: ``token_env`` alone when the spec names one."""
    named = auth.get("token_env")
    if named:
        return (str(named),)
    return ("VAULT_TOKEN", "BAO_TOKEN")


def _helper_path(env: Mapping[str, str]) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, HELPER_FILE)


def _helper_allowed(auth: Mapping[str, Any], local: bool) -> bool:
    # The file stands in for $VAULT_TOKEN only (as in the CLIs), and only off CI.
    return local and not auth.get("token_env")


def find_token(
    auth: Mapping[str, Any], env: Mapping[str, str], *, local: bool
) -> TokenSourceInfo | None:
    """The user's token and where it came from, or ``None`` when no source holds one."""
    for name in token_variables(auth):
        value = env.get(name, "").strip()
        if value:
            return TokenSourceInfo(f"${name}", value)
    if _helper_allowed(auth, local):
        raw = read_regular(_helper_path(env), MAX_TOKEN_FILE)
        if raw is None:
            return None
        value = raw.decode("utf-8", "replace").strip()
        if value:
            return TokenSourceInfo(f"~/{HELPER_FILE}", value)
    return None


def describe_source(auth: Mapping[str, Any], env: Mapping[str, str], *, local: bool) -> str:
    """Where the token will come from, for ``plan``; reads no token (the file: whether it exists)."""
    for name in token_variables(auth):
        if env.get(name, "").strip():
            return f"${name}"
    if _helper_allowed(auth, local) and os.path.isfile(_helper_path(env)):
        return f"~/{HELPER_FILE}"
    return f"none found (looked in {looked_in(auth, local=local)})"


def looked_in(auth: Mapping[str, Any], *, local: bool) -> str:
    """The sources looked in, for a "no token" message."""
    tried = [f"${n}" for n in token_variables(auth)]
    if _helper_allowed(auth, local):
        tried.append(f"~/{HELPER_FILE}")
    return ", ".join(tried)


def missing_hint(auth: Mapping[str, Any], local: bool) -> str:
    """What to do when no source holds a token."""
    names = " or ".join(f"${n}" for n in token_variables(auth))
    if local:
        return f"set {names}, or sign in with 'vault login' / 'bao login' (writes ~/{HELPER_FILE})"
    return (
        f"set {names} in the job, or sign in with the CI identity: auth: {{method: jwt, role: ...}} "
        f"(~/{HELPER_FILE} is not read inside CI)"
    )
