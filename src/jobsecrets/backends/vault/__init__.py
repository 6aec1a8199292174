"""HashiCorp Vault / OpenBao: KV v1/v2, leased (dynamic) engines and write-style engines (PKI)."""

from __future__ import annotations

__all__ = ["VaultBackend"]

from .backend import VaultBackend
