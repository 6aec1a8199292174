"""A fake backend for tests and demos: documents come from a JSON file, events go to a journal.

Registered as ``type: fake``. Options: ``file`` (JSON: ``{"path": {"field": "value"} | "text"}``),
``lease_ttl`` (every read gets a renewable lease of that many seconds), ``journal`` (a file where
login/read/renew/revoke events are appended as JSON lines, without values, so tests can check what
happened), ``token`` (true: the login "obtains" a token that must be revoked), ``fail`` (a list of
paths whose read fails with a BackendError), ``deny`` (paths whose read is denied), ``delay`` (seconds
every read takes, to stand for a slow store in deadline tests).
"""

from __future__ import annotations

__all__ = ["FakeBackend"]

import json
import os
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from ..backends.base import (
    AccessCheck,
    Backend,
    BackendContext,
    Document,
    Lease,
    ReadRequest,
    TokenRecord,
)
from ..errors import AccessDenied, BackendError, ConfigError, SecretNotFound


class FakeBackend(Backend):
    """An in-process store backed by a JSON file: for tests and local dry runs only."""

    type_name = "fake"
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "file": "JSON file of documents: {path: {field: value} | text}",
        "lease_ttl": "seconds: every read gets a renewable lease",
        "journal": "file where events (no values) are appended as JSON lines",
        "token": "true: login obtains a token that is revoked at the end",
        "fail": "paths whose read fails (BackendError)",
        "deny": "paths whose read is denied (AccessDenied)",
        "delay": "seconds every read takes (a slow store)",
    }
    SECRET_OPTIONS: ClassVar[Mapping[str, str]] = {"version": "ignored; accepted for tests"}
    SUPPORTS_PARAMS = True

    def __init__(self, name: str, options: Mapping[str, Any], context: BackendContext) -> None:
        super().__init__(name, options, context)
        self._lock = threading.Lock()
        self._token: TokenRecord | None = None
        self._data: dict[str, Any] | None = None

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        """Types of the options."""
        problems = []
        for key in ("file", "journal"):
            if key in options and not isinstance(options[key], str):
                problems.append(f"{key!r} must be a path")
        if "lease_ttl" in options and (
            not isinstance(options["lease_ttl"], int) or options["lease_ttl"] < 1
        ):
            problems.append("'lease_ttl' must be a positive integer")
        for key in ("fail", "deny"):
            if key in options and not isinstance(options[key], list):
                problems.append(f"{key!r} must be a list of paths")
        delay = options.get("delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            problems.append("'delay' must be a number of seconds")
        return problems

    @classmethod
    def describe_auth(cls, options: Mapping[str, Any]) -> str:
        """Fake: no real sign-in."""
        return "fake token" if options.get("token") else "none"

    def _path(self, key: str) -> str:
        return os.path.join(self.context.spec_dir, str(self.options[key]))

    def _event(self, **event: Any) -> None:
        if "journal" not in self.options:
            return
        line = json.dumps({"backend": self.name, "time": time.time(), **event}, sort_keys=True)
        with self._lock, open(self._path("journal"), "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def _documents(self) -> dict[str, Any]:
        if self._data is None:
            if "file" not in self.options:
                self._data = {}
            else:
                try:
                    with open(self._path("file"), encoding="utf-8") as handle:
                        self._data = json.load(handle)
                except (OSError, ValueError) as error:
                    raise ConfigError(
                        f"fake backend {self.name!r}: cannot load its file ({type(error).__name__})"
                    ) from None
        return self._data

    def login(self) -> None:
        """Pretend to sign in; with ``token: true`` a token is 'obtained'."""
        if self.options.get("token"):
            self._token = TokenRecord(
                self.name,
                "fake-token-" + secrets.token_hex(8),
                "acc-" + secrets.token_hex(4),
                3600,
                True,
            )
        self._event(event="login")

    def read(self, request: ReadRequest) -> Document:
        """Return the document at ``request.path``."""
        self._event(event="read", path=request.path)
        if self.options.get("delay"):
            time.sleep(float(self.options["delay"]))
        if request.path in self.options.get("fail", []):
            raise BackendError(f"{request.describe()}: the fake store failed")
        if request.path in self.options.get("deny", []):
            raise AccessDenied(f"{request.describe()}: permission denied by {self.name!r}")
        documents = self._documents()
        if request.path not in documents:
            raise SecretNotFound(f"{request.describe()}: not found in {self.name!r}")
        data = documents[request.path]
        lease = None
        if "lease_ttl" in self.options:
            lease = Lease(
                self.name,
                f"{self.name}/{request.path}/{secrets.token_hex(4)}",
                int(self.options["lease_ttl"]),
                True,
                request.path,
            )
            self._event(event="lease", lease_id=lease.lease_id)
        if isinstance(data, dict):
            return Document(data=dict(data), lease=lease, version="1")
        return Document(data=str(data), lease=lease, version="1")

    def list_prefix(self, prefix: str) -> list[str]:
        """Every document path under ``prefix``."""
        return sorted(p for p in self._documents() if p.startswith(prefix))

    def check_access(self, request: ReadRequest) -> AccessCheck:
        """Denied for the ``deny`` paths, missing for paths the store does not hold."""
        if request.path in self.options.get("deny", []):
            return AccessCheck(False, "fake: denied")
        if request.path not in self._documents():
            return AccessCheck(False, f"not found in {self.name!r}", missing=True)
        return AccessCheck(True, "fake")

    def renew_lease(self, lease: Lease, increment: int | None = None) -> Lease:
        """Renew (journalled)."""
        self._event(event="renew", lease_id=lease.lease_id)
        return Lease(
            lease.backend,
            lease.lease_id,
            increment or lease.ttl,
            lease.renewable,
            lease.path,
            time.time(),
        )

    def revoke_lease(self, lease_id: str) -> None:
        """Revoke (journalled)."""
        self._event(event="revoke", lease_id=lease_id)

    def token_record(self) -> TokenRecord | None:
        """The fake token, if ``token: true``."""
        return self._token

    def resume(self, record: TokenRecord | None) -> None:
        """Reconnect in a later process."""
        self._token = record
        self._event(event="resume")

    def revoke_token(self, record: TokenRecord) -> None:
        """Revoke the token (journalled by accessor)."""
        self._event(event="revoke-token", accessor=record.accessor)
        if self._token is not None and self._token.token == record.token:
            self._token = None
