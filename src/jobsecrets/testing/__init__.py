"""Test helpers shipped with jobsecrets: a fake backend and the conformance suite for backends."""

from __future__ import annotations

__all__ = ["BackendConformance", "FakeBackend"]

from .conformance import BackendConformance
from .fake import FakeBackend
