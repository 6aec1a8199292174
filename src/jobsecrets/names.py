"""Environment variable names: what is valid, and what would let a secret store hijack the job."""

from __future__ import annotations

__all__ = [
    "CONTROL_CHARS",
    "DENIED_NAMES",
    "DENIED_PREFIXES",
    "check_name",
    "clean_text",
    "is_denied",
    "is_identifier",
    "shown_id",
    "to_env_name",
]

import fnmatch
import re
from collections.abc import Iterable

_VALID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_identifier(name: str) -> bool:
    """True for a valid environment variable name (letters, digits, ``_``; no leading digit)."""
    return _VALID.fullmatch(name) is not None


#: C0, DEL and C1 controls: what a name or message from a store must not carry to a terminal or a
#: CI runner (some terminals start an escape sequence at \x9b, CSI, too).
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Names that change how the job's programs load code, find binaries or talk to the CI runner.
# A store (or whoever can write to it) must not be able to set them by naming a secret so.
DENIED_NAMES = frozenset(
    {
        "BASH_ENV",
        "BASHOPTS",
        "CDPATH",
        "ENV",
        "GCONV_PATH",
        "GLOBIGNORE",
        "HOME",
        "HOSTALIASES",
        "IFS",
        "JAVA_TOOL_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "_JAVA_OPTIONS",
        "LOCPATH",
        "NLSPATH",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PATH",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "PROMPT_COMMAND",
        "PS4",
        "RUBYLIB",
        "RUBYOPT",
        "SHELL",
        "SHELLOPTS",
        "SSL_CERT_DIR",
        "SSL_CERT_FILE",
        "TMPDIR",
        "ZDOTDIR",
    }
)
DENIED_PREFIXES = (
    "LD_",
    "DYLD_",
    "PYTHON",
    # PERL5DB (code run by `perl -d`) and PERL5SHELL as well as PERL5LIB/PERL5OPT: the README
    # promises PERL5*.
    "PERL5",
    "GITHUB_",
    "RUNNER_",
    "ACTIONS_",
    "CI_",
    "GITLAB_",
    "GIT_",
    "JOBSECRETS_",
    "BASH_FUNC_",
)


def is_denied(name: str, allowed: Iterable[str] = ()) -> bool:
    """True when ``name`` is on the denylist and no ``allowed`` pattern (fnmatch) lets it through."""
    upper = name.upper()
    denied = upper in DENIED_NAMES or upper.startswith(DENIED_PREFIXES)
    if not denied:
        return False
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed)


def check_name(name: object, allowed: Iterable[str] = ()) -> str | None:
    """Return a problem message for an invalid or denied variable name, or ``None`` when it is fine."""
    if not isinstance(name, str) or not _VALID.fullmatch(name):
        return (
            f"{name!r} is not a valid environment variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    if is_denied(name, allowed):
        return (
            f"variable name {name!r} is refused: it could hijack the job "
            "(list it under 'allow_names' if you really mean it)"
        )
    return None


def clean_text(text: object, limit: int = 200) -> str:
    """Text from outside (a server, a setting) fit for a message: control characters (terminal
    escapes, line breaks) made spaces, the length bounded."""
    cleaned = CONTROL_CHARS.sub(" ", str(text)).strip()
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."


def shown_id(value: object) -> str:
    """A lease id or token accessor (a store's text, or a state file's) fit for a message.

    Ids are shown so that a failed revocation can be finished by hand; they come from outside,
    and a line break in one is a workflow command in the job log (``::stop-commands::``).
    """
    return clean_text(value) or "?"


def to_env_name(text: str) -> str:
    """Turn a store name such as ``prod/payments/stripe-key`` into ``PROD_PAYMENTS_STRIPE_KEY``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).upper()
    if not name or name[0].isdigit():
        name = "_" + name
    return name
