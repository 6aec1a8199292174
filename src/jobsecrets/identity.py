"""The CI job's own OIDC identity token: where it comes from and what it says.

The token is found, never stored by the user: each CI system's module under
:mod:`jobsecrets.platforms` says where its jobs get one (GitHub's token endpoint, GitLab's
``id_tokens:`` variable); anywhere, a token file (e.g. a Kubernetes projected service-account token)
or a variable named in the spec's ``identity:`` section works too.

Nothing here ever puts a token (or its signature) into a message: errors name where the token came
from, and :func:`public_claims` keeps only claims roles bind on.
"""

from __future__ import annotations

__all__ = [
    "AUDIENCE_ENV",
    "PUBLIC_CLAIMS",
    "IdentityProvider",
    "expiry_problem",
    "public_claims",
    "token_claims",
]

import base64
import binascii
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import jsonsafe
from .durations import format_duration
from .errors import IdentityError
from .platforms import all_platforms, detect
from .platforms.base import TokenSource
from .safe_files import read_regular
from .spec.identity import DEFAULT_CLOCK_SKEW, IdentityConfig
from .timeutil import iso_utc, unix_time

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

# The default audience for this run, overriding the spec's `identity.audience`.
AUDIENCE_ENV = "JOBSECRETS_AUDIENCE"
#: A token file larger than this is no token (a JWT is a few KiB).
_MAX_TOKEN_FILE = 1 << 20


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
        claims = jsonsafe.loads(raw)
    except (binascii.Error, ValueError):
        # ``from None``: the original exception may quote the undecodable text.
        raise IdentityError("the identity token's payload is not base64url JSON") from None
    if not isinstance(claims, dict):
        raise IdentityError("the identity token's payload is not a JSON object")
    return claims


def public_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only the non-secret claims roles bind on (see :data:`PUBLIC_CLAIMS`), sorted by name."""
    return {key: claims[key] for key in sorted(claims) if key in PUBLIC_CLAIMS}


def expiry_problem(
    claims: Mapping[str, Any], *, skew: float = DEFAULT_CLOCK_SKEW, now: float | None = None
) -> str | None:
    """Say why a token is (about to be) unusable, or return ``None`` when it is fine.

    A token whose ``exp`` lies within ``skew`` seconds counts as expired: the secret store's
    clock may be that far ahead of ours. A token without ``exp``, or with one that is no date
    (``-1e300``), is accepted: the store decides.
    """
    exp = unix_time(claims.get("exp"))
    if exp is None:
        return None
    now = time.time() if now is None else now
    if exp <= now:
        return f"token expired at {iso_utc(exp)}"
    if exp - now <= skew:
        return (
            f"token expires at {iso_utc(exp)}, within the "
            f"{format_duration(skew)} clock-skew tolerance"
        )
    return None


@dataclass
class _Cached:
    token: str
    claims: dict[str, Any]


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
        self.platform = detect(self._env).name
        self._source = self._pick_source()

    @property
    def kind(self) -> str:
        """``github``, ``gitlab``, ``file``, ``env`` or ``none``."""
        return self._source.kind

    def _pick_source(self) -> TokenSource:
        cfg, env = self.config, self._env
        kind = cfg.provider
        if kind == "auto":
            # An explicit file/variable in the spec wins over what the platform would do,
            # except that on GitLab a variable is just the id_tokens name to read.
            detected = detect(env)
            if cfg.file:
                kind = "file"
            elif detected.token_in_variable or not cfg.variable:
                return detected.token_source(cfg.variable, cfg.audience, env)
            else:
                kind = "env"
        if kind in ("github", "gitlab"):
            platform = next(p for p in all_platforms() if p.name == kind)
            return platform.token_source(cfg.variable, cfg.audience, env)
        if kind == "env":
            name = cfg.variable or ""
            return TokenSource(
                "env",
                f"environment variable ${name}",
                missing="" if env.get(name) else f"${name} is not set or empty",
                hint=f"export {name} with the OIDC token, or change 'identity.variable'",
                variable=name,
            )
        path = cfg.file or ""
        return TokenSource(
            "file", f"token file {path}", hint="check 'identity.file' in the spec", path=path
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
        if source.request is not None:
            token = source.request(audience, self.config.timeout, self._clock, self._sleep)
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
        if source.path:
            path = source.path
            # Re-read on every fetch: projected tokens (Kubernetes) are rotated in place. A FIFO
            # or a device named there must not block or be read without end.
            raw = read_regular(path, _MAX_TOKEN_FILE)
            if raw is None:
                raise IdentityError(
                    f"cannot read token file {path}: missing, unreadable, not a regular file or "
                    f"over {_MAX_TOKEN_FILE // 1024} KiB",
                    hint=source.hint,
                )
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                raise IdentityError(f"token file {path} is empty", hint=source.hint)
            return text
        return self._env[source.variable].strip()


def _audience_matches(aud: object, audience: str) -> bool:
    if isinstance(aud, str):
        return aud == audience
    if isinstance(aud, list):
        return audience in aud
    return False
