"""AWS Secrets Manager, signed in with the CI identity through STS (AssumeRoleWithWebIdentity)."""

from __future__ import annotations

__all__ = ["AwsBackend"]

from .backend import AwsBackend
