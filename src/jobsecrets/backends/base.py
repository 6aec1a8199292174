"""The backend interface every secret store implements, and the value types it returns.

A backend answers two questions, vals-style: "give me the document at this path" (:meth:`Backend.read`,
one read per path whatever the number of variables that name it) and "may I read it?"
(:meth:`Backend.check_access`). Everything with a lifetime it obtains (leases, its own login token) is
described by :class:`Lease` / :class:`TokenRecord` so the ledger can renew and revoke it later, possibly from
another process (``jobsecrets revoke``).

Modules that implement a backend must not import their client library (hvac, botocore) at module level:
``jobsecrets plan`` loads every backend class to validate options and must stay fast.
"""

from __future__ import annotations

__all__ = [
    "AccessCheck",
    "Backend",
    "BackendContext",
    "Document",
    "Lease",
    "ReadRequest",
    "ResultHook",
    "TokenRecord",
]

import abc
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ..errors import BackendError, ConfigError, IdentityError, JobSecretsError


@dataclass(frozen=True)
class Lease:
    """A lease on a dynamic secret. ``lease_id`` is not a secret (it cannot read the value)."""

    backend: str
    lease_id: str
    ttl: int
    renewable: bool
    path: str = ""
    obtained_at: float = field(default_factory=time.time)

    @property
    def expires_at(self) -> float:
        """Unix time at which the lease runs out unless renewed."""
        return self.obtained_at + self.ttl


@dataclass(frozen=True)
class TokenRecord:
    """A login token jobsecrets obtained and must revoke.

    ``token`` is sensitive: it is kept in memory and, for ``export``/``revoke`` across steps, in the
    0600 state file only; it is never printed. ``accessor`` is safe to show.
    """

    backend: str
    token: str = field(repr=False)
    accessor: str = ""
    ttl: int = 0
    renewable: bool = False
    obtained_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ReadRequest:
    """One read: a path and, for write-style engines, its parameters.

    ``variables`` names the variables that want this document, for error messages.
    ``options`` holds per-secret backend options (e.g. ``kv_version``, ``version_stage``).
    """

    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    variables: tuple[str, ...] = ()
    ref: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """A hashable identity: one read per key."""
        return (self.path, _freeze(self.params), _freeze(self.options))

    def describe(self) -> str:
        """A human description without any value: the variables and the reference."""
        names = ", ".join(self.variables) if self.variables else "?"
        return f"{names} ({self.ref or self.path})"


def _freeze(mapping: Mapping[str, Any]) -> str:
    return repr(sorted((str(k), repr(v)) for k, v in mapping.items()))


@dataclass(frozen=True)
class Document:
    """What one read (or one metadata lookup) returns.

    ``data`` is a mapping of fields (Vault, JSON secrets), or a ``str``/``bytes`` whole value.
    ``lease`` is set for leased (dynamic) reads. The policy rules read only the typed facts, which
    every backend fills the same way:

    - ``updated``: when the value was last set, as the store dates it (``None``: unknown), and
      ``age_source``: from what (``version created``, ``LastRotatedDate``, ...);
    - ``dynamic``: whether the engine leases; a document with a lease is always dynamic, and
      ``None`` means the backend cannot tell (see :attr:`is_dynamic`).

    ``details`` holds backend-specific facts (mount, ARN, ...) for display and debugging only: no
    module outside the backend that wrote them reads them.
    """

    data: Mapping[str, Any] | str | bytes = field(repr=False)
    lease: Lease | None = None
    version: str | None = None
    updated: datetime | None = None
    age_source: str = ""
    dynamic: bool | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_dynamic(self) -> bool:
        """True when the value comes from a leased engine (a lease exists, or the store says so)."""
        return self.lease is not None or self.dynamic is True


@dataclass(frozen=True)
class AccessCheck:
    """Whether a path may be read, found without reading its value.

    ``missing`` says the store answered "does not exist" (not "denied"): ``plan --check`` then
    leaves an optional variable out and exits 4 for a required one, as ``run`` would.
    """

    allowed: bool
    detail: str = ""
    missing: bool = False


@dataclass
class BackendContext:
    """What a backend gets from the outside world.

    ``identity`` returns the CI job's OIDC token for an audience (raises ``IdentityError``);
    ``env`` is the environment to read configuration from; ``timeout`` bounds one request;
    ``deadline`` (``time.monotonic()``) bounds the whole resolution; ``sleep`` is how a backend
    waits between retries (tests pass one that does not wait).
    ``lookup`` reads a reference of the same spec (``vault:secret/ci/github-app#pem``) for a backend
    option listed in :attr:`Backend.REFERENCE_OPTIONS`: the session reads it through its own
    backends, so their tokens and leases are in the ledger; the value is never exported.
    waits between retries (tests pass one that does not wait). ``local`` is true outside CI when
    no CI identity is configured either: a backend whose sign-in needs one may then use the
    credentials the user already has (:meth:`Backend.local_fallback`); never inside CI.
    """

    env: Mapping[str, str]
    identity: Callable[[str | None], str] | None = None
    timeout: float = 10.0
    deadline: float | None = None
    spec_dir: str = "."
    sleep: Callable[[float], None] = time.sleep
    #: Reads a backend may run at once (``settings.concurrency``): size connection pools by it.
    concurrency: int = 100
    lookup: Callable[[str], str | bytes] | None = None
    local: bool = False
    #: Told of a CI identity token fetched elsewhere (a backend's own process) for this job, so
    #: it is masked like those ``identity`` returned.
    note_identity: Callable[[str], None] | None = None

    def remaining(self) -> float:
        """Seconds left before the overall deadline (``timeout`` when there is none)."""
        if self.deadline is None:
            return self.timeout
        return max(0.1, min(self.timeout, self.deadline - time.monotonic()))


ResultHook = Callable[[ReadRequest, Document | JobSecretsError], None]
"""Called with a request and its result (a document or the error) as soon as it is read."""


class Backend(abc.ABC):
    """Base class of every backend. Subclasses are registered under the entry-point group
    ``jobsecrets.backends`` with their ``type_name`` as the entry-point name.
    """

    #: The ``type:`` value in the spec.
    type_name: ClassVar[str] = ""
    #: Backend option name -> one-line description. Unknown options are spec errors.
    OPTIONS: ClassVar[Mapping[str, str]] = {}
    #: Per-secret option name -> one-line description (long-form keys besides ref/file/optional/params).
    SECRET_OPTIONS: ClassVar[Mapping[str, str]] = {}
    #: True when ``params`` (write-style reads) are meaningful for this backend.
    SUPPORTS_PARAMS: ClassVar[bool] = False
    #: Names (``fnmatch`` patterns) this backend may export through :meth:`exported_variables`
    #: although the denylist refuses them for ordinary variables (AWS: ``AWS_*``).
    EXPORTED_NAMES: ClassVar[tuple[str, ...]] = ()
    #: Backend options whose value may be a reference to a secret of another backend of the spec
    #: (``private_key: vault:secret/ci/github-app#pem``, any string with a ``:``). The spec checks
    #: that it names a declared backend; the backend reads it with ``context.lookup``.
    REFERENCE_OPTIONS: ClassVar[frozenset[str]] = frozenset()
    #: False when a read is one whole value that a ``#field`` cannot pick from (a minted token).
    TAKES_FIELD: ClassVar[bool] = True
    #: The top-level module of the client library (``"botocore"``) of a backend that may sign in
    #: and read in a process of its own (:mod:`jobsecrets.backends.forked`): only one that leaves
    #: nothing to revoke or renew later (no lease, no token of ours). ``""``: never.
    RUNS_APART: ClassVar[str] = ""

    def __init__(self, name: str, options: Mapping[str, Any], context: BackendContext) -> None:
        self.name = name
        self.options = dict(options)
        self.context = context
        #: The store's last troubled answer, short and value-free ("503 sealed or unavailable"),
        #: set by retrying backends: the deadline's message names it.
        self.last_trouble: str | None = None

    def location(self) -> str:
        """Where the store is (an address or region), for messages; ``""`` when unknown."""
        return ""

    def recorded_options(self) -> dict[str, Any]:
        """The options a state file records, for ``revoke`` to reach this very store later.

        The spec's options, plus what this backend took from the environment to find its
        store (an address): a later step's environment may say otherwise, or nothing. Never a
        credential.
        """
        return dict(self.options)

    def identity_soon(self, audience: str | None) -> Callable[[], str]:
        """Start fetching the CI identity token for ``audience`` now; call the result for it.

        For a sign-in that needs the token after importing a client library: the token's round
        trips (the CI system's token endpoint) then overlap the import instead of following it.
        The call returns the token, or raises what fetching it raised, exactly as
        ``context.identity(audience)`` would have at that point. Check that ``context.identity``
        is set first (``IdentityError`` here otherwise).
        """
        fetch = self.context.identity
        if fetch is None:
            raise IdentityError(f"backend {self.name!r}: no CI identity is available")
        outcome: list[str | BaseException] = []

        def run() -> None:
            try:
                outcome.append(fetch(audience))
            except BaseException as error:  # handed to the caller, who raises it
                outcome.append(error)

        # A daemon: if the sign-in is abandoned (deadline, signal), a token endpoint that never
        # answers must not hold the process (the fetch has its own timeout anyway).
        thread = threading.Thread(target=run, name=f"jobsecrets-identity-{self.name}", daemon=True)
        thread.start()

        def result() -> str:
            thread.join()
            got = outcome[0]
            if isinstance(got, BaseException):
                raise got
            return got

        return result

    # ---- static description: no network, no client import -------------------------------

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        """Return problems with the backend's options (unknown keys are checked by the spec)."""
        return []

    @classmethod
    def validate_secret(cls, path: str, options: Mapping[str, Any]) -> list[str]:
        """Return problems with one secret's path and options."""
        return []

    @classmethod
    def describe_auth(cls, options: Mapping[str, Any]) -> str:
        """How this backend will sign in, for ``plan`` (e.g. ``jwt (role ci-deploy)``)."""
        return "default"

    @classmethod
    def plan_warnings(cls, options: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
        """Warnings ``plan`` shows for this backend (e.g. credentials shorter-lived than the job)."""
        return []

    @classmethod
    def describe_target(cls, options: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """Where the store is (address, region, endpoint), for ``plan``; ``""``: nothing to say."""
        return ""

    @classmethod
    def describe_credentials(
        cls, options: Mapping[str, Any], env: Mapping[str, str], local: bool
    ) -> str:
        """Where the credentials come from, for ``plan`` (a variable's or file's name, never a
        credential); ``local`` as in :class:`BackendContext`."""
        fallback = cls.local_fallback(options, env) if local else None
        return fallback or cls.describe_auth(options)

    @classmethod
    def local_fallback(cls, options: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
        """The user's own credentials used instead of a CI identity outside CI, as one line.

        ``None`` when this sign-in needs no CI identity (the default). A backend whose sign-in
        does (Vault ``jwt``, AWS ``role_arn``) says here what it uses instead when
        :attr:`BackendContext.local` is true, so a spec written for CI runs on a laptop unchanged;
        :meth:`login` then signs in that way and logs this line as a warning.
        """
        return None

    @classmethod
    def exports_credentials(cls, options: Mapping[str, Any]) -> bool:
        """True when a backend so configured hands the job variables of its own (credentials).

        Such a backend is signed in to even when no secret names it (AWS ``credentials: true``).
        """
        return False

    # ---- runtime ------------------------------------------------------------------------

    def expect_reads(self, paths: int) -> None:
        """Told before :meth:`login` how many paths resolution will read from this backend.

        At most ``paths`` (a prefix counts as one; its listing is a request too). A backend may
        open its connections ahead with it, while the sign-in still waits (default: nothing).
        Only resolution calls it: a command that reads nothing opens nothing ahead.
        """

    @abc.abstractmethod
    def login(self) -> None:
        """Sign in. Called once per backend before any read."""

    @abc.abstractmethod
    def read(self, request: ReadRequest) -> Document:
        """Read one document. Raises ``SecretNotFound``, ``AccessDenied`` or ``BackendError``."""

    def read_safely(self, request: ReadRequest) -> Document | JobSecretsError:
        """:meth:`read`, with any failure returned as the error for that request."""
        try:
            return self.read(request)
        except JobSecretsError as error:
            return error
        except Exception as error:
            # A bug or a hostile answer in one read must not lose the leases the other reads
            # obtained (the resolver records them only from a complete result list). The
            # exception's text may quote the answer: only its type is named.
            return BackendError(
                f"{request.describe()}: reading from {self.name!r} failed unexpectedly "
                f"({type(error).__name__})"
            )

    def read_many(
        self,
        requests: Sequence[ReadRequest],
        max_workers: int = 8,
        on_result: ResultHook | None = None,
    ) -> list[Document | JobSecretsError]:
        """Read several documents; the default runs :meth:`read` concurrently.

        Returns one result per request, in order: a document or the error for that request.
        ``on_result`` is called with each result as soon as it is read, on the reading thread:
        the resolver records a lease there, so a read still waiting on a slow server when the
        deadline passes cannot hold back the revocation of the leases already obtained.
        Backends with a batch API (AWS ``BatchGetSecretValue``) override this.
        """

        def one(request: ReadRequest) -> Document | JobSecretsError:
            result = self.read_safely(request)
            if on_result is not None:
                on_result(request, result)
            return result

        if len(requests) <= 1:
            return [one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(max_workers, len(requests))) as pool:
            return list(pool.map(one, requests))

    def preflight(self, requests: Sequence[ReadRequest]) -> None:
        """Refuse requests that cannot mean what they say, before any of them is read.

        Called after :meth:`login` and before :meth:`read_many` (and by ``plan --check``). May
        look at the store's layout (e.g. Vault mounts), never at a value. Raises ConfigError.
        """

    def list_prefix(self, prefix: str) -> list[str]:
        """List the secret paths under ``prefix`` (for prefix selection). Optional."""
        raise ConfigError(
            f"backend {self.name!r} ({self.type_name}) does not support prefix selection"
        )

    def check_access(self, request: ReadRequest) -> AccessCheck:
        """Say whether ``request`` may be read, without reading a value."""
        return AccessCheck(True, "not checked: this backend cannot check without reading")

    def metadata(self, request: ReadRequest) -> Document | None:
        """What is known about ``request`` without reading its value (for ``policy:``), or ``None``.

        The document has empty ``data``; ``updated``/``age_source`` say when the value was last set
        and ``dynamic`` whether the engine leases.
        """
        return None

    def dated(self, request: ReadRequest, document: Document) -> Document:
        """``document`` (a read of ``request``) with the best date the store has for it.

        Called only when a ``max_age`` rule needs the age. The default trusts the read; a store
        whose read does not say when a secret was last rotated (AWS: ``LastRotatedDate`` comes
        from DescribeSecret only) asks for it here.
        """
        return document

    def exported_variables(self) -> Mapping[str, str]:
        """Extra variables the backend itself hands to the job (e.g. short-lived AWS credentials).

        They are masked like every other value. Called after :meth:`login`.
        """
        return {}

    def identity_info(self) -> Mapping[str, Any]:
        """Non-secret facts about who we are signed in as (for ``plan --check``)."""
        return {}

    def renew_increment(self) -> int | None:
        """Seconds to ask for when renewing a lease; ``None``: the lease's own TTL."""
        return None

    def renew_lease(self, lease: Lease, increment: int | None = None) -> Lease:
        """Renew a lease and return it with its new TTL."""
        return lease

    def revoke_lease(self, lease_id: str) -> None:
        """Revoke one lease. Must succeed when the lease is already gone."""

    def renew_token(self) -> None:
        """Renew the login token jobsecrets obtained, if it is renewable."""

    def token_record(self) -> TokenRecord | None:
        """The token jobsecrets obtained (and so must revoke), or ``None`` if the user supplied it."""
        return None

    def resume(self, record: TokenRecord | None) -> None:
        """Reconnect in a later process (``jobsecrets revoke``) to renew or revoke.

        ``record`` is the token recorded by ``export``, or ``None`` when the user supplied the
        credentials (then the normal login is repeated). The default logs in again.
        """
        if record is None:
            self.login()

    def revoke_token(self, record: TokenRecord) -> None:
        """Revoke a token recorded earlier, possibly by another process. Must be idempotent."""

    def close(self) -> None:
        """Release connections. The ledger revokes; this only frees resources."""
