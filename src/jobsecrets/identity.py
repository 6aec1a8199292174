"""The CI job's own OIDC identity token: where it comes from and what it says.

The token is found, never stored by the user:

* GitHub Actions: requested from ``ACTIONS_ID_TOKEN_REQUEST_URL`` with the bearer
  ``ACTIONS_ID_TOKEN_REQUEST_TOKEN`` (the workflow needs ``permissions: id-token: write``),
  for the audience the backend asks for.
* GitLab CI: the variable that ``id_tokens:`` defines, ``VAULT_ID_TOKEN`` unless the spec names another.
* Anywhere: a token file (e.g. a Kubernetes projected service-account token) or a variable named in the spec.

This module deliberately imports no HTTP library but ``urllib``: ``plan`` and the CLI import it
without paying for hvac/boto3. Nothing here ever puts a token (or its signature) into a message:
errors name where the token came from, and :func:`public_claims` keeps only claims roles bind on.
"""

from __future__ import annotations

__all__ = [
    "AUDIENCE_ENV",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_GITLAB_VARIABLE",
    "DEFAULT_REQUEST_TIMEOUT",
    "PROVIDERS",
    "PUBLIC_CLAIMS",
    "IdentityConfig",
    "IdentityProvider",
    "detect_platform",
    "expiry_problem",
    "public_claims",
    "token_claims",
]

import base64
import binascii
import dataclasses
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from jobsecrets.durations import format_duration, parse_duration
from jobsecrets.errors import IdentityError

PROVIDERS = ("auto", "github", "gitlab", "file", "env")
DEFAULT_GITLAB_VARIABLE = "VAULT_ID_TOKEN"
# Vault's own jwt auth allows 60s of leeway by default; refusing tokens inside that window
# avoids a login that fails on the server with a less helpful message.
DEFAULT_CLOCK_SKEW = 60
# GitHub's token endpoint is normally fast; 30s covers its occasional 5xx bursts.
DEFAULT_REQUEST_TIMEOUT = 30

# Claims Vault/OpenBao roles and AWS trust policies bind on. None is secret; the token's
# signature and anything not listed here (jti, e-mail addresses, ...) are left out on purpose.
PUBLIC_CLAIMS = frozenset(
    {
        # registered claims
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        # GitHub Actions
        "repository",
        "repository_id",
        "repository_owner",
        "repository_owner_id",
        "repository_visibility",
        "ref",
        "ref_type",
        "ref_protected",
        "sha",
        "environment",
        "workflow",
        "workflow_ref",
        "job_workflow_ref",
        "event_name",
        "head_ref",
        "base_ref",
        "actor",
        "actor_id",
        "run_id",
        "run_number",
        "run_attempt",
        "runner_environment",
        # GitLab CI
        "project_id",
        "project_path",
        "namespace_id",
        "namespace_path",
        "pipeline_id",
        "pipeline_source",
        "job_id",
        "ref_path",
        "user_id",
        "user_login",
        "environment_protected",
        "deployment_tier",
        "runner_id",
    }
)

_KEYS = ("provider", "audience", "variable", "file", "clock_skew", "timeout")
_GITHUB_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
# The default audience for this run, overriding the spec's `identity.audience`.
AUDIENCE_ENV = "JOBSECRETS_AUDIENCE"
_GITHUB_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 - a variable name, not a secret


@dataclass(frozen=True)
class IdentityConfig:
    """The spec's optional top-level ``identity:`` mapping.

    ``audience`` is the default audience requested from GitHub when a backend asks for none;
    GitLab and static tokens carry the audience they were minted with. ``variable`` names the
    environment variable holding a token (GitLab default ``VAULT_ID_TOKEN``), ``file`` a token
    file. ``clock_skew`` and ``timeout`` are seconds.
    """

    provider: str = "auto"
    audience: str | None = None
    variable: str | None = None
    file: str | None = None
    clock_skew: int = DEFAULT_CLOCK_SKEW
    timeout: int = DEFAULT_REQUEST_TIMEOUT

    @classmethod
    def from_mapping(cls, data: object) -> tuple[IdentityConfig, list[str]]:
        """Build a config from the parsed YAML; return it with every problem found.

        Problems are plain messages (the spec parser adds file and line). With problems,
        the returned config holds the defaults for the offending keys.
        """
        if data is None:
            return cls(), []
        if not isinstance(data, Mapping):
            return cls(), [f"identity: expected a mapping, got {type(data).__name__}"]
        problems: list[str] = []
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in _KEYS:
                problems.append(
                    f"identity: unknown key {key!r} (expected one of: {', '.join(_KEYS)})"
                )
                continue
            if key in ("clock_skew", "timeout"):
                try:
                    values[key] = parse_duration(value)
                except ValueError as exc:
                    problems.append(f"identity.{key}: {exc}")
                continue
            if not isinstance(value, str) or not value.strip():
                problems.append(f"identity.{key}: expected a non-empty string")
                continue
            values[key] = value.strip()
        provider = values.get("provider", "auto")
        if provider not in PROVIDERS:
            problems.append(f"identity.provider: {provider!r} is not one of {', '.join(PROVIDERS)}")
            values.pop("provider")
            provider = "auto"
        if provider == "file" and "file" not in values:
            problems.append("identity: provider 'file' needs 'file: PATH'")
        if provider == "env" and "variable" not in values:
            problems.append("identity: provider 'env' needs 'variable: NAME'")
        if provider == "auto" and "file" in values and "variable" in values:
            problems.append(
                "identity: set either 'file' or 'variable', not both "
                "(or choose one with 'provider:')"
            )
        if values.get("timeout") == 0:
            problems.append("identity.timeout: must be more than 0s")
            values.pop("timeout")
        return cls(**values), problems


def detect_platform(env: Mapping[str, str] | None = None) -> str:
    """Return ``github``, ``gitlab`` or ``local`` from the CI system's own marker variables."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    return "local"


def token_claims(token: str) -> dict[str, Any]:
    """Decode a JWT's payload WITHOUT verifying it (the secret store verifies; we only report).

    Raises :class:`IdentityError` when the text is not a JWT; the message never quotes it.
    """
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[1]:
        raise IdentityError(f"the identity token is not a JWT (expected 3 parts, got {len(parts)})")
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        # ``from None``: the original exception may quote the undecodable text.
        raise IdentityError("the identity token's payload is not base64url JSON") from None
    if not isinstance(claims, dict):
        raise IdentityError("the identity token's payload is not a JSON object")
    return claims


def public_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only the non-secret claims roles bind on (see :data:`PUBLIC_CLAIMS`), sorted by name."""
    return {key: claims[key] for key in sorted(claims) if key in PUBLIC_CLAIMS}


def _format_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expiry_problem(
    claims: Mapping[str, Any], *, skew: float = DEFAULT_CLOCK_SKEW, now: float | None = None
) -> str | None:
    """Say why a token is (about to be) unusable, or return ``None`` when it is fine.

    A token whose ``exp`` lies within ``skew`` seconds counts as expired: the secret store's
    clock may be that far ahead of ours. A token without ``exp`` is accepted (the store decides).
    """
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    now = time.time() if now is None else now
    if exp <= now:
        return f"token expired at {_format_time(exp)}"
    if exp - now <= skew:
        return (
            f"token expires at {_format_time(exp)}, within the "
            f"{format_duration(skew)} clock-skew tolerance"
        )
    return None


@dataclass
class _Cached:
    token: str
    claims: dict[str, Any]


@dataclass
class _Source:
    """Where tokens come from: ``kind`` is github, gitlab, file, env or none."""

    kind: str
    detail: str
    missing: str = ""  # why no token can be had; empty when the source looks usable
    hint: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class IdentityProvider:
    """Finds the job's OIDC token for an audience; caches one token per audience, thread-safe.

    Nothing is read or requested until :meth:`token` is called, so ``plan`` can
    :meth:`describe` the source without touching the network. ``env`` defaults to
    ``os.environ``; ``clock``/``sleep`` exist for tests.
    """

    def __init__(
        self,
        config: IdentityConfig | None = None,
        env: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or IdentityConfig()
        self._env = dict(os.environ if env is None else env)
        audience = self._env.get(AUDIENCE_ENV, "").strip()
        if audience:
            # Set by the caller for this run (the GitHub Action's `audience` input): it wins over
            # the spec's `identity.audience`; a backend's own `audience` still wins over both.
            self.config = dataclasses.replace(self.config, audience=audience)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # One lock per audience: backends asking for different audiences fetch concurrently.
        self._fetch_locks: dict[str | None, threading.Lock] = {}
        self._cache: dict[str | None, _Cached] = {}
        self.platform = detect_platform(self._env)
        self._source = self._pick_source()

    @property
    def kind(self) -> str:
        """``github``, ``gitlab``, ``file``, ``env`` or ``none``."""
        return self._source.kind

    def _pick_source(self) -> _Source:
        cfg, env = self.config, self._env
        kind = cfg.provider
        if kind == "auto":
            # An explicit file/variable in the spec wins over what the platform would do,
            # except that on GitLab a variable is just the id_tokens name to read.
            if cfg.file:
                kind = "file"
            elif self.platform == "gitlab":
                kind = "gitlab"
            elif cfg.variable:
                kind = "env"
            elif self.platform == "github":
                kind = "github"
            else:
                return _Source(
                    "none",
                    "no CI identity (not running in GitHub Actions or GitLab CI)",
                    missing="no CI identity token: not running in GitHub Actions or GitLab CI "
                    "and the spec names no token source",
                    hint="set 'identity: {file: PATH}' or 'identity: {variable: NAME}' in the "
                    "spec to use a token from a file or a variable, or use a backend auth "
                    "method that needs no identity (token, approle)",
                )
        if kind == "github":
            url = env.get(_GITHUB_URL, "")
            missing = [name for name in (_GITHUB_URL, _GITHUB_TOKEN) if not env.get(name)]
            host = urllib.parse.urlsplit(url).hostname or "?"
            if missing:
                return _Source(
                    "github",
                    "GitHub Actions OIDC token endpoint (not available)",
                    missing=f"GitHub Actions did not provide {' and '.join(missing)}",
                    hint="give the job 'permissions: id-token: write' (in the workflow or the "
                    "job); pull requests from forks never get an OIDC token",
                )
            return _Source("github", f"GitHub Actions OIDC token endpoint ({host})")
        if kind in ("gitlab", "env"):
            name = cfg.variable or DEFAULT_GITLAB_VARIABLE
            if kind == "gitlab":
                detail = f"GitLab CI id_tokens variable ${name}"
                hint = (
                    f"declare it in the job: 'id_tokens: {{{name}: {{aud: "
                    f"{cfg.audience or 'https://vault.example.com'}}}}}'"
                )
            else:
                detail = f"environment variable ${name}"
                hint = f"export {name} with the OIDC token, or change 'identity.variable'"
            missing_msg = "" if env.get(name) else f"${name} is not set or empty"
            return _Source(kind, detail, missing=missing_msg, hint=hint, extra={"name": name})
        # kind == "file"
        path = cfg.file or ""
        return _Source(
            "file",
            f"token file {path}",
            hint="check 'identity.file' in the spec",
            extra={"path": path},
        )

    def describe(self) -> str:
        """One line saying where the token comes from; never the token."""
        source = self._source
        if source.kind == "none":
            # Nothing to find: the detail already says why; the "missing" text would repeat it.
            return source.detail
        if source.missing:
            return f"{source.detail}: {source.missing}"
        return source.detail

    def token(self, audience: str | None = None) -> str:
        """Return a token for ``audience`` (``None``: the spec's default audience).

        Raises :class:`IdentityError` when no token can be had or it has expired.
        """
        audience = audience or self.config.audience
        with self._lock:
            fetch_lock = self._fetch_locks.setdefault(audience, threading.Lock())
        with fetch_lock:
            with self._lock:
                cached = self._cache.get(audience)
            if cached is not None and self._usable(cached.claims):
                return cached.token
            fresh = self._fetch(audience)
            with self._lock:
                self._cache[audience] = fresh
            return fresh.token

    def claims(self, audience: str | None = None) -> dict[str, Any]:
        """The public (non-secret) claims of the token for ``audience``: what ``plan --check`` shows."""
        self.token(audience)
        with self._lock:
            return public_claims(self._cache[audience or self.config.audience].claims)

    def _usable(self, claims: Mapping[str, Any]) -> bool:
        return expiry_problem(claims, skew=self.config.clock_skew, now=self._clock()) is None

    def _fetch(self, audience: str | None) -> _Cached:
        source = self._source
        if source.missing:
            raise IdentityError(source.missing, hint=source.hint)
        if source.kind == "github":
            token = self._request_github(audience)
            claims = token_claims(token)
            problem = expiry_problem(claims, skew=self.config.clock_skew, now=self._clock())
            if problem:
                # A fresh token that is already stale means this machine's clock is off.
                raise IdentityError(
                    f"GitHub issued a {problem}",
                    hint="check the runner's clock (the token was just issued)",
                )
            return _Cached(token, claims)
        token = self._read_static()
        try:
            claims = token_claims(token)
        except IdentityError as exc:
            raise IdentityError(f"{source.detail}: {exc.message}", hint=source.hint) from None
        problem = expiry_problem(claims, skew=self.config.clock_skew, now=self._clock())
        if problem:
            raise IdentityError(
                f"{source.detail}: {problem}",
                hint="a static token cannot be refreshed; provide a fresh one"
                + (
                    " (GitLab mints id_tokens when the job starts)"
                    if source.kind == "gitlab"
                    else ""
                ),
            )
        if audience is not None and not _audience_matches(claims.get("aud"), audience):
            raise IdentityError(
                f"{source.detail}: the token's audience {claims.get('aud')!r} does not include "
                f"{audience!r}",
                hint=source.hint,
            )
        return _Cached(token, claims)

    def _read_static(self) -> str:
        source = self._source
        if source.kind == "file":
            path = source.extra["path"]
            try:
                # Re-read on every fetch: projected tokens (Kubernetes) are rotated in place.
                with open(path, encoding="utf-8") as handle:
                    text = handle.read().strip()
            except OSError as exc:
                raise IdentityError(
                    f"cannot read token file {path}: {exc.strerror or exc}", hint=source.hint
                ) from None
            if not text:
                raise IdentityError(f"token file {path} is empty", hint=source.hint)
            return text
        return self._env[source.extra["name"]].strip()

    def _request_github(self, audience: str | None) -> str:
        url = self._env[_GITHUB_URL]
        if audience:
            # The URL GitHub gives already carries a query string (api-version=...).
            separator = "&" if urllib.parse.urlsplit(url).query else "?"
            if url.endswith(("?", "&")):
                separator = ""
            url = f"{url}{separator}audience={urllib.parse.quote(audience, safe='')}"
        request = urllib.request.Request(  # noqa: S310 - the URL is GitHub's, not user input
            url,
            headers={
                "Authorization": f"Bearer {self._env[_GITHUB_TOKEN]}",
                "Accept": "application/json; api-version=2.0",
                "User-Agent": "jobsecrets",
            },
        )
        deadline = self._clock() + self.config.timeout
        delay = 0.25
        attempt = 0
        last = ""
        while True:
            attempt += 1
            remaining = deadline - self._clock()
            try:
                with urllib.request.urlopen(request, timeout=max(1.0, min(10.0, remaining))) as r:  # noqa: S310
                    body = r.read()
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code != 429:
                    # 401/403/404 will not get better by retrying.
                    raise IdentityError(
                        f"GitHub's OIDC token endpoint refused the request: HTTP {exc.code}",
                        hint="the job needs 'permissions: id-token: write'; the request token "
                        "is only valid while the job runs",
                    ) from None
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}"
            else:
                return _parse_github_body(body)
            remaining = deadline - self._clock()
            if remaining <= delay:
                raise IdentityError(
                    f"GitHub's OIDC token endpoint failed {attempt} times within "
                    f"{format_duration(self.config.timeout)} (last: {last})",
                    hint="retry the job; raise 'identity.timeout' if this is frequent",
                )
            self._sleep(delay)
            delay = min(delay * 2, 5.0)


def _parse_github_body(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        raise IdentityError("GitHub's OIDC token endpoint answered with invalid JSON") from None
    value = data.get("value") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise IdentityError("GitHub's OIDC token endpoint answered without a token 'value'")
    return value


def _audience_matches(aud: object, audience: str) -> bool:
    if isinstance(aud, str):
        return aud == audience
    if isinstance(aud, list):
        return audience in aud
    return False
