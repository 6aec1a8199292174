"""Secret references: ``BACKEND:PATH[#FIELD]`` and the vals forms, parsed once into :class:`Reference`."""

from __future__ import annotations

__all__ = ["VALS_SCHEMES", "Reference", "parse_reference"]

import re
from dataclasses import dataclass

# vals scheme -> backend type it names.
VALS_SCHEMES = {"vault": "vault", "awssecrets": "aws"}

_BACKEND_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_VALS = re.compile(r"^ref\+(?P<scheme>[a-z0-9]+)://(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Reference:
    """Where one value comes from.

    ``backend`` is a backend *name* from the spec, or, for the vals form, ``None`` with
    ``backend_type`` set (the spec then picks the one backend of that type). ``field`` is
    ``None`` for the whole value.
    """

    backend: str | None
    path: str
    field: str | None
    raw: str
    backend_type: str | None = None

    def __str__(self) -> str:
        return self.raw

    @property
    def is_prefix(self) -> bool:
        """True for a prefix selection such as ``aws:prod/payments/*``."""
        return self.path.endswith("*")


def parse_reference(text: str) -> Reference:
    """Parse a reference; raises ``ValueError`` with a message that is safe to show."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a reference must be a non-empty string like 'vault:secret/app#password'")
    text = text.strip()
    match = _VALS.match(text)
    if match:
        scheme = match.group("scheme")
        if scheme not in VALS_SCHEMES:
            known = ", ".join(f"ref+{s}://" for s in sorted(VALS_SCHEMES))
            raise ValueError(f"unknown vals scheme 'ref+{scheme}://' (known: {known})")
        rest = match.group("rest")
        path, field = _split_field(rest)
        if field is not None:
            # vals writes fields as JSON pointers: '#/a/b'.
            field = field[1:] if field.startswith("/") else field
            if not field:
                field = None
        _check_path(path, text)
        return Reference(None, path, field, text, backend_type=VALS_SCHEMES[scheme])
    if ":" not in text:
        raise ValueError(
            f"reference {text!r} has no backend: write BACKEND:PATH[#FIELD], e.g. 'vault:{text}'"
        )
    backend, _, rest = text.partition(":")
    if not _BACKEND_NAME.fullmatch(backend):
        raise ValueError(f"reference {text!r}: {backend!r} is not a valid backend name")
    path, field = _split_field(rest)
    _check_path(path, text)
    if field is not None and not field.strip():
        # Caught here, not as "field '' not found" by the store after signing in.
        raise ValueError(
            f"reference {text!r} has an empty field after '#': name one, or leave out '#' "
            "for the whole value"
        )
    return Reference(backend, path, field, text)


def _split_field(rest: str) -> tuple[str, str | None]:
    if "#" not in rest:
        return rest, None
    path, _, field = rest.rpartition("#")
    return path, field


def _check_path(path: str, text: str) -> None:
    if not path or not path.strip("/"):
        raise ValueError(f"reference {text!r} has an empty path")
    if path != path.strip():
        raise ValueError(f"reference {text!r}: the path starts or ends with a space")
    if any(ord(c) < 32 for c in path):
        raise ValueError(f"reference {text!r} has a control character in its path")
    if "*" in path[:-1]:
        raise ValueError(f"reference {text!r}: '*' may only end a path (prefix selection)")
