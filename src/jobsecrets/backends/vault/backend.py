"""HashiCorp Vault and OpenBao, through hvac.

Reads: KV v2 and v1 (the mount and its version are found once per mount through
``sys/internal/ui/mounts``, or given per secret with ``mount``/``kv_version``), any other logical read
(``database/creds/ROLE``), and write-style reads with ``params`` (``pki/issue/ROLE``). Every leased answer
becomes a :class:`~jobsecrets.backends.base.Lease` for the ledger.

hvac is imported inside the methods that talk to the server, never at module level, so ``plan`` and
``--help`` stay fast.
"""

from __future__ import annotations

__all__ = ["VaultBackend"]

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from ... import unshown
from ...addresses import address_problem, header_problem, shown_address
from ...durations import parse_duration
from ...errors import (
    AccessDenied,
    AuthError,
    BackendError,
    ClaimsRefused,
    ConfigError,
    IdentityError,
    JobSecretsError,
    SecretNotFound,
    StoreUnavailable,
)
from ...jsonsafe import NestedTooDeeply
from ...names import CONTROL_CHARS
from ...safe_files import read_regular
from ..base import AccessCheck, Backend, BackendContext, Document, Lease, ReadRequest, TokenRecord
from ..retry import OutOfTime, Retrying, retry_after_seconds, within
from .answers import (
    accessor_problem,
    clean_text,
    kv_date,
    login_token_problem,
    mount_within,
    parse_time,
    seconds,
)
from .tokens import MAX_TOKEN_FILE, describe_source, find_token, looked_in, missing_hint

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import hvac

    from ..preconnect import EarlySocket

AUTH_METHODS = ("token", "approle", "jwt", "kubernetes")
AUTH_KEYS = {
    "token": {"method", "token_env"},
    "approle": {"method", "mount", "role_id_env", "secret_id_env"},
    "jwt": {"method", "mount", "role", "audience"},
    "kubernetes": {"method", "mount", "role", "token_file"},
}
#: Timeout of a revocation made after the overall deadline passed (see ``_request``).
LATE_TIMEOUT = 0.5
K8S_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


#: hvac's exception for a status -> how messages say it.
_STATUS = {
    "RateLimitExceeded": "429 rate limited",
    "VaultDown": "503 sealed or unavailable",
    "InternalServerError": "500 server error",
    "BadGateway": "502 bad gateway",
}
_REQUEST_PATH = re.compile(r'request path "[^"]*":\s*')


#: How long a resumed client waits for the connection opened early (preconnect.connect_early) to
#: be ready before its first request: a handshake a round trip or two long, with room to spare.
_EARLY_WAIT = 2.0


def _strings(value: object) -> list[str] | None:
    """``value`` if it is a list of strings (capabilities, LIST keys), else None.

    Never a string itself: ``"root" in "nonroot-read"`` is a substring test, and said "allowed".
    """
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _version_key(value: object) -> str | None:
    """A KV v2 ``current_version`` as the key of its ``versions`` map: ``""`` when there is none
    (0 or absent), None when it is no version number at all."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value == 0):
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return value if value.strip("0") else ""
    return None


#: The longest lease id taken from a store: Vault's are a path and a 24-character id, far shorter.
MAX_LEASE_ID = 1024


def _is_lease_id(value: object) -> bool:
    """A lease id we may record, renew, revoke and name in messages: text of bounded length
    without control characters (C0, DEL, C1)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_LEASE_ID
        and CONTROL_CHARS.search(value) is None
    )


def _lease_path(lease_id: str) -> str | None:
    """``lease_id`` as the rest of a ``sys/leases/revoke/...`` URL path: each segment
    percent-encoded (``?``, ``#``, ``%`` and the like are then part of the id, not of the URL);
    None when it has a segment that would change the path (``..``, ``.``, an empty one)."""
    segments = lease_id.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return None
    return "/".join(quote(segment, safe="") for segment in segments)


def _past(value: object) -> bool:
    """True for a time in the past (a KV v2 ``deletion_time``; one in the future is a
    ``delete_version_after`` schedule, and the version still exists until then)."""
    moment = parse_time(value)
    return moment is not None and moment.timestamp() <= time.time()


def _setting(
    options: Mapping[str, Any], env: Mapping[str, str], key: str, suffix: str
) -> tuple[str, str]:
    """An option, else ``$VAULT_<suffix>``, else ``$BAO_<suffix>`` (OpenBao's CLI names), with
    where it came from: messages and ``plan`` name the source of an address, not just its text."""
    if options.get(key):
        return str(options[key]), f"'{key}:' in the spec"
    for name in (f"VAULT_{suffix}", f"BAO_{suffix}"):
        if env.get(name):
            return env[name], f"${name}"
    return "", ""


_CLAIM_MISMATCH = re.compile(r'claim "([^"]+)" does not match')


def kv2_api_path_problem(path: str, mount: str, kv_version: int | None) -> str | None:
    """Why ``path`` is a KV v2 *API* path (``MOUNT/data/...``, ``MOUNT/metadata/...``), or None.

    vault-action, GitLab and the HTTP API spell KV v2 paths with ``data/``; jobsecrets adds it
    itself, so the pasted path would read ``MOUNT/data/data/...``: ``not found`` with a root
    token, ``permission denied`` (and a misleading policy hint) with a real one. Checked on
    detected or ``kv_version: 2`` mounts; an explicit ``mount:`` option means the path is literal.
    """
    if kv_version != 2 or not mount or not path.startswith(mount):
        return None
    head, _, rest = path[len(mount) :].partition("/")
    if head not in ("data", "metadata") or not rest.strip("/"):
        return None
    return (
        f"{path!r} is written as a KV v2 API path: {mount!r} is a KV version 2 mount and "
        f"jobsecrets adds '{head}/' itself (it would read {mount}data/{head}/{rest}); "
        f"write '{mount}{rest}' instead"
    )


def _explain_jwt_refusal(message: str, jwt: str, auth: Mapping[str, Any]) -> str:
    """Say which of the token's public claims the role refused: what users debug a 403 with.

    Vault names the claim (``claim "ref" does not match any associated bound claim values``) but
    not the value it got; the token's public claims are no secret, so show the one that failed.
    """
    from ...identity import public_claims, token_claims

    try:
        claims = public_claims(token_claims(jwt))
    except IdentityError:
        return ""
    lowered = message.lower()
    match = _CLAIM_MISMATCH.search(message)
    if match:
        name = match.group(1)
        if name in claims:
            return f"; the token has {name}={claims[name]!r}"
        return f"; the token has no public claim {name!r}"
    if "aud" in lowered and "audience" in lowered:
        asked = auth.get("audience") or "(the identity default)"
        return f"; the token's aud is {claims.get('aud')!r} (asked for audience {asked!r})"
    if "expired" in lowered:
        return f"; the token's exp is {claims.get('exp')!r}"
    return ""


class _Abandoned(Exception):
    """A bounded call that would start after the overall deadline: not sent at all."""


def _attempts(error: BaseException) -> str:
    # Not the exact count: variables that failed alike after 3 or 5 tries share one line.
    count = getattr(error, "jobsecrets_attempts", 1)
    return "retried until the deadline or the last attempt" if count > 1 else "not retried"


def _transport_reason(error: BaseException) -> str | None:
    """Why a request got no answer, in words, from requests'/urllib3's exception chain."""
    import requests

    if not isinstance(error, requests.exceptions.RequestException):
        return None
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "no connection within the timeout"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return "no answer within the timeout"
    text = repr(error.args[0]) if error.args else ""
    if (
        "NameResolutionError" in text
        or "Name or service not known" in text
        or "getaddrinfo" in text
    ):
        return "host name not found"
    if "ConnectionRefusedError" in text or "Connection refused" in text:
        return "connection refused"
    if "ConnectionResetError" in text or "Connection reset" in text:
        return "connection reset"
    if isinstance(error, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in text:
        return "answer cut off"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection failed"
    return None


class VaultBackend(Backend):
    """HashiCorp Vault / OpenBao."""

    type_name = "vault"
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "address": "server URL; default $VAULT_ADDR, then $BAO_ADDR",
        "namespace": "Vault Enterprise / OpenBao namespace; default $VAULT_NAMESPACE, "
        "then $BAO_NAMESPACE",
        "auth": "how to sign in: {method: token|approle|jwt|kubernetes, ...}",
        "ca_cert": "PEM CA bundle to verify the server; default $VAULT_CACERT, then $BAO_CACERT",
        "tls_skip_verify": "turn TLS verification off (never in production)",
        "renew_increment": "lease renewal increment (e.g. 5m); default: the lease's own TTL",
    }
    SECRET_OPTIONS: ClassVar[Mapping[str, str]] = {
        "kv_version": "1 or 2: skip mount detection for this secret",
        "mount": "the KV mount path, when detection is not allowed",
        "method": "force 'read' or 'write' (default: write when params are given)",
    }
    SUPPORTS_PARAMS = True

    def __init__(self, name: str, options: Mapping[str, Any], context: BackendContext) -> None:
        super().__init__(name, options, context)
        env = context.env
        self.address, self._address_source = _setting(options, env, "address", "ADDR")
        self.namespace = _setting(options, env, "namespace", "NAMESPACE")[0] or None
        #: Where the token in use came from (``$VAULT_TOKEN``, ``jwt login``...), for messages.
        self.token_source = ""
        self._token_checked: bool | None = None
        self.auth: dict[str, Any] = dict(options.get("auth") or {"method": "token"})
        self._client: hvac.Client | None = None
        self._client_lock = threading.Lock()
        self._mounts: dict[str, tuple[str, int | None]] = {}
        self._mount_flights: dict[str, threading.Lock] = {}
        # A lookup that failed (after its retries): the threads that waited for it share its
        # failure instead of each redoing it in turn (20 waiters x timeout each, past the deadline).
        self._mount_failures: dict[str, JobSecretsError] = {}
        self._retry_after = threading.local()
        #: The last transient failure seen (for the deadline message), or None.
        self._mount_lock = threading.Lock()
        self._token_record: TokenRecord | None = None
        # Paths resolution will read (expect_reads): connections to open while signing in.
        self._reads_ahead = 0
        # A connection started before requests and hvac import, in a later process (resume),
        # and once it is in the client's pool, this event.
        self._early: EarlySocket | None = None
        self._early_ready: threading.Event | None = None

    # ---- static description ----------------------------------------------------------------

    def location(self) -> str:
        """The server's address."""
        return self.address

    def recorded_options(self) -> dict[str, Any]:
        """The spec's options with the address, namespace and CA bundle found in the
        environment: ``revoke`` then goes to the server that issued the leases, whatever
        ``$VAULT_ADDR`` says by then (a GitLab ``after_script`` no longer sees what the script
        exported; another value sent our token to another server, which refused it, and that
        was taken as done)."""
        options = dict(self.options)
        env = self.context.env
        for key, suffix in (("address", "ADDR"), ("namespace", "NAMESPACE"), ("ca_cert", "CACERT")):
            value = _setting(options, env, key, suffix)[0]
            if value and not options.get(key):
                options[key] = value
        return options

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        """Check types and the auth block."""
        problems = []
        for key in ("address", "namespace", "ca_cert"):
            if key in options and not isinstance(options[key], str):
                problems.append(f"{key!r} must be a string")
        address = options.get("address")
        if isinstance(address, str) and (why := address_problem(address)):
            problems.append(f"'address': {why} (got {shown_address(address, 60)!r})")
        namespace = options.get("namespace")
        if isinstance(namespace, str) and (why := header_problem(namespace)):
            problems.append(f"'namespace': {why}")
        if "tls_skip_verify" in options and not isinstance(options["tls_skip_verify"], bool):
            problems.append("'tls_skip_verify' must be true or false")
        if "renew_increment" in options:
            try:
                parse_duration(options["renew_increment"])
            except ValueError as error:
                problems.append(f"'renew_increment': {error}")
        auth = options.get("auth", {"method": "token"})
        if not isinstance(auth, dict):
            return [*problems, "'auth' must be a mapping like {method: jwt, role: ci}"]
        method = auth.get("method", "token")
        if method not in AUTH_METHODS:
            return [*problems, f"auth method {method!r} is not one of {', '.join(AUTH_METHODS)}"]
        for key, value in auth.items():
            if key not in AUTH_KEYS[method]:
                problems.append(
                    f"auth: unknown key {key!r} for method {method} "
                    f"(known: {', '.join(sorted(AUTH_KEYS[method]))})"
                )
            elif not isinstance(value, str):
                problems.append(f"auth: {key!r} must be a string")
        if method in ("jwt", "kubernetes") and not auth.get("role"):
            problems.append(f"auth method {method} needs a 'role'")
        return problems

    @classmethod
    def validate_secret(cls, path: str, options: Mapping[str, Any]) -> list[str]:
        """Check per-secret options."""
        problems = []
        if "kv_version" in options and (
            isinstance(options["kv_version"], bool) or options["kv_version"] not in (1, 2)
        ):
            problems.append("'kv_version' must be 1 or 2")
        if "mount" in options and (
            not isinstance(options["mount"], str) or not options["mount"].strip("/")
        ):
            problems.append("'mount' must be a non-empty path")
        if isinstance(options.get("mount"), str) and not path.startswith(
            options["mount"].strip("/") + "/"
        ):
            problems.append(f"path {path!r} is not under mount {options['mount']!r}")
        if options.get("kv_version") == 2 and "mount" not in options:
            problem = kv2_api_path_problem(path, path.split("/", 1)[0] + "/", 2)
            if problem:
                problems.append(problem)
        if "method" in options and options["method"] not in ("read", "write"):
            problems.append("'method' must be 'read' or 'write'")
        if path.endswith("*"):
            problems.append("prefix selection ('*') is not supported by the vault backend")
        if any(part in (".", "..") for part in path.split("/")):
            # The server resolves them, so plan, policy and audit would name another path
            # than the one read (secret/x/../app reads secret/app).
            problems.append(f"path {path!r} has a '.' or '..' segment: write the path it means")
        return problems

    @classmethod
    def describe_target(cls, options: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """``address https://... ($VAULT_ADDR)``, with the namespace when there is one."""
        address, source = _setting(options, env, "address", "ADDR")
        if not address:
            return "no address (set 'address:' or $VAULT_ADDR)"
        namespace, ns_source = _setting(options, env, "namespace", "NAMESPACE")
        text = f"address {shown_address(address)} ({source})"
        return text + (
            f", namespace {clean_text(namespace, 100)} ({ns_source})" if namespace else ""
        )

    @classmethod
    def describe_credentials(
        cls, options: Mapping[str, Any], env: Mapping[str, str], local: bool
    ) -> str:
        """The user's token source for ``token`` (and the local fallback), else the login."""
        auth = options.get("auth") or {"method": "token"}
        if auth.get("method", "token") == "token":
            return f"token from {describe_source(auth, env, local=local)}"
        return super().describe_credentials(options, env, local)

    @classmethod
    def local_fallback(cls, options: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
        """``jwt`` needs a CI identity: off CI, the user's own token (as ``vault``/``bao`` find it)."""
        auth = options.get("auth") or {"method": "token"}
        if auth.get("method") != "jwt":
            return None
        source = describe_source({}, env, local=True)
        return f"token from {source} instead of jwt login (local run: no CI identity)"

    @classmethod
    def describe_auth(cls, options: Mapping[str, Any]) -> str:
        """``jwt (role ci, mount jwt)`` and the like."""
        auth = options.get("auth") or {"method": "token"}
        method = auth.get("method", "token")
        if method == "token":
            # Where the token really comes from is plan's "credentials:" line.
            return f"token (${auth.get('token_env', 'VAULT_TOKEN')})"
        if method == "approle":
            return (
                f"approle (${auth.get('role_id_env', 'VAULT_ROLE_ID')}, "
                f"${auth.get('secret_id_env', 'VAULT_SECRET_ID')})"
            )
        mount = auth.get("mount", method)
        return f"{method} (role {auth.get('role')}, mount {mount})"

    # ---- client ------------------------------------------------------------------------------

    def _verify(self) -> bool | str:
        if self.options.get("tls_skip_verify"):
            return False
        ca = _setting(self.options, self.context.env, "ca_cert", "CACERT")[0]
        if ca:
            ca = os.path.join(self.context.spec_dir, os.path.expanduser(str(ca)))
            # A file, or a directory of hashed certificates (requests takes both); a FIFO named
            # here blocked the first connection for good, so nothing else is handed on.
            if not (os.path.isfile(ca) or os.path.isdir(ca)):
                raise ConfigError(
                    f"backend {self.name!r}: CA bundle not found (or not a regular file): {ca}"
                )
            return ca
        return True

    def _new_client(self, token: str | None = None) -> hvac.Client:
        # requests first, hvac last: the connections opened ahead (below) need only requests,
        # and connect while hvac's own modules import (~70 ms of CPU on a 2-core runner), so
        # the sign-in goes out on an open connection: one round trip instead of two.
        import requests
        import requests.adapters

        if not self.address:
            raise ConfigError(
                f"backend {self.name!r}: no Vault address",
                hint="set 'address:' in the spec or VAULT_ADDR",
            )
        why = address_problem(self.address)
        if why:
            # The spec's address is checked at plan time; one from the environment only here.
            raise ConfigError(
                f"backend {self.name!r}: the Vault address from {self._address_source}: {why} "
                f"(got {shown_address(self.address, 60)!r})",
                hint="e.g. VAULT_ADDR=https://vault.example.com:8200",
            )
        if self.namespace and (why := header_problem(self.namespace)):
            raise ConfigError(f"backend {self.name!r}: the Vault namespace: {why}")
        # What requests would take from the environment on every request (a proxy for this
        # address unless $NO_PROXY says otherwise, $REQUESTS_CA_BUNDLE when verifying), taken
        # once: with trust_env, each request walks the whole environment twice and looks for a
        # ~/.netrc, ~0.2 ms of CPU per read (0.5 s at 2,500 reads). A ~/.netrc login is not sent:
        # Vault signs requests with its token header.
        settings = requests.Session().merge_environment_settings(
            self.address, {}, None, self._verify(), None
        )
        # One pooled session for every read: resolution runs many reads at once on one connection pool.
        from .bounded import BoundedAdapter

        adapter = BoundedAdapter(pool_connections=4, pool_maxsize=max(4, self.context.concurrency))
        early, self._early = self._early, None
        if self._reads_ahead or early is not None:
            # + the sign-in's (or, resumed, the revocation's or renewal's)
            self._early_ready = self._open_ahead(adapter, settings, self._reads_ahead + 1, early)
            self._reads_ahead = 0
        import hvac

        from .adapter import ExactJSONAdapter
        from .session import SameOriginSession

        # Redirects on the same origin only: the token and a login body never go elsewhere.
        session = SameOriginSession()
        # What hvac sets on the session it makes itself (it takes a given session's over its own).
        session.verify = settings["verify"]
        session.proxies = dict(settings["proxies"] or {})
        client = hvac.Client(
            url=self.address,
            token=token,
            verify=settings["verify"],
            proxies=settings["proxies"] or None,
            namespace=self.namespace,
            timeout=self.context.timeout,
            session=session,
            # Answers parsed with each number as the store wrote it (1.50 stays 1.50).
            adapter=ExactJSONAdapter,
        )
        client.adapter.session.trust_env = False
        client.adapter.session.mount("https://", adapter)
        client.adapter.session.mount("http://", adapter)
        # hvac's exceptions drop the headers: keep the last Retry-After of this thread's call.
        client.adapter.session.hooks["response"].append(self._note_retry_after)
        return client

    def expect_reads(self, paths: int) -> None:
        """Remember how many reads follow: the client opens that many connections ahead."""
        self._reads_ahead = max(0, paths)

    def _open_ahead(
        self,
        adapter: Any,
        settings: Mapping[str, Any],
        count: int,
        early: EarlySocket | None = None,
    ) -> threading.Event | None:
        """Open ``count`` connections to the server in the pool ``adapter`` will send with.

        While the client waits for its identity token, sign-in and mount lookup, so the reads
        start on open connections (jobsecrets.backends.preconnect). Not through a proxy: its
        connections would be the proxy's, tunnelled or not, and a proxy may want a word first.
        """
        import requests
        from requests.utils import select_proxy

        from ..preconnect import open_ahead

        pool = None
        choose = getattr(adapter, "get_connection_with_tls_context", None)
        # Not through a proxy; nor with requests < 2.32.2: no public way to the pool a request
        # will use.
        if not select_proxy(self.address, settings["proxies"] or {}) and choose is not None:
            with contextlib.suppress(Exception):  # e.g. a CA bundle that cannot be read: the
                # first request says so. The pool hvac's requests take their connections from:
                # same TLS settings and key.
                pool = choose(
                    requests.Request("GET", self.address).prepare(), settings["verify"], None, None
                )
        if pool is None:
            if early is not None:
                early.discard()
            return None
        return open_ahead(pool, count, self.context.timeout, early)

    def _note_retry_after(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._retry_after.value = response.headers.get("Retry-After")

    def _transient(self, safe: bool) -> Any:
        """The retry rule of :mod:`.retry` for hvac/requests errors (``safe``: may repeat)."""
        import hvac.exceptions
        import requests

        def transient(error: BaseException) -> float | None:
            # What the store last did wrong: the deadline message names it (a sealed store
            # retried until the deadline is still a sealed store).
            self.last_trouble = _STATUS.get(type(error).__name__) or _transport_reason(error)
            if isinstance(error, (hvac.exceptions.RateLimitExceeded, hvac.exceptions.VaultDown)):
                return retry_after_seconds(getattr(self._retry_after, "value", None)) or 0.0
            if isinstance(error, requests.exceptions.SSLError):
                return None
            reason = _transport_reason(error)
            if reason == "connection refused":
                return 0.0  # nothing was sent: always safe to repeat
            if not safe or reason == "host name not found":
                return None
            if reason is not None or isinstance(
                error, (hvac.exceptions.InternalServerError, hvac.exceptions.BadGateway)
            ):
                return 0.0
            return None

        return transient

    @property
    def client(self) -> hvac.Client:
        """The signed-in client (``login`` first)."""
        if self._client is None:
            raise BackendError(f"backend {self.name!r} is not signed in")
        return self._client

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        safe: bool = False,
        bounded: bool = True,
        **kwargs: Any,
    ) -> Any:
        """One API call with hvac's errors mapped onto ours; ``what`` names it in messages.

        Transient failures are retried (:mod:`.retry`); ``safe`` says the call may be repeated
        after a reset or a 500 (it creates nothing). ``bounded`` calls (sign-in, reads) stop at
        the overall deadline: each attempt's timeout is what is left of it, and none starts
        after it. Revocation is not bounded: it must still run once the deadline gave up.
        """
        import hvac.exceptions
        import requests

        from ...redirects import RedirectRefused
        from .bounded import AnswerTooLarge

        client = self.client
        # The token in use (the user's, or our login's once signed in): a store's error text
        # may quote it, and the CLI masks whatever is remembered in what it prints.
        unshown.remember(client.token)
        started = time.monotonic()
        deadline = self.context.deadline if bounded else None
        # Revoking once the deadline has passed (the job is failing on a slow store): one short
        # attempt, so the process still ends within the deadline plus a second. What it cannot
        # revoke is reported, and stays in the state file for `jobsecrets revoke`.
        late = (
            not bounded
            and self.context.deadline is not None
            and time.monotonic() >= self.context.deadline
        )

        def call() -> Any:
            if deadline is not None and time.monotonic() >= deadline:
                raise _Abandoned()
            if late:
                timeout = LATE_TIMEOUT
            else:
                timeout = self.context.remaining() if bounded else self.context.timeout
            self._retry_after.value = None
            url = f"/v1/{path.lstrip('/')}"
            if bounded:
                # Reads and sign-in: the resolver stops waiting at the deadline by itself.
                return client.adapter.request(method, url, timeout=timeout, **kwargs)
            # Revocation and renewal: a wall-clock bound too, so a slow drip cannot hold the
            # end of the job (a socket timeout is per read, a drip never trips it).
            return within(
                timeout * 2,
                lambda: client.adapter.request(method, url, timeout=timeout, **kwargs),
            )

        try:
            # Reads: up to 10 attempts, the deadline bounds them. Revocation and renewal (no
            # deadline): 3, so a store that is down does not hold the job's end for long.
            attempts = 1 if late else (10 if bounded else 3)
            retrying = Retrying(self._transient(safe), deadline, max_attempts=attempts)
            return retrying(call)
        except _Abandoned:
            raise StoreUnavailable.about(what, "abandoned: the overall deadline passed") from None
        except hvac.exceptions.InvalidPath:
            raise SecretNotFound.about(what, f"not found in {self.name!r}") from None
        except hvac.exceptions.Forbidden as error:
            raise AccessDenied.about(
                what,
                f"permission denied by {self.name!r} ({self._errors(error)})",
                hint="check the policies attached to the role jobsecrets signs in with",
            ) from None
        except hvac.exceptions.InvalidRequest as error:
            raise BackendError.about(
                what, f"rejected by {self.name!r}: {self._errors(error)}"
            ) from None
        except (
            hvac.exceptions.RateLimitExceeded,
            hvac.exceptions.VaultDown,
            hvac.exceptions.InternalServerError,
            hvac.exceptions.BadGateway,
            hvac.exceptions.UnexpectedError,
        ) as error:
            status = _STATUS.get(type(error).__name__, "an unexpected error")
            # Without the path the server names, so one cause groups every variable it hit.
            detail = _REQUEST_PATH.sub("", self._errors(error))
            raise StoreUnavailable.about(
                what,
                f"{shown_address(self.address)} answered {status} ({detail}; {_attempts(error)})",
                hint=self._down_hint(),
            ) from None
        except hvac.exceptions.VaultError as error:
            raise BackendError.about(what, f"{self.name!r} failed: {self._errors(error)}") from None
        except requests.exceptions.SSLError:
            raise BackendError.about(
                what,
                f"TLS verification of {shown_address(self.address)} failed",
                hint="set 'ca_cert:' (or VAULT_CACERT) to the CA bundle that signed the server",
            ) from None
        except OutOfTime as error:
            raise StoreUnavailable.about(
                what, f"cannot reach {shown_address(self.address)}: {error}", hint=self._down_hint()
            ) from None
        except RedirectRefused as error:
            # Not followed: the token (and a login's secret_id or identity token) is meant for
            # this address only. Exit 6 like an answer the store should not have given.
            raise StoreUnavailable.about(
                what,
                f"{shown_address(self.address)} redirected the request to {error.target}, "
                "another origin: not followed (the token and sign-in are sent to the "
                "configured address only)",
                hint="set the address to the server that answers itself (for a Vault "
                "cluster, one that forwards requests to the active node, or the active node)",
            ) from None
        except (RecursionError, NestedTooDeeply):
            # The adapter parses the answer: JSON nested deeper than Python follows (a KV value
            # may be: Vault's own decoder takes 10,000 levels) is the store's answer, not our bug.
            raise BackendError.about(
                what, f"{self.name!r} answered with JSON nested too deeply to read"
            ) from None
        except AnswerTooLarge as error:
            raise BackendError.about(
                what, f"{shown_address(self.address)} sent {error}: not read"
            ) from None
        except requests.exceptions.RequestException as error:
            reason = _transport_reason(error) or type(error).__name__
            raise StoreUnavailable.about(
                what,
                f"cannot reach {shown_address(self.address)}: {reason} ({_attempts(error)})",
                hint=self._down_hint(),
            ) from None

        finally:
            # The path and the time only: parameters (a body) and answers are never logged.
            log.debug(
                "backend %r: %s /v1/%s (%.0f ms)",
                self.name,
                method,
                path.lstrip("/"),
                (time.monotonic() - started) * 1000,
                extra=unshown.PLAIN,
            )

    def _malformed(self, what: str, why: str) -> JobSecretsError:
        """An answer of a shape the API never has (a proxy, a plugin, a hostile store): the
        store's failure (exit 6, as an answer nested too deeply), never an internal error, and
        never read as "allowed" or "exists"."""
        return BackendError.about(what, f"{self.name!r} sent a malformed answer ({why})")

    def _down_hint(self) -> str:
        return (
            f"the store at {shown_address(self.address)} is down, sealed, rate-limiting or unreachable: check "
            "it (bao status / vault status) and run the job again; if it is only slow, raise "
            "'settings: {deadline: ...}'"
        )

    @staticmethod
    def _errors(error: Exception) -> str:
        errors = getattr(error, "errors", None)
        if isinstance(errors, list) and errors:
            return clean_text("; ".join(str(e) for e in errors))
        return type(error).__name__

    # ---- login ---------------------------------------------------------------------------------

    def login(self) -> None:
        """Sign in with the configured method; only tokens obtained here are later revoked."""
        with self._client_lock:
            if self._client is not None:
                return
            method = self.auth.get("method", "token")
            fallback = self.local_fallback(self.options, self.context.env)
            if self.context.local and fallback:
                # A CI spec run on a laptop: the user's own token instead of a CI identity.
                log.warning("backend %r: %s", self.name, fallback)
                method = "token"
            if method == "token":
                token = self._user_token()
                self._client = self._new_client(token)
                log.debug("backend %r: token from %s", self.name, self.token_source)
                return
            # The CI identity token's round trips overlap hvac's import (in _new_client).
            identity = (
                self.identity_soon(self.auth.get("audience"))
                if method == "jwt" and self.context.identity is not None
                else None
            )
            self._client = self._new_client()
            try:
                if method == "approle":
                    payload = {
                        "role_id": self._env_required(
                            self.auth.get("role_id_env", "VAULT_ROLE_ID")
                        ),
                        "secret_id": self._env_required(
                            self.auth.get("secret_id_env", "VAULT_SECRET_ID")
                        ),
                    }
                elif method == "jwt":
                    if identity is None:
                        raise IdentityError("no CI identity is available for jwt login")
                    payload = {"role": self.auth["role"], "jwt": identity()}
                else:
                    payload = {"role": self.auth["role"], "jwt": self._k8s_token()}
                mount = str(self.auth.get("mount", method)).strip("/")
                try:
                    answer = self._request(
                        "POST", f"auth/{mount}/login", what=f"login ({method})", json=payload
                    )
                except StoreUnavailable as error:
                    # Not a refusal: the store could not answer. Exit 6, not 3 with a hint
                    # about bound claims that has nothing to do with it.
                    self._client = None
                    raise StoreUnavailable.about(
                        f"backend {self.name!r}: {method} login", error.cause, hint=error.hint
                    ) from None
                except (AccessDenied, BackendError, SecretNotFound) as error:
                    self._client = None
                    detail = (
                        _explain_jwt_refusal(error.message, payload["jwt"], self.auth)
                        if method == "jwt"
                        else ""
                    )
                    # A refused jwt login is a claims mismatch until shown otherwise.
                    refused = ClaimsRefused if method == "jwt" else AuthError
                    raise refused(
                        f"backend {self.name!r}: {method} login failed (role "
                        f"{payload.get('role', '?')!r}, mount {mount!r}): {error.message}{detail}",
                        hint=self._login_hint(method),
                    ) from None
                auth = answer.get("auth") if isinstance(answer, dict) else None
                if not isinstance(auth, dict) or not auth.get("client_token"):
                    self._client = None
                    raise AuthError(f"backend {self.name!r}: {method} login returned no token")
                token, accessor = auth["client_token"], auth.get("accessor")
                why = login_token_problem(token)
                if why is None and (why := accessor_problem(accessor)):
                    # The token works: end it now, as nothing will record it for the job's end.
                    self._revoke_unrecorded(token)
                    why = f"its accessor: {why}"
                if why:
                    self._client = None
                    # Said without the token (or the accessor): the store's answer is hostile
                    # or broken, and the token a credential however wrong.
                    raise AuthError(
                        f"backend {self.name!r}: {method} login returned an unusable token ({why})",
                        hint="the store (or a proxy before it) answered the login with "
                        "something no Vault/OpenBao sends: check the address",
                    )
                self._client.token = token
                self.token_source = f"{method} login (mount {mount!r})"
                log.debug("backend %r: signed in through auth/%s/login", self.name, mount)
                self._token_record = TokenRecord(
                    backend=self.name,
                    token=token,
                    accessor=accessor or "",
                    ttl=seconds(auth.get("lease_duration")),
                    renewable=bool(auth.get("renewable")),
                )
            except BaseException:
                # Half signed in (no credentials, no identity, a signal): a later login() must
                # start over instead of returning early with a client that holds no token.
                if self._token_record is None:
                    self._client = None
                raise

    def _revoke_unrecorded(self, token: str) -> None:
        """Best effort ``revoke-self`` of a login token the job refuses to use (and so never
        records), within the job's deadline; a failure leaves it to expire with its TTL."""
        client = self.client
        client.token = token
        try:
            with contextlib.suppress(JobSecretsError):
                self._request(
                    "POST", "auth/token/revoke-self", what="token revocation", safe=True, json={}
                )
        finally:
            client.token = None

    @staticmethod
    def _login_hint(method: str) -> str:
        if method == "jwt":
            return (
                "run 'jobsecrets plan --check' to see the token's claims; the Vault role's "
                "bound_claims/bound_audiences must match them"
            )
        return "check the role and its credentials"

    def _env_required(self, name: str) -> str:
        value = self.context.env.get(name)
        if not value:
            raise AuthError(f"backend {self.name!r}: ${name} is not set")
        unshown.remember(value)  # an approle secret id: a refused login may quote it
        return value

    def _user_token(self) -> str:
        # `token_env` applies to method token only; the jwt fallback looks where the CLIs look.
        auth = self.auth if self.auth.get("method", "token") == "token" else {}
        found = find_token(auth, self.context.env, local=self.context.local)
        if found is None:
            tried = looked_in(auth, local=self.context.local)
            raise AuthError(
                f"backend {self.name!r}: no token found (looked in {tried})",
                hint=missing_hint(auth, self.context.local),
            )
        self.token_source = found.source
        why = header_problem(found.token)
        if why:
            # Said without the token: it is a credential, however wrong.
            raise AuthError(f"backend {self.name!r}: the token from {found.source}: {why}")
        return found.token

    def _invalid_token(self, error: AccessDenied) -> JobSecretsError:
        """A 403 because the token itself is invalid or expired is a sign-in failure (exit 3),
        not a policy problem: ``lookup-self`` (allowed to every valid token) tells them apart."""
        if self._token_checked is None:
            try:
                self._request("GET", "auth/token/lookup-self", what="token lookup")
                self._token_checked = True
            except AccessDenied:
                self._token_checked = False
            except JobSecretsError:
                return error
        if self._token_checked:
            return error
        user_token = self.token_source.startswith(("$", "~"))
        return AuthError(
            f"backend {self.name!r}: the token from {self.token_source or 'the login'} is "
            "invalid or expired",
            hint="sign in again ('vault login' / 'bao login') or set a valid token"
            if user_token
            else "its login token expired: run the job again, or raise the role's token_ttl",
        )

    def _k8s_token(self) -> str:
        path = str(self.auth.get("token_file", K8S_TOKEN_FILE))
        # Bounded and non-blocking: the spec names the file (a FIFO or /dev/zero must not hang).
        raw = read_regular(path, MAX_TOKEN_FILE)
        if raw is None:
            raise AuthError(
                f"backend {self.name!r}: cannot read the service-account token {path} "
                "(missing, unreadable, not a regular file or too big)"
            )
        token = raw.decode("utf-8", "replace").strip()
        unshown.remember(token)  # a credential: a refused login may quote it
        return token

    # ---- reads ------------------------------------------------------------------------------------

    def _mount_of(self, path: str, options: Mapping[str, Any]) -> tuple[str, int | None]:
        """(mount path with trailing '/', KV version or None for other engines)."""
        if "mount" in options:
            mount = str(options["mount"]).strip("/") + "/"
            given = options.get("kv_version")
            return mount, int(given) if given is not None else 2
        if "kv_version" in options:
            # A version with no mount: the first path segment is the mount.
            return path.split("/", 1)[0] + "/", int(options["kv_version"])
        cached = self._cached_mount(path)
        if cached is not None:
            return cached
        # Single flight per first segment: 50 concurrent first reads under `secret/` cost one
        # lookup round trip, not 50 (the others wait, then find the answer in the cache).
        with self._mount_lock:
            flight = self._mount_flights.setdefault(path.split("/", 1)[0], threading.Lock())
        segment = path.split("/", 1)[0]
        with flight:
            cached = self._cached_mount(path)
            if cached is not None:
                return cached
            failed = self._mount_failures.get(segment)
            if failed is not None:
                raise failed
            try:
                return self._lookup_mount(path)
            except JobSecretsError as error:
                self._mount_failures[segment] = error
                raise

    def _cached_mount(self, path: str) -> tuple[str, int | None] | None:
        with self._mount_lock:
            for mount, answer in self._mounts.items():
                if path.startswith(mount):
                    return answer
        return None

    def _lookup_mount(self, path: str) -> tuple[str, int | None]:
        try:
            reply = self._request(
                "GET", f"sys/internal/ui/mounts/{path}", what=f"mount lookup of {path!r}", safe=True
            )
        except (AccessDenied, SecretNotFound):
            # Not allowed to look, or no such mount: treat as a plain logical read.
            return "", None
        what = f"mount lookup of {path!r}"
        data = reply.get("data", {}) if isinstance(reply, dict) else {}
        if not isinstance(data, dict):
            raise self._malformed(what, "no 'data' mapping")
        mount, options = data.get("path") or "", data.get("options") or {}
        if not isinstance(mount, str) or not isinstance(options, dict):
            raise self._malformed(what, "a mount path that is no text, or options no mapping")
        if mount:
            within = mount_within(path, mount, self.namespace)
            if within is None:
                # Reading MOUNT/data/REST would read another path than the spec names.
                raise self._malformed(
                    what, f"it names mount {clean_text(mount, 80)!r}, which the path is not under"
                )
            mount = within
        version: int | None = None
        if data.get("type") in ("kv", "generic"):
            version = 2 if str(options.get("version", "1")) == "2" else 1
        answer = (mount, version)
        log.debug(
            "backend %r: %r is under mount %r (%s)",
            self.name,
            path,
            mount or "(none found)",
            f"KV v{version}" if version else f"engine {data.get('type') or 'unknown'}",
        )
        if mount:
            with self._mount_lock:
                self._mounts[mount] = answer
        return answer

    def preflight(self, requests: Sequence[ReadRequest]) -> None:
        """Refuse KV v2 API paths (``secret/data/app``) before anything is read: exit 2."""
        problems = []
        for request in requests:
            problem = self._api_path_problem(request)
            if problem:
                problems.append(f"{', '.join(request.variables) or request.ref}: {problem}")
        if problems:
            raise ConfigError(
                "KV v2 path written with 'data/' or 'metadata/'; nothing was read:\n"
                + "\n".join(f"  - {p}" for p in problems),
                hint="KV v2 references name the secret's own path (vault:secret/app#field), as "
                "`vault kv get secret/app` does",
            )

    def _api_path_problem(self, request: ReadRequest) -> str | None:
        if "mount" in request.options:
            return None  # an explicit mount: the path under it is taken literally
        mount, kv_version = self._mount_of(request.path, request.options)
        return kv2_api_path_problem(request.path, mount, kv_version)

    def read(self, request: ReadRequest) -> Document:
        """One read of one path, whatever the number of fields wanted from it."""
        try:
            return self._read(request)
        except AccessDenied as error:
            raise self._invalid_token(error) from None

    def _read(self, request: ReadRequest) -> Document:
        what = request.describe()
        problem = self._api_path_problem(request)
        if problem:  # callers run preflight() first; this keeps a direct read() honest too
            raise ConfigError(f"{what}: {problem}")
        try:
            mount, kv_version = self._mount_of(request.path, request.options)
        except JobSecretsError as error:
            # The lookup (maybe another variable's) failed: say so about this variable.
            raise type(error).about(what, error.cause or error.message, hint=error.hint) from None
        method = request.options.get("method") or ("write" if request.params else "read")
        if kv_version == 2:
            rest = request.path[len(mount) :]
            reply = self._request("GET", f"{mount}data/{rest}", what=what, safe=True)
            body = reply.get("data") if isinstance(reply, dict) else None
            if not isinstance(body, dict) or body.get("data") is None:
                # A deleted or destroyed latest version answers 404-like with metadata only.
                raise SecretNotFound(f"{what}: no current version in {self.name!r}")
            meta = body.get("metadata") or {}
            if not isinstance(body["data"], dict) or not isinstance(meta, dict):
                raise self._malformed(what, "a KV v2 answer whose data or metadata is no mapping")
            updated, source = kv_date(meta.get("created_time"), meta.get("custom_metadata"))
            return Document(
                data=dict(body["data"]),
                version=_version_key(meta.get("version")) or None,
                updated=updated,
                age_source=source,
                dynamic=False,
                details={"kv_version": 2, "mount": mount},
            )
        if method == "write":
            reply = self._request("POST", request.path, what=what, json=dict(request.params))
        else:
            # A plain read may lease (database/creds): repeated only when nothing was sent.
            reply = self._request("GET", request.path, what=what, safe=kv_version == 1)
        if not isinstance(reply, dict):
            # 204 No Content: a write that returns nothing is not a secret.
            raise SecretNotFound(f"{what}: {self.name!r} returned no data")
        data = reply.get("data")
        lease_id = reply.get("lease_id") or None
        if lease_id is not None and not _is_lease_id(lease_id):
            # It would reach the job log (revocation messages): a line break there is a workflow
            # command (::stop-commands::), an escape rewrites the terminal. Such a lease ends
            # with the token that obtained it (ours is revoked at the end, as after any failed
            # read); for a token of the user's, which is never revoked, it is revoked here.
            self._revoke_unusable_lease(lease_id)
            raise self._malformed(what, "a lease id that is no text or has control characters")
        if not isinstance(data, dict):
            self._revoke_unusable_lease(lease_id)
            raise SecretNotFound(f"{what}: {self.name!r} returned no data")
        lease = None
        if lease_id is not None:
            lease = Lease(
                backend=self.name,
                lease_id=lease_id,
                ttl=seconds(reply.get("lease_duration")),
                renewable=bool(reply.get("renewable")),
                path=request.path,
            )
        return Document(
            data=dict(data),
            lease=lease,
            # KV v1 is static; any other engine without a lease (a static role's password) too.
            dynamic=lease is not None,
            details={"kv_version": kv_version, "mount": mount},
        )

    def _revoke_unusable_lease(self, lease_id: object) -> None:
        """Best effort: revoke a lease whose read fails, so it never reaches the ledger.

        The id goes in the request body only (never the URL: it may not be fit for one) and in
        no message. Failing, the lease still ends with our token, or at its own TTL.
        """
        if not isinstance(lease_id, str) or not lease_id:
            return
        with contextlib.suppress(JobSecretsError):
            self._request(
                "PUT",
                "sys/leases/revoke",
                what="revoke the lease of a failed read",
                safe=True,
                bounded=False,
                json={"lease_id": lease_id},
            )

    def check_access(self, request: ReadRequest) -> AccessCheck:
        """Ask ``sys/capabilities-self`` for the path actually read (``data/`` for KV v2)."""
        problem = self._api_path_problem(request)
        if problem:  # never report `read on secret/data/data/...` as allowed
            raise ConfigError(f"{request.describe()}: {problem}")
        try:
            return self._check_access(request)
        except AccessDenied as error:
            raise self._invalid_token(error) from None

    def _check_access(self, request: ReadRequest) -> AccessCheck:
        mount, kv_version = self._mount_of(request.path, request.options)
        path = request.path
        if kv_version == 2:
            path = f"{mount}data/{request.path[len(mount) :]}"
        what = f"capabilities of {path!r}"
        reply = self._request(
            "POST", "sys/capabilities-self", what=what, safe=True, json={"paths": [path]}
        )
        data = reply.get("data", reply) if isinstance(reply, dict) else None
        if not isinstance(data, dict):
            raise self._malformed(what, "no mapping of paths to capabilities")
        caps = _strings(data.get(path) or data.get("capabilities") or [])
        if caps is None:
            raise self._malformed(what, "capabilities that are no list of names")
        needed = (
            "update" if (request.params or request.options.get("method") == "write") else "read"
        )
        allowed = ("root" in caps) or (needed in caps and "deny" not in caps)
        # The names are the store's text: shown in the job log, so without control characters.
        shown = clean_text(", ".join(caps), 200) or "none"
        detail = f"{needed} on {path}: capabilities {shown}"
        if allowed and kv_version in (1, 2):
            # Capabilities say "may", not "exists": a KV path that does not exist would read 404.
            missing = self._kv_missing(request.path, mount, kv_version)
            if missing:
                return AccessCheck(False, missing, missing=True)
            if missing is None:
                detail += "; existence not checked (no read on metadata / list on the folder)"
        return AccessCheck(allowed, detail)

    def _kv_missing(self, path: str, mount: str, kv_version: int) -> str | None:
        """Why a KV secret does not exist, ``""`` when it does, ``None`` when we may not ask.

        Reads no value: KV v2's ``metadata/`` endpoint (is there a current, undeleted version?),
        KV v1's folder listing (is the key in it?).
        """
        rest = path[len(mount) :]
        what = f"existence of {path!r}"
        try:
            if kv_version == 2:
                reply = self._request("GET", f"{mount}metadata/{rest}", what=what)
                current = self._current_version(reply, what)[1]
                if (
                    current is None
                    or current.get("destroyed")
                    or _past(current.get("deletion_time"))
                ):
                    return f"{path!r}: no current version (deleted or destroyed) in {self.name!r}"
                return ""
            folder, _, leaf = rest.rpartition("/")
            reply = self._request("LIST", f"{mount}{folder}", what=what)
            data = reply.get("data") if isinstance(reply, dict) else None
            keys = _strings(data.get("keys")) if isinstance(data, dict) else None
            if keys is None:
                # Not "not found": a folder listing of another shape is no answer at all.
                raise self._malformed(what, "a folder listing without a list of keys")
            return "" if leaf in keys else f"{path!r}: not found in {self.name!r}"
        except SecretNotFound:
            return f"{path!r}: not found in {self.name!r}"
        except AccessDenied:
            return None

    def _current_version(self, reply: object, what: str) -> tuple[str, dict[str, Any] | None]:
        """A KV v2 ``metadata/`` answer's current version: its number (``""``: none) and its
        entry of ``versions`` (None: none). Every level is checked: anything but the API's
        shape is a malformed answer, not a crash and not a version that "exists"."""
        body = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(body, dict):
            raise self._malformed(what, "KV metadata without a 'data' mapping")
        current = _version_key(body.get("current_version"))
        versions = body.get("versions")
        if current is None:
            raise self._malformed(what, "KV metadata whose current_version is no number")
        if versions is not None and not isinstance(versions, dict):
            raise self._malformed(what, "KV metadata whose 'versions' is no mapping")
        entry = (versions or {}).get(current) if current else None
        if entry is not None and not isinstance(entry, dict):
            raise self._malformed(what, "KV metadata with a version entry that is no mapping")
        return current, entry

    def metadata(self, request: ReadRequest) -> Document | None:
        """KV v2: the ``metadata/`` endpoint (version times, custom_metadata), never ``data/``.

        KV v1 keeps no times; any other engine is taken as leasing (its TTL is known only once a
        lease is issued). Needs ``read`` on ``MOUNT/metadata/PATH`` for KV v2.
        """
        mount, kv_version = self._mount_of(request.path, request.options)
        if kv_version == 2:
            rest = request.path[len(mount) :]
            what = f"metadata of {request.describe()}"
            reply = self._request("GET", f"{mount}metadata/{rest}", what=what, safe=True)
            current, version = self._current_version(reply, what)
            updated, source = kv_date(
                (version or {}).get("created_time"), reply["data"].get("custom_metadata")
            )
            return Document(
                data={},
                version=current or None,
                updated=updated,
                age_source=source,
                dynamic=False,
                details={"kv_version": 2, "mount": mount},
            )
        if kv_version == 1:
            return Document(data={}, dynamic=False, details={"kv_version": 1, "mount": mount})
        return Document(data={}, dynamic=True, details={"mount": mount})

    def identity_info(self) -> Mapping[str, Any]:
        """Non-secret facts about our token: accessor, policies, TTL, display name, metadata."""
        try:
            reply = self._request("GET", "auth/token/lookup-self", what="token lookup", safe=True)
        except AccessDenied as error:
            self._token_checked = False
            raise self._invalid_token(error) from None
        data = reply.get("data", {}) if isinstance(reply, dict) else {}
        if not isinstance(data, dict):
            raise self._malformed("token lookup", "no 'data' mapping")
        return {
            "accessor": data.get("accessor"),
            "display_name": data.get("display_name"),
            "policies": data.get("policies"),
            "ttl": data.get("ttl"),
            "meta": data.get("meta"),
            "entity_id": data.get("entity_id"),
        }

    # ---- lifetimes --------------------------------------------------------------------------------

    def renew_increment(self) -> int | None:
        """``renew_increment`` from the backend's options, in seconds (validated by the spec)."""
        value = self.options.get("renew_increment")
        return None if value is None else parse_duration(value)

    def renew_lease(self, lease: Lease, increment: int | None = None) -> Lease:
        """Renew through ``sys/leases/renew``; the answer's TTL may be shorter (max_ttl)."""
        payload: dict[str, Any] = {"lease_id": lease.lease_id}
        if increment:
            payload["increment"] = increment
        reply = self._request(
            "PUT",
            "sys/leases/renew",
            what=f"renew lease {clean_text(lease.lease_id)}",
            safe=True,
            bounded=False,
            json=payload,
        )
        ttl = (
            seconds(reply.get("lease_duration"), lease.ttl)
            if isinstance(reply, dict)
            else lease.ttl
        )
        return Lease(lease.backend, lease.lease_id, ttl, lease.renewable, lease.path, time.time())

    def revoke_lease(self, lease_id: str) -> None:
        """Revoke one lease, waiting until the store has ended it; a lease already gone is fine.

        The lease id goes in the body first (a policy on ``sys/leases/revoke``), then in the URL:
        ``sys/leases/revoke/<lease id>`` lets a policy allow revoking only the leases of one engine
        path (``path "sys/leases/revoke/database/creds/ci/*" { capabilities = ["update"] }``).
        Still denied, the caller ends the lease by revoking the token that obtained it.

        Ids come from the store's answers or a state file: one we would not have recorded
        (control characters, too long) is not sent at all, and one that would change the URL
        path (``../``, an empty segment) is sent in the body only.
        """
        what = f"revoke lease {clean_text(lease_id)}"
        if not _is_lease_id(lease_id):
            raise BackendError(
                f"{what}: not a lease id a store gives (control characters, or over "
                f"{MAX_LEASE_ID} characters): not sent"
            )
        try:
            try:
                self._request(
                    "PUT",
                    "sys/leases/revoke",
                    what=what,
                    safe=True,
                    bounded=False,
                    json={"lease_id": lease_id},
                )
            except AccessDenied:
                path = _lease_path(lease_id)
                if path is None:
                    raise
                self._request(
                    "PUT",
                    f"sys/leases/revoke/{path}",
                    what=what,
                    safe=True,
                    bounded=False,
                    json={},
                )
        except SecretNotFound:
            return
        except BackendError as error:
            # An expired or already revoked lease answers 400 "invalid lease ID".
            if "invalid lease" in error.message.lower():
                return
            raise

    def renew_token(self) -> None:
        """Renew our own token if we obtained it and it is renewable."""
        record = self._token_record
        if record is None or not record.renewable:
            return
        reply = self._request(
            "POST", "auth/token/renew-self", what="token renewal", safe=True, bounded=False, json={}
        )
        auth = reply.get("auth", {}) if isinstance(reply, dict) else {}
        self._token_record = TokenRecord(
            record.backend,
            record.token,
            record.accessor,
            seconds(auth.get("lease_duration"), record.ttl),
            bool(auth.get("renewable", record.renewable)),
        )

    def token_record(self) -> TokenRecord | None:
        """The token from our own login; ``None`` for a user-supplied token, which is never revoked."""
        return self._token_record

    def revoke_token(self, record: TokenRecord) -> None:
        """``auth/token/revoke-self`` with the recorded token; an already invalid token is fine."""
        if self._client is None:
            self._client = self._new_client(record.token)
        client = self._client
        previous = client.token
        client.token = record.token
        try:
            self._request(
                "POST",
                "auth/token/revoke-self",
                what="token revocation",
                safe=True,
                bounded=False,
                json={},
            )
        except (AccessDenied, SecretNotFound):
            # 403 on revoke-self means the token is no longer valid: expired or revoked already.
            return
        finally:
            client.token = previous
        if self._token_record is not None and self._token_record.token == record.token:
            self._token_record = None

    def resume(self, record: TokenRecord | None) -> None:
        """Reconnect in a later process: with our recorded token, or the user's own token."""
        if record is None:
            self.login()
            return
        with self._client_lock:
            if self._client is None:
                # Nothing else to wait on in such a process (revoke, a renewal): the connection
                # the next request goes out on is opened while requests and hvac import.
                from ..preconnect import connect_early

                self._early = connect_early(self.address, self.context.timeout)
                self._client = self._new_client(record.token)
                self._token_record = record
                ready, self._early_ready = self._early_ready, None
                if ready is not None:
                    # The request that follows goes out on that connection rather than open
                    # another while its TLS handshake, if any, is still on the way; not for
                    # long: a store that stalls the handshake must not hold the job's end for a
                    # whole timeout more (the request then opens its own, as it always did).
                    ready.wait(min(self.context.timeout, _EARLY_WAIT))

    def close(self) -> None:
        """Close the HTTP session."""
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self._client.adapter.close()
