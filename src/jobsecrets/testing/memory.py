"""An in-memory secret store and the backend over it, for fast tests of anything that uses backends.

Like httpx's ``MockTransport``, a test can hand it plain data (``MemoryStore(documents={...})``) or a
function (``MemoryStore(handler=...)``) instead of a server, then pass :meth:`MemoryStore.factory`
wherever a backend factory is taken (:class:`~jobsecrets.session.Session`,
:func:`~jobsecrets.resolver.resolve`, :func:`~jobsecrets.lifecycle.state.load_state`). The store
remembers what is alive (leases, tokens) and journals every call without values, so a test can assert
what was read, renewed and revoked. It honours the whole backend contract (it passes
:class:`~jobsecrets.testing.conformance.BackendConformance`).
"""

from __future__ import annotations

__all__ = ["MemoryBackend", "MemoryStore"]

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
from ..errors import AccessDenied, AuthError, BackendError, SecretNotFound
from ..spec.model import BackendSpec


@dataclass
class MemoryStore:
    """What the store holds and how it misbehaves; thread-safe; journals events, never values.

    ``documents``: path -> fields (a mapping) or a whole value (``str``/``bytes``). ``lease_ttl``:
    every read gets a renewable lease of that many seconds (``max_ttl`` caps renewals). ``token``:
    a login obtains a token of ours (to revoke). ``fail``/``deny``: paths whose read fails or is
    denied; ``fail_revoke``/``deny_revoke``: lease revocations that fail (store down) or are denied
    (Vault's default policy: then the token's leases end with the token, as in Vault).
    ``fail_login``: the next logins fail with this message while it is set. ``delay``: seconds each
    read takes. ``handler``: a function answering reads instead of ``documents``.
    """

    documents: dict[str, Any] = field(default_factory=dict)
    lease_ttl: int | None = None
    #: With ``lease_ttl``, only paths starting with this are leased ("": every path).
    leased_prefix: str = ""
    max_ttl: int | None = None
    token: bool = False
    fail: set[str] = field(default_factory=set)
    deny: set[str] = field(default_factory=set)
    fail_revoke: set[str] = field(default_factory=set)
    deny_revoke: bool = False
    fail_login: str = ""
    delay: float = 0.0
    #: When the static documents were last set (``None``: the store does not say).
    updated: datetime | None = None
    handler: Callable[[ReadRequest], Document] | None = None
    #: Live leases (id -> TTL) and tokens: what revocation must end.
    leases: dict[str, int] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    #: Every call, as ``{"event": ..., "backend": ..., "path"|"lease_id"|"accessor": ...}``.
    journal: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put(self, path: str, data: Any) -> None:
        """Store a document (fields or a whole value)."""
        with self._lock:
            self.documents[path] = data

    def record(self, event: str, backend: str, **details: Any) -> None:
        """Append a journal entry (never a value)."""
        with self._lock:
            self.journal.append({"event": event, "backend": backend, **details})

    def events(self, event: str) -> list[dict[str, Any]]:
        """The journal entries of one kind."""
        with self._lock:
            return [e for e in self.journal if e["event"] == event]

    def backend(
        self,
        name: str = "memory",
        options: Mapping[str, Any] | None = None,
        context: BackendContext | None = None,
    ) -> MemoryBackend:
        """A backend over this store (not signed in yet)."""
        return MemoryBackend(name, options or {}, context or BackendContext(env={}), store=self)

    def factory(self, spec: BackendSpec, context: BackendContext) -> Backend:
        """A backend factory (``resolve``/``Session``) building every backend over this store."""
        return MemoryBackend(spec.name, spec.options, context, store=self)

    def state_factory(self, name: str, type_name: str, options: dict[str, Any]) -> Backend:
        """The factory :func:`~jobsecrets.lifecycle.state.load_state` takes."""
        return MemoryBackend(name, options, BackendContext(env={}), store=self)


class MemoryBackend(Backend):
    """A backend over a :class:`MemoryStore` (the ``store`` argument, or an empty one)."""

    type_name: ClassVar[str] = "memory"
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "token": "true: login obtains a token that is revoked at the end",
        "renew_increment": "seconds asked for when renewing a lease",
    }
    SECRET_OPTIONS: ClassVar[Mapping[str, str]] = {"version": "ignored; accepted for tests"}
    SUPPORTS_PARAMS: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        context: BackendContext,
        store: MemoryStore | None = None,
    ) -> None:
        super().__init__(name, options, context)
        self.store = store if store is not None else MemoryStore()
        self._token: TokenRecord | None = None

    @classmethod
    def describe_auth(cls, options: Mapping[str, Any]) -> str:
        """In memory: no real sign-in."""
        return "memory token" if options.get("token") else "none"

    # ---- sign-in ---------------------------------------------------------------------------------

    def login(self) -> None:
        """Pretend to sign in; obtains a token when the store or the options say so."""
        self.store.record("login", self.name)
        if self.store.fail_login:
            raise AuthError(f"backend {self.name!r}: {self.store.fail_login}")
        if self.store.token or self.options.get("token"):
            token = "memory-token-" + secrets.token_hex(8)
            with self.store._lock:
                self.store.tokens.add(token)
            self._token = TokenRecord(self.name, token, "acc-" + secrets.token_hex(4), 3600, True)

    def token_record(self) -> TokenRecord | None:
        """Our token, if the login obtained one."""
        return self._token

    def renew_token(self) -> None:
        """Extend our token (journalled)."""
        if self._token is not None:
            self.store.record("renew-token", self.name, accessor=self._token.accessor)

    def resume(self, record: TokenRecord | None) -> None:
        """Reconnect in a later process, with the recorded token or by signing in again."""
        self.store.record("resume", self.name)
        if record is None:
            self.login()
        else:
            self._token = record

    def revoke_token(self, record: TokenRecord) -> None:
        """End the token (idempotent); with ``deny_revoke``, its leases end with it, as in Vault."""
        self.store.record("revoke-token", self.name, accessor=record.accessor)
        with self.store._lock:
            self.store.tokens.discard(record.token)
            if self.store.deny_revoke:
                self.store.leases.clear()
        if self._token is not None and self._token.token == record.token:
            self._token = None

    # ---- reads -----------------------------------------------------------------------------------

    def read(self, request: ReadRequest) -> Document:
        """The document at ``request.path`` (or the handler's answer)."""
        store = self.store
        store.record("read", self.name, path=request.path)
        if store.delay:
            time.sleep(store.delay)
        if request.path in store.fail:
            raise BackendError(f"{request.describe()}: the {self.type_name} store failed")
        if request.path in store.deny:
            raise AccessDenied(f"{request.describe()}: permission denied by {self.name!r}")
        if store.handler is not None:
            return store.handler(request)
        with store._lock:
            found = request.path in store.documents
            data = store.documents.get(request.path)
        if not found:
            raise SecretNotFound(f"{request.describe()}: not found in {self.name!r}")
        lease = None
        if store.lease_ttl is not None and request.path.startswith(store.leased_prefix):
            lease = Lease(
                self.name,
                f"{self.name}/{request.path}/{secrets.token_hex(4)}",
                store.lease_ttl,
                True,
                request.path,
            )
            with store._lock:
                store.leases[lease.lease_id] = lease.ttl
            store.record("lease", self.name, lease_id=lease.lease_id)
        if isinstance(data, Mapping):
            data = dict(data)
        elif not isinstance(data, bytes):
            data = str(data)
        return Document(
            data=data,
            lease=lease,
            version="1",
            updated=None if lease else store.updated,
            age_source="version created" if store.updated and not lease else "",
            dynamic=lease is not None,
        )

    def list_prefix(self, prefix: str) -> list[str]:
        """Every document path under ``prefix``."""
        with self.store._lock:
            return sorted(p for p in self.store.documents if p.startswith(prefix))

    def check_access(self, request: ReadRequest) -> AccessCheck:
        """Denied for the ``deny`` paths, missing for paths the store does not hold."""
        if request.path in self.store.deny:
            return AccessCheck(False, f"{self.type_name}: denied")
        with self.store._lock:
            missing = request.path not in self.store.documents
        if missing and self.store.handler is None:
            return AccessCheck(False, f"not found in {self.name!r}", missing=True)
        return AccessCheck(True, self.type_name)

    def metadata(self, request: ReadRequest) -> Document | None:
        """What a read would be dated with; never the value."""
        with self.store._lock:
            if request.path not in self.store.documents:
                raise SecretNotFound(f"{request.describe()}: not found in {self.name!r}")
        if self.store.lease_ttl is not None and request.path.startswith(self.store.leased_prefix):
            return Document(data={}, dynamic=True)
        updated = self.store.updated
        return Document(
            data={},
            version="1",
            updated=updated,
            age_source="version created" if updated else "",
            dynamic=False,
        )

    # ---- leases ----------------------------------------------------------------------------------

    def renew_increment(self) -> int | None:
        """``renew_increment`` from the options (seconds)."""
        value = self.options.get("renew_increment")
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

    def renew_lease(self, lease: Lease, increment: int | None = None) -> Lease:
        """Extend a lease, capped at ``max_ttl``."""
        self.store.record("renew", self.name, lease_id=lease.lease_id)
        ttl = increment or lease.ttl
        if self.store.max_ttl is not None:
            ttl = min(ttl, self.store.max_ttl)
        with self.store._lock:
            if lease.lease_id in self.store.leases:
                self.store.leases[lease.lease_id] = ttl
        return Lease(lease.backend, lease.lease_id, ttl, lease.renewable, lease.path, time.time())

    def revoke_lease(self, lease_id: str) -> None:
        """End a lease; one that is gone already is fine (idempotent)."""
        self.store.record("revoke", self.name, lease_id=lease_id)
        if lease_id in self.store.fail_revoke:
            raise BackendError(f"revoke lease {lease_id}: cannot reach the store")
        if self.store.deny_revoke:
            raise AccessDenied(f"revoke lease {lease_id}: permission denied")
        with self.store._lock:
            self.store.leases.pop(lease_id, None)
