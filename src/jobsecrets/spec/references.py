"""Backend options that name a secret of another backend (``private_key: vault:secret/ci/app#pem``).

Which options may hold one is the backend class's :attr:`~jobsecrets.backends.base.Backend.REFERENCE_OPTIONS`;
a value is a reference when it is a string with a ``:``. The parser checks them, the resolver signs in
to the backends they name, and the session reads them for the backend (never as job variables).
"""

from __future__ import annotations

__all__ = ["option_references", "reference_values"]

from ..backends.registry import get_backend_class
from ..refs import Reference, parse_reference
from .model import BackendSpec


def reference_values(spec: BackendSpec) -> dict[str, str]:
    """The options of ``spec`` that hold a reference, by option name (unparsed)."""
    cls = get_backend_class(spec.type)
    return {
        key: value
        for key, value in spec.options.items()
        if key in cls.REFERENCE_OPTIONS and isinstance(value, str) and ":" in value
    }


def option_references(spec: BackendSpec) -> dict[str, Reference]:
    """The references ``spec``'s options name, parsed (the parser checked that they parse)."""
    return {key: parse_reference(value) for key, value in reference_values(spec).items()}
