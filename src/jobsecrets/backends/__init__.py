"""Secret store backends: the interface and the registry fed by the ``jobsecrets.backends`` entry points."""

from __future__ import annotations

__all__ = [
    "AccessCheck",
    "Backend",
    "BackendContext",
    "Document",
    "Lease",
    "ReadRequest",
    "TokenRecord",
    "available_types",
    "get_backend_class",
]

from .base import AccessCheck, Backend, BackendContext, Document, Lease, ReadRequest, TokenRecord
from .registry import available_types, get_backend_class
