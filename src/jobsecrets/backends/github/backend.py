"""GitHub App installation tokens, minted per job and revoked at its end.

Sign-in: the App's private key is read from another reference of the same spec
(``private_key: vault:secret/ci/github-app#pem``) through ``context.lookup``: it reaches neither the
job's environment, nor a file, nor argv. With it the backend signs an App JWT (RS256, ``iat`` 60 s in
the past and ``exp`` 9 minutes ahead, so a clock that is a minute off either way still passes GitHub's
10-minute rule) and asks ``GET /app`` who it is: a key that does not belong to the App fails here,
clearly. The key object is dropped right after signing; the JWT (valid minutes) is re-signed, with a
new lookup, only if it nears its end during resolution.

A read is a request for one token: ``github:OWNER/REPO`` with ``permissions`` (required: never an
implicit "everything the App may do") and ``repositories`` (default: the reference's repository). The
installation is found with ``GET /repos/{owner}/{repo}/installation`` (or the org's / user's for
``github:OWNER``), the token minted with ``POST /app/installations/{id}/access_tokens``. Equal
requests (permissions in any order) share one token; different ones mint different tokens.

Each token is a :class:`~jobsecrets.backends.base.Lease` (not renewable: GitHub tokens last one hour)
whose id says nothing secret (``github-token/INSTALLATION/EXPIRES/RANDOM``). The tokens themselves,
needed to revoke (``DELETE /installation/token`` authenticates *with* the token), are kept as this
backend's :class:`~jobsecrets.backends.base.TokenRecord`: a JSON map lease id -> token. So ``export``
stores them in the state file exactly as it stores Vault login tokens (0600, and Fernet-sealed when
``$JOBSECRETS_STATE_KEY`` is set), and ``revoke`` in a later step needs no key and no Vault: the
token revokes itself. A token that already expired answers 401, which counts as revoked.
"""

from __future__ import annotations

__all__ = ["GithubBackend"]

import json
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from ... import unshown
from ...addresses import header_problem
from ...digits import is_digits
from ...errors import (
    AccessDenied,
    AuthError,
    BackendError,
    ConfigError,
    JobSecretsError,
    RevokeError,
    SecretNotFound,
)
from ..base import AccessCheck, Backend, BackendContext, Document, Lease, ReadRequest, TokenRecord
from ._http import GithubHttp, Reply

DEFAULT_API_URL = "https://api.github.com"
LEVELS = ("read", "write", "admin")
#: GitHub installation tokens live one hour and cannot be renewed.
TOKEN_LIFETIME = 3600
#: JWT timing: ``iat`` backdated (GitHub's clock-drift advice), ``exp`` under the 10-minute maximum.
JWT_BACKDATE = 60
JWT_LIFETIME = 540
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_PERMISSION = re.compile(r"^[a-z][a-z_]{0,63}$")
_LEASE_PREFIX = "github-token/"


def _is_reference(value: object) -> bool:
    return isinstance(value, str) and ":" in value


def _split_path(path: str) -> tuple[str, str | None]:
    owner, _, repo = path.partition("/")
    return owner, (repo or None)


def _expires_of(lease_id: str) -> float | None:
    """The expiry written into one of our lease ids, or ``None`` when the id is not ours."""
    if not lease_id.startswith(_LEASE_PREFIX):
        return None
    parts = lease_id.split("/")
    if len(parts) != 4 or not is_digits(parts[2]):
        return None
    return float(parts[2])


def _parse_expiry(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):  # a reply is hostile until shown otherwise
        return None


def _describe_permissions(permissions: Mapping[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(permissions.items()))


class GithubBackend(Backend):
    """GitHub App installation tokens (GitHub.com and GitHub Enterprise Server)."""

    type_name = "github"
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "app_id": "the App's numeric id, or a reference to it (vault:secret/ci/app#app_id)",
        "client_id": "the App's client id (Iv23...), or a reference; instead of app_id",
        "private_key": "reference to the App's PEM private key (vault:secret/ci/app#pem)",
        "api_url": "REST API root; default https://api.github.com, GHES: https://HOST/api/v3",
        "ca_cert": "PEM CA bundle to verify a GitHub Enterprise Server",
        "job_timeout": "how long the job may run (e.g. 2h): plan warns when over the tokens' hour",
    }
    SECRET_OPTIONS: ClassVar[Mapping[str, str]] = {
        "permissions": "required: {permission: read|write|admin}, e.g. {contents: read}",
        "repositories": "repository names of the owner; default: the reference's repository",
    }
    REFERENCE_OPTIONS: ClassVar[frozenset[str]] = frozenset({"app_id", "client_id", "private_key"})
    TAKES_FIELD = False

    def __init__(self, name: str, options: Mapping[str, Any], context: BackendContext) -> None:
        super().__init__(name, options, context)
        self.api_url = str(options.get("api_url") or DEFAULT_API_URL).rstrip("/")
        self._lock = threading.Lock()
        self._http: GithubHttp | None = None
        self._issuer: str | None = None
        self._jwt: tuple[str, float] | None = None  # (jwt, unix time it stops being usable)
        self._app: dict[str, Any] = {}
        self._installations: dict[str, dict[str, Any]] = {}
        # Single flight per normalised request: equal requests share one token.
        self._minted: dict[str, Document] = {}
        self._flights: dict[str, threading.Lock] = {}
        # lease id -> token, for every token minted (or recorded by `export`) not yet revoked.
        self._tokens: dict[str, str] = {}
        # Lease ids revoked by this process (the record the ledger holds may still list them).
        self._ended: set[str] = set()
        # The record's accessor tells it apart in a state file that two `export`s of one job merged
        # (the same backend name both times): each export's tokens must survive the merge.
        self._accessor = f"{name}:installation-tokens:{secrets.token_hex(4)}"
        self._resumed: TokenRecord | None = None

    # ---- static description ------------------------------------------------------------------

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        """The App's identity and key, the API root."""
        problems = []
        has_app = "app_id" in options
        has_client = "client_id" in options
        if has_app == has_client:
            problems.append("give exactly one of 'app_id' and 'client_id'")
        app_id = options.get("app_id")
        if has_app and not (
            (isinstance(app_id, int) and not isinstance(app_id, bool) and app_id > 0)
            or (isinstance(app_id, str) and (is_digits(app_id) or _is_reference(app_id)))
        ):
            problems.append("'app_id' must be the App's numeric id or a reference to it")
        if has_client and not isinstance(options.get("client_id"), str):
            problems.append("'client_id' must be a string (the client id, or a reference)")
        key = options.get("private_key")
        if not _is_reference(key):
            problems.append(
                "'private_key' must be a reference to where the key is stored, like "
                "vault:secret/ci/github-app#pem (never the key itself)"
            )
        api_url = options.get("api_url")
        if api_url is not None and (
            not isinstance(api_url, str) or not re.match(r"^https?://[^/\s]+", api_url)
        ):
            problems.append("'api_url' must start with https:// (or http:// for a local server)")
        if "ca_cert" in options and not isinstance(options["ca_cert"], str):
            problems.append("'ca_cert' must be a path")
        if "job_timeout" in options:
            from ...durations import parse_duration

            try:
                parse_duration(options["job_timeout"])
            except (ValueError, TypeError) as error:
                problems.append(f"'job_timeout': {error}")
        return problems

    @classmethod
    def validate_secret(cls, path: str, options: Mapping[str, Any]) -> list[str]:
        """``OWNER/REPO`` or ``OWNER``; ``permissions`` required; ``repositories`` names."""
        problems = []
        owner, repo = _split_path(path)
        if not _OWNER.fullmatch(owner) or (repo is not None and not _valid_repo(repo)):
            problems.append(
                f"{path!r} is not OWNER/REPO or OWNER (GitHub account and repository names)"
            )
        permissions = options.get("permissions")
        if not isinstance(permissions, dict) or not permissions:
            problems.append(
                "'permissions' is required (e.g. {contents: read}): a token never gets "
                "everything the App may do"
            )
        else:
            for key, level in permissions.items():
                if not isinstance(key, str) or not _PERMISSION.fullmatch(key):
                    problems.append(f"permission {key!r} is not a GitHub permission name")
                elif level not in LEVELS:
                    problems.append(f"permission {key!r}: level must be one of {', '.join(LEVELS)}")
        repositories = options.get("repositories")
        if repositories is not None and (
            not isinstance(repositories, list)
            or not repositories
            or not all(isinstance(r, str) and _valid_repo(r) for r in repositories)
        ):
            problems.append("'repositories' must be a non-empty list of repository names")
        if repo is None and repositories is None:
            problems.append(
                f"{path!r} names no repository: add 'repositories: [...]' (a token never gets "
                "every repository of the installation implicitly)"
            )
        return problems

    @classmethod
    def describe_auth(cls, options: Mapping[str, Any]) -> str:
        """``GitHub App 12345 (key vault:secret/ci/app#pem)``."""
        who = options.get("client_id") or options.get("app_id") or "?"
        return f"GitHub App {who} (key {options.get('private_key', '?')})"

    @classmethod
    def plan_warnings(cls, options: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
        """Installation tokens last one hour and are not refreshed: say so when the job may be longer."""
        from ...durations import format_duration, parse_duration

        limit: int | None = None
        source = ""
        if "job_timeout" in options:
            try:
                limit, source = parse_duration(options["job_timeout"]), "job_timeout"
            except (ValueError, TypeError):
                limit = None
        elif is_digits(str(env.get("CI_JOB_TIMEOUT", "")), 12):
            limit, source = int(env["CI_JOB_TIMEOUT"]), "$CI_JOB_TIMEOUT"
        if limit is not None and limit > TOKEN_LIFETIME:
            return [
                f"the job may run {format_duration(limit)} ({source}) but GitHub installation "
                "tokens end 1h after they are minted and `run` does not refresh them: a step "
                "using the token after that hour fails with 401; split the job, or run "
                "`jobsecrets run` around each step that needs the token"
            ]
        return []

    # ---- sign-in -------------------------------------------------------------------------------

    def _time_left(self) -> float:
        if self.context.deadline is None:
            return self.context.timeout
        return self.context.deadline - time.monotonic()

    def _client(self) -> GithubHttp:
        if self._http is None:
            ca = self.options.get("ca_cert")
            if ca:
                ca = os.path.join(self.context.spec_dir, os.path.expanduser(str(ca)))
                # A regular file: a FIFO named here blocked the first request for good.
                if not os.path.isfile(ca):
                    raise ConfigError(
                        f"backend {self.name!r}: CA bundle not found (or not a regular file): {ca}"
                    )
            self._http = GithubHttp(
                self.api_url,
                timeout=self.context.remaining,
                time_left=self._time_left,
                ca_cert=ca or None,
                sleep=self.context.sleep,
            )
        return self._http

    def _lookup(self, option: str) -> str | bytes:
        value = self.options[option]
        if not _is_reference(value):
            return str(value)
        if self.context.lookup is None:
            raise ConfigError(
                f"backend {self.name!r}: {option} {value!r} is a reference, and nothing can read it "
                "here (references in backend options are read by jobsecrets' own session)"
            )
        try:
            return self.context.lookup(str(value))
        except JobSecretsError as error:
            # Say whose sign-in needed it: the store's own error alone names only the store.
            wrapped = type(error)(
                f"backend {self.name!r}: cannot read its {option} ({value}): {error.message}"
            )
            wrapped.hint = error.hint
            raise wrapped from None

    def _app_label(self) -> str:
        slug = self._app.get("slug")
        who = self.options.get("client_id") or self.options.get("app_id")
        if _is_reference(who):
            who = self._issuer
        return f"GitHub App {slug!r} ({who})" if slug else f"GitHub App {who}"

    def _sign(self) -> tuple[str, float]:
        """A fresh App JWT. The private key is parsed, used once and dropped."""
        try:
            import jwt
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.hazmat.primitives.serialization import load_pem_private_key
        except ImportError:
            raise ConfigError(
                f"backend {self.name!r}: the github backend needs 'pyjwt' and 'cryptography'",
                hint="pip install 'jobsecrets[github]' (the GitHub Action: `extras: github`)",
            ) from None
        if self._issuer is None:
            who = "client_id" if "client_id" in self.options else "app_id"
            issuer = self._lookup(who)
            text = issuer.decode("utf-8", "replace") if isinstance(issuer, bytes) else issuer
            self._issuer = text.strip()
        pem = self._lookup("private_key")
        ref = self.options["private_key"]
        try:
            key = load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, None)
        except (ValueError, TypeError):
            # The message of the parser may quote the input: only say what it is not.
            raise ConfigError(
                f"backend {self.name!r}: the value at {ref} is not an unencrypted PEM private key",
                hint="store the .pem file GitHub gave you, as it is (BEGIN RSA PRIVATE KEY)",
            ) from None
        finally:
            del pem
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"backend {self.name!r}: the key at {ref} is not an RSA key")
        now = int(time.time())
        # A string either way: GitHub takes the App id as text, and pyjwt requires a string iss.
        token = jwt.encode(
            {"iat": now - JWT_BACKDATE, "exp": now + JWT_LIFETIME, "iss": self._issuer},
            key,
            algorithm="RS256",
        )
        del key
        # A credential: GitHub's error text (or a proxy's) may quote the bearer it was sent.
        unshown.remember(token)
        return token, now + JWT_LIFETIME - 60

    def _app_jwt(self) -> str:
        with self._lock:
            if self._jwt is None or time.time() >= self._jwt[1]:
                self._jwt = self._sign()
            return self._jwt[0]

    def login(self) -> None:
        """Sign the App JWT and check with ``GET /app`` that GitHub takes it (key and App match)."""
        with self._lock:
            if self._app:
                return
        bearer = self._app_jwt()
        reply = self._client().call("GET", "/app", bearer=bearer, what=f"{self.name}: sign-in")
        if reply.status == 200 and isinstance(reply.body, dict):
            with self._lock:
                self._app = {k: reply.body.get(k) for k in ("id", "slug", "name", "client_id")}
            return
        with self._lock:
            self._jwt = None
        if reply.status == 401:
            raise AuthError(
                f"backend {self.name!r}: GitHub refused the App JWT for {self._app_label()}: "
                f"{reply.message}",
                hint=f"the private key at {self.options['private_key']} must be one of this App's "
                "keys, and app_id/client_id must be this App's; a clock far off also fails",
            )
        raise AuthError(
            f"backend {self.name!r}: sign-in as {self._app_label()} failed at {self.api_url}: "
            f"{reply.message}"
        )

    # ---- reads ---------------------------------------------------------------------------------

    @staticmethod
    def _wanted(request: ReadRequest) -> tuple[str, str | None, list[str], dict[str, str]]:
        owner, repo = _split_path(request.path)
        permissions = request.options.get("permissions")
        if not isinstance(permissions, dict) or not permissions:
            raise ConfigError(f"{request.describe()}: 'permissions' is required")
        repositories = request.options.get("repositories")
        names = sorted({str(r) for r in repositories}) if repositories else [str(repo)]
        return owner, repo, names, {str(k): str(v) for k, v in permissions.items()}

    def _installation(self, owner: str, repo: str | None, what: str) -> dict[str, Any]:
        key = f"{owner}/{repo}" if repo else owner
        with self._lock:
            if key in self._installations:
                return self._installations[key]
        client = self._client()
        paths = (
            [f"/repos/{owner}/{repo}/installation"]
            if repo
            else [f"/orgs/{owner}/installation", f"/users/{owner}/installation"]
        )
        reply: Reply | None = None
        for path in paths:
            reply = client.call("GET", path, bearer=self._app_jwt(), what=what)
            if reply.status != 404:
                break
        assert reply is not None
        if reply.status == 404:
            install = (
                f"https://github.com/apps/{self._app['slug']}/installations/new"
                if self._app.get("slug") and self.api_url == DEFAULT_API_URL
                else "the App's settings page, 'Install App'"
            )
            raise SecretNotFound(
                f"{what}: {self._app_label()} is not installed on {key} "
                f"(GitHub answered 404 at {self.api_url})",
                hint=f"install the App on {key} (or give it access to the repository): {install}",
            )
        if reply.status == 401:
            raise AuthError(f"{what}: GitHub refused the App JWT: {reply.message}")
        if reply.status != 200 or not isinstance(reply.body, dict) or "id" not in reply.body:
            raise BackendError(f"{what}: finding the installation on {key} failed: {reply.message}")
        installation = reply.body
        with self._lock:
            self._installations[key] = installation
        return installation

    def read(self, request: ReadRequest) -> Document:
        """Mint (or share) the token this request describes."""
        owner, repo, names, permissions = self._wanted(request)
        flight_key = json.dumps([owner, names, sorted(permissions.items())])
        with self._lock:
            flight = self._flights.setdefault(flight_key, threading.Lock())
        with flight:
            with self._lock:
                if flight_key in self._minted:
                    return self._minted[flight_key]
            document = self._mint(request, owner, repo, names, permissions)
            with self._lock:
                self._minted[flight_key] = document
            return document

    def _mint(
        self,
        request: ReadRequest,
        owner: str,
        repo: str | None,
        names: list[str],
        permissions: dict[str, str],
    ) -> Document:
        what = request.describe()
        installation = self._installation(owner, repo, what)
        installation_id = int(installation["id"])
        reply = self._client().call(
            "POST",
            f"/app/installations/{installation_id}/access_tokens",
            bearer=self._app_jwt(),
            what=what,
            body={"repositories": names, "permissions": permissions},
        )
        asked = f"{_describe_permissions(permissions)} on {owner}/{{{','.join(names)}}}"
        if reply.status == 422:
            raise AccessDenied(
                f"{what}: {self._app_label()} cannot have {asked}: {reply.message}",
                hint="the App's installation must hold these permissions and see these "
                "repositories (App settings > Permissions; installation > Repository access)",
            )
        if reply.status in (403, 404):
            raise AccessDenied(f"{what}: GitHub refused a token for {asked}: {reply.message}")
        if reply.status == 401:
            raise AuthError(f"{what}: GitHub refused the App JWT: {reply.message}")
        body = reply.body if isinstance(reply.body, dict) else {}
        token = body.get("token")
        if reply.status != 201 or not isinstance(token, str) or not token:
            raise BackendError(f"{what}: GitHub did not mint a token ({reply.message})")
        unfit = header_problem(token)
        if unfit is not None:
            # The job sends it in an Authorization header (a line break injects headers into
            # each request) and so does revocation: it cannot be revoked either, so say so.
            unshown.remember(token)
            raise BackendError(
                f"{what}: GitHub answered with a token that cannot be sent in an HTTP header "
                f"({unfit}); not used, and it cannot be revoked: it ends at its expiry",
                hint="check what answers at the api_url (a proxy?)",
            )
        expires = _parse_expiry(body.get("expires_at")) or time.time() + TOKEN_LIFETIME
        lease_id = f"{_LEASE_PREFIX}{installation_id}/{int(expires)}/{secrets.token_hex(6)}"
        unshown.remember(token)  # before any message about the rest of this answer is made
        with self._lock:
            # Recorded before anything else can fail: the ledger revokes it through this map.
            self._tokens[lease_id] = token
        granted_raw = body.get("permissions")
        granted: dict[str, Any] = granted_raw if isinstance(granted_raw, dict) else {}
        broader = {
            k: v
            for k, v in granted.items()
            if permissions.get(k) != v and not (k == "metadata" and v == "read")
        }
        if broader:
            # GitHub adds metadata: read to every token; anything else unasked must not reach the job.
            self.revoke_lease(lease_id)
            raise AccessDenied(
                f"{what}: GitHub granted more than asked ({_describe_permissions(broader)}); "
                "the token was revoked"
            )
        lease = Lease(
            backend=self.name,
            lease_id=lease_id,
            # Capped at the hour: a GitHub clock ahead of ours must not make a token look longer
            # lived than it is (max_ttl: 1h would fail for nothing).
            ttl=max(0, min(TOKEN_LIFETIME, int(expires - time.time()))),
            renewable=False,
            path=request.path,
        )
        return Document(
            data=token,
            lease=lease,
            dynamic=True,
            details={
                "installation_id": installation_id,
                "expires_at": body.get("expires_at"),
                "permissions": dict(granted),
                "repositories": names,
            },
        )

    def check_access(self, request: ReadRequest) -> AccessCheck:
        """The App is installed there, and the installation holds the permissions asked for."""
        owner, repo, names, permissions = self._wanted(request)
        try:
            installation = self._installation(owner, repo, request.describe())
        except SecretNotFound as error:
            return AccessCheck(False, error.message, missing=True)
        held = installation.get("permissions") or {}
        short = {
            k: v
            for k, v in permissions.items()
            if LEVELS.index(v) > (LEVELS.index(held[k]) if held.get(k) in LEVELS else -1)
        }
        if short:
            return AccessCheck(
                False,
                f"installation {installation['id']} lacks {_describe_permissions(short)}",
            )
        return AccessCheck(
            True,
            f"installation {installation['id']} may mint {_describe_permissions(permissions)} "
            f"for {', '.join(names)} (repository access is checked when minting)",
        )

    def metadata(self, request: ReadRequest) -> Document | None:
        """Every token is leased (one hour); nothing else is known before minting."""
        return Document(data={}, dynamic=True)

    def identity_info(self) -> Mapping[str, Any]:
        """The App GitHub says we are."""
        return {"app": self._app.get("slug"), "app_id": self._app.get("id"), "api": self.api_url}

    # ---- lifetimes -----------------------------------------------------------------------------

    def revoke_lease(self, lease_id: str) -> None:
        """``DELETE /installation/token`` with the token itself; expired or revoked is fine."""
        with self._lock:
            token = self._tokens.get(lease_id)
            if token is None and lease_id in self._ended:
                return
        if token is None:
            expires = _expires_of(lease_id)
            if expires is not None and expires > time.time():
                # Ours and still alive, but this process does not hold the token (a state file
                # whose token entry it cannot open): saying "revoked" would be a lie.
                raise RevokeError(
                    f"token {lease_id}: not known to this process, so it cannot be revoked "
                    "(is $JOBSECRETS_STATE_KEY the one `export` used?)"
                )
            return
        self._delete(token, lease_id)

    def _delete(self, token: str, lease_id: str) -> None:
        reply = self._client().call(
            "DELETE", "/installation/token", bearer=token, what=f"revoke {lease_id}"
        )
        if reply.status not in (204, 401):
            raise BackendError(f"revoke {lease_id}: GitHub answered {reply.message}")
        # 401: already expired or revoked, which is what revoking wants.
        with self._lock:
            self._tokens.pop(lease_id, None)
            self._ended.add(lease_id)

    def token_record(self) -> TokenRecord | None:
        """The minted tokens still alive, as one record (the state file seals it like a login token)."""
        with self._lock:
            if not self._tokens:
                return None
            tokens = dict(self._tokens)
            resumed = self._resumed
        if resumed is not None and _record_tokens(resumed) == tokens:
            # The very record the state file held: the ledger then knows it is this one it revoked.
            return resumed
        payload = json.dumps(dict(sorted(tokens.items())))
        return TokenRecord(
            backend=self.name,
            token=payload,
            accessor=self._accessor,
            ttl=0,
            renewable=False,
        )

    def resume(self, record: TokenRecord | None) -> None:
        """A later process (``revoke``): the recorded tokens revoke themselves; no sign-in needed."""
        if record is None:
            return
        tokens = _record_tokens(record)
        with self._lock:
            if not self._tokens and record.accessor:
                # Our record is then the recorded one (same key in the ledger), not a second
                # record of the same tokens: `revoke` reports one token, as `export` recorded.
                self._accessor = record.accessor
                self._resumed = record
            self._tokens.update(tokens)

    def revoke_token(self, record: TokenRecord) -> None:
        """Revoke every token of ``record`` that its lease's revocation has not ended already."""
        failures = []
        for lease_id, token in _record_tokens(record).items():
            with self._lock:
                if lease_id in self._ended:
                    continue
            try:
                self._delete(token, lease_id)
            except BackendError as error:
                failures.append(error.message)
                continue
        if failures:
            raise RevokeError("; ".join(failures))

    def close(self) -> None:
        """Forget the JWT; tokens are the ledger's to revoke."""
        with self._lock:
            self._jwt = None


def _valid_repo(name: str) -> bool:
    return bool(_REPO.fullmatch(name)) and name not in (".", "..")


def _record_tokens(record: TokenRecord) -> dict[str, str]:
    try:
        tokens = json.loads(record.token)
    except ValueError:
        raise RevokeError(f"{record.accessor}: the recorded token entry is damaged") from None
    if not isinstance(tokens, dict):
        raise RevokeError(f"{record.accessor}: the recorded token entry is damaged")
    return {str(k): str(v) for k, v in tokens.items()}
