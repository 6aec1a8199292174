"""The ``github`` backend: GitHub App installation tokens minted per job and revoked at its end.

The App's private key comes from another reference of the spec (Vault, AWS) and never reaches the job.
Importing this package imports neither ``jwt`` nor ``cryptography``: ``plan`` stays light.
"""

from __future__ import annotations

__all__ = ["GithubBackend"]

from .backend import GithubBackend
