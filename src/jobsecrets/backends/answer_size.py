"""How much of one answer of a store is read: the bound every backend's HTTP client keeps.

A store (or whatever answers at its address: a proxy, a hostile endpoint) that answers without
end must not grow the process until the machine's out-of-memory killer ends the job before
anything is revoked. Vault refuses requests over 32 MiB by default, and a Secrets Manager value is
at most 64 KiB: answers are far below :data:`MAX_ANSWER`. No client library is imported here.
"""

from __future__ import annotations

__all__ = ["MAX_ANSWER", "too_large"]

#: The most bytes read of one answer (as the client library reads it, before parsing).
MAX_ANSWER = 64 << 20


def too_large(limit: int) -> str:
    """What an answer past ``limit`` bytes was, for a message: ``an answer of more than 64 MiB``."""
    return f"an answer of more than {limit >> 20} MiB"
