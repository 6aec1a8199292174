"""The lease ledger: everything with a lifetime that jobsecrets obtained for a job, and how it ends.

While ``run`` is alive a :class:`Renewer` thread renews renewable leases and tokens before they expire.
When the job ends :meth:`Ledger.revoke_all` revokes every lease, then every token jobsecrets obtained
(a token the user supplied is never revoked). For ``export``, the ledger is written to a state file that
``jobsecrets revoke`` reads in a later step.

The state file holds lease ids, backend settings and the tokens jobsecrets itself obtained, so a later
process can revoke them. It holds no secret *value*. How the tokens in it are protected:

* the file is created 0600 (atomically, never world-readable for an instant) in a directory that only
  its owner may write to; the default directory is a per-user ``jobsecrets-UID`` created 0700;
* the tokens are the job's own short-lived login tokens (never a token the user supplied), and
  ``revoke`` revokes them and removes the file;
* optionally, when ``$JOBSECRETS_STATE_KEY`` is set (by a CI wrapper that can hand a random key from
  its main step to its post step), each token is encrypted with Fernet (AES-128-CBC + HMAC-SHA256,
  from ``cryptography``) under a key derived from it with HKDF-SHA256: a copy of the file alone
  (an artifact upload, a cache, a backup of the workspace) then revokes nothing and signs nobody in.
"""

from __future__ import annotations

__all__ = [
    "STATE_KEY_ENV",
    "STATE_VERSION",
    "Ledger",
    "Renewer",
    "RevokeReport",
    "StateCipher",
    "default_state_path",
    "load_state",
    "private_directory",
]

import base64
import contextlib
import dataclasses
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .backends.base import Backend, BackendContext, Lease, TokenRecord
from .backends.registry import get_backend_class
from .errors import AccessDenied, ConfigError, JobSecretsError, RevokeError

STATE_VERSION = 1
STATE_KEY_ENV = "JOBSECRETS_STATE_KEY"
# Fewer characters than this cannot hold the 128 bits of entropy a key needs.
_MIN_KEY_LENGTH = 32
_HKDF_INFO = b"jobsecrets state file token v1"

log = logging.getLogger("jobsecrets")


class StateCipher:
    """Encrypts the tokens of a state file under a key from ``$JOBSECRETS_STATE_KEY``.

    Any string of 32+ characters from a good random source is accepted (``openssl rand -hex 32``,
    Node's ``crypto.randomBytes(32).toString('base64')``): it is stretched to a Fernet key with
    HKDF-SHA256, so wrappers need no Fernet-specific encoding. ``cryptography`` is imported only
    here, only when a key is set: it is an optional dependency (``pip install cryptography``).
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < _MIN_KEY_LENGTH:
            raise ConfigError(
                f"${STATE_KEY_ENV} is too short ({len(secret)} characters; at least "
                f"{_MIN_KEY_LENGTH} needed)",
                hint="use a random key, e.g. `openssl rand -hex 32`",
            )
        try:
            from cryptography.fernet import Fernet
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        except ImportError:
            raise ConfigError(
                f"${STATE_KEY_ENV} is set but the 'cryptography' package is not installed",
                hint="pip install cryptography (next to jobsecrets), or unset the key",
            ) from None
        # No salt: the key is already random; HKDF only turns it into Fernet's 32 bytes.
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            secret.encode("utf-8")
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StateCipher | None:
        """The cipher for ``$JOBSECRETS_STATE_KEY``, or ``None`` when it is not set."""
        secret = env.get(STATE_KEY_ENV, "")
        return cls(secret) if secret else None

    def seal(self, token: str) -> str:
        """Encrypt one token (authenticated; a new random IV each time)."""
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str | None:
        """Decrypt one token; ``None`` when this key did not seal it (or it was tampered with)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            return None


def default_state_path(env: Mapping[str, str]) -> str:
    """Where ``export`` and ``revoke`` keep the state file unless ``--state`` says otherwise.

    ``$JOBSECRETS_STATE`` if set; else ``$RUNNER_TEMP`` (GitHub, removed after the job), else
    ``$CI_BUILDS_DIR``/``$CI_PROJECT_DIR``'s sibling temp (GitLab) or the system temp directory,
    in a per-user ``jobsecrets-UID`` directory created 0700.
    """
    explicit = env.get("JOBSECRETS_STATE")
    if explicit:
        return explicit
    base = env.get("RUNNER_TEMP") or env.get("TMPDIR") or tempfile.gettempdir()
    if env.get("GITLAB_CI") == "true" and env.get("CI_PROJECT_DIR"):
        # after_script runs in a new shell, in the same build directory: keep the state beside it.
        base = env["CI_PROJECT_DIR"] + ".tmp"
    job = env.get("GITHUB_RUN_ID", "") + env.get("GITHUB_JOB", "") + env.get("CI_JOB_ID", "")
    suffix = f"-{job}" if job else ""
    return os.path.join(base, f"jobsecrets-{os.getuid()}", f"state{suffix}.json")


@dataclass
class RevokeReport:
    """What a revocation did: counts and the failures (lease ids / accessors, never values).

    ``leases_with_token`` counts leases the store would not let us revoke one by one (Vault's
    default policy has no ``sys/leases/revoke``) that ended because the token which created them
    was revoked: Vault revokes a token's leases with it, in the background, within moments.
    """

    leases_revoked: int = 0
    tokens_revoked: int = 0
    leases_with_token: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def summary(self) -> str:
        """One line for the log."""
        text = f"revoked {self.leases_revoked} lease(s) and {self.tokens_revoked} token(s)"
        if self.leases_with_token:
            text += f"; {self.leases_with_token} more lease(s) ended with their token"
        if self.failures:
            text += f"; {len(self.failures)} failure(s): " + "; ".join(self.failures)
        return text


def _token_key(record: TokenRecord) -> str:
    """How a token is told apart from others without showing it: its accessor when it has one."""
    return record.accessor or record.token


class Ledger:
    """Leases and tokens obtained for one job, with the live backends that can renew and revoke them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.leases: dict[str, Lease] = {}
        # lease id -> accessor of the token that obtained it ("" when the user supplied the token).
        self.lease_owner: dict[str, str] = {}
        self.backends: dict[str, Backend] = {}
        self.backend_types: dict[str, str] = {}
        self.backend_options: dict[str, dict[str, Any]] = {}
        self.files: list[str] = []
        # Backends rebuilt from a state file, to reconnect (with the recorded token) before revoking.
        self.pending_resume: dict[str, TokenRecord | None] = {}
        # Relative paths in backend options (ca_cert) are relative to the spec file's directory.
        self.spec_dir = "."
        # Tokens recorded in a state file (several `export`s may have signed in more than once).
        self.recorded_tokens: list[TokenRecord] = []
        # Encrypted token entries of a state file that the current key cannot open: kept verbatim
        # so that `revoke` with the right key can still end them.
        self.unreadable_tokens: list[dict[str, Any]] = []
        # Entries of a state file that could not be understood (a damaged file): reported as
        # failures by revoke_all, so `revoke` says so instead of failing before revoking the rest.
        self.unusable: list[str] = []
        # Leases/tokens that renewing no longer extends (max TTL reached), and renewal backoff.
        self._no_renew: set[str] = set()
        self._retry_at: dict[str, float] = {}

    def add_backend(self, backend: Backend) -> None:
        """Track a backend (its token, once it signed in, is revoked at the end)."""
        with self._lock:
            self.backends[backend.name] = backend
            self.backend_types[backend.name] = backend.type_name
            self.backend_options[backend.name] = dict(backend.options)

    def add_lease(self, lease: Lease) -> None:
        """Record a lease the moment it is obtained, so a failure later still revokes it."""
        backend = self.backends.get(lease.backend)
        record = backend.token_record() if backend is not None else None
        with self._lock:
            self.leases[lease.lease_id] = lease
            self.lease_owner[lease.lease_id] = _token_key(record) if record is not None else ""

    def add_file(self, path: str) -> None:
        """Record a secret file to remove when the job ends."""
        with self._lock:
            self.files.append(path)

    def tokens(self) -> list[TokenRecord]:
        """The tokens jobsecrets obtained (user-supplied ones are not listed), each once."""
        records: dict[str, TokenRecord] = {}
        for backend in list(self.backends.values()):
            record = backend.token_record()
            if record is not None:
                records.setdefault(_token_key(record), record)
        for record in self.recorded_tokens:
            records.setdefault(_token_key(record), record)
        return list(records.values())

    def is_empty(self) -> bool:
        """True when there is nothing to revoke or remove."""
        return (
            not self.leases and not self.tokens() and not self.files and not self.unreadable_tokens
        )

    def _forget_lease(self, lease_id: str) -> None:
        with self._lock:
            self.leases.pop(lease_id, None)
            self.lease_owner.pop(lease_id, None)

    # ---- renewal -------------------------------------------------------------------------------

    def _renewal_failed(self, key: str, ttl: int, now: float) -> None:
        # Retry a few times within the TTL rather than hammering the store every loop.
        self._retry_at[key] = now + max(1.0, min(30.0, ttl / 6))

    def renew_due(self, now: float | None = None, fraction: float = 2 / 3) -> list[str]:
        """Renew each renewable lease and token past ``fraction`` of its TTL.

        Returns messages for the log (lease ids and accessors, never values): failures, and leases
        or tokens that reached their maximum TTL, which renewing cannot extend any further.
        """
        now = time.time() if now is None else now
        messages = []
        for lease in list(self.leases.values()):
            key = lease.lease_id
            if not lease.renewable or lease.ttl <= 0 or key in self._no_renew:
                continue
            if now < max(lease.obtained_at + lease.ttl * fraction, self._retry_at.get(key, 0)):
                continue
            backend = self.backends.get(lease.backend)
            if backend is None:
                continue
            wanted = _increment(backend) or lease.ttl
            try:
                renewed = backend.renew_lease(lease, wanted)
            except Exception as error:
                # Any error, a backend's bug included: an exception leaving the renewer thread
                # would end every later renewal, and the job's leases would expire under it.
                self._renewal_failed(key, lease.ttl, now)
                messages.append(f"cannot renew lease {key}: {_why(error)}")
                continue
            self._retry_at.pop(key, None)
            if renewed.ttl < wanted:
                # The store capped the lease at its max TTL: asking again cannot extend it.
                self._no_renew.add(key)
                messages.append(
                    f"lease {key} reached its maximum TTL: it ends in {renewed.ttl}s "
                    "and cannot be renewed any further"
                )
            with self._lock:
                if key in self.leases:  # not revoked meanwhile
                    self.leases[key] = renewed
        for backend in list(self.backends.values()):
            record = backend.token_record()
            if record is None or not record.renewable or record.ttl <= 0:
                continue
            key = "token:" + _token_key(record)
            if key in self._no_renew:
                continue
            if now < max(record.obtained_at + record.ttl * fraction, self._retry_at.get(key, 0)):
                continue
            label = record.accessor or backend.name
            try:
                backend.renew_token()
            except Exception as error:  # as for leases: the thread must keep running
                self._renewal_failed(key, record.ttl, now)
                messages.append(f"cannot renew the token of {backend.name!r}: {_why(error)}")
                continue
            self._retry_at.pop(key, None)
            renewed_record = backend.token_record()
            if renewed_record is None or renewed_record.ttl < record.ttl:
                self._no_renew.add(key)
                ends = renewed_record.ttl if renewed_record is not None else 0
                messages.append(
                    f"token {label} of {backend.name!r} reached its maximum TTL: it ends in "
                    f"{ends}s, and every lease obtained with it then ends too"
                )
        return messages

    def next_due(self, fraction: float = 2 / 3) -> float | None:
        """Seconds until the next renewal is due, or ``None`` if nothing is renewable."""
        due = []
        for lease in list(self.leases.values()):
            if lease.renewable and lease.ttl > 0 and lease.lease_id not in self._no_renew:
                due.append(
                    max(
                        lease.obtained_at + lease.ttl * fraction,
                        self._retry_at.get(lease.lease_id, 0),
                    )
                )
        for backend in list(self.backends.values()):
            record = backend.token_record()
            if record is None or not record.renewable or record.ttl <= 0:
                continue
            key = "token:" + _token_key(record)
            if key not in self._no_renew:
                due.append(
                    max(record.obtained_at + record.ttl * fraction, self._retry_at.get(key, 0))
                )
        if not due:
            return None
        return max(0.0, min(due) - time.time())

    # ---- the end ---------------------------------------------------------------------------------

    def _resume(self, report: RevokeReport) -> None:
        """Reconnect the backends a state file named, only those with something to revoke."""
        needed = {lease.backend for lease in self.leases.values()}
        needed |= {record.backend for record in self.recorded_tokens}
        for name, record in list(self.pending_resume.items()):
            del self.pending_resume[name]
            if name not in needed:
                # Nothing of this backend's to revoke: do not sign in again just to do nothing.
                continue
            try:
                self.backends[name].resume(record)
            except JobSecretsError as error:
                report.failures.append(f"reconnect {name!r}: {error.message}")

    def revoke_all(self) -> RevokeReport:
        """Revoke every lease, then every token we obtained, and remove secret files. Never raises.

        What could not be revoked stays in the ledger (and so in a rewritten state file) for a retry.
        """
        report = RevokeReport()
        self._resume(report)
        for path in list(self.files):
            try:
                _shred(path)
            except FileNotFoundError:
                pass
            except OSError as error:
                # Leases and tokens must still be revoked: one stuck file must not stop that.
                report.failures.append(f"secret file {path}: cannot remove it ({error.strerror})")
                continue
            self.files.remove(path)
        ours = {_token_key(record): record for record in self.tokens()}
        # Leases the store would not revoke one by one, to end with the token that created them.
        with_token: dict[str, list[Lease]] = {}
        for lease in list(self.leases.values()):
            backend = self.backends.get(lease.backend)
            try:
                if backend is None:
                    raise RevokeError(f"no backend {lease.backend!r}")
                backend.revoke_lease(lease.lease_id)
            except JobSecretsError as error:
                owner = self._owner(lease, ours)
                if owner is not None:
                    if not isinstance(error, AccessDenied):
                        log.info("lease %s: %s; revoking its token ends it", lease.lease_id, error)
                    with_token.setdefault(owner, []).append(lease)
                else:
                    report.failures.append(f"lease {lease.lease_id}: {error.message}")
                continue
            report.leases_revoked += 1
            self._forget_lease(lease.lease_id)
        for key, record in ours.items():
            backend = self.backends.get(record.backend)
            try:
                if backend is None:
                    raise RevokeError(f"no backend {record.backend!r}")
                backend.revoke_token(record)
            except JobSecretsError as error:
                report.failures.append(
                    f"token {record.accessor or record.backend}: {error.message}"
                )
                for lease in with_token.pop(key, []):
                    report.failures.append(
                        f"lease {lease.lease_id}: not revoked (denied, and its token could not "
                        "be revoked either)"
                    )
                continue
            report.tokens_revoked += 1
            if record in self.recorded_tokens:
                self.recorded_tokens.remove(record)
            for lease in with_token.pop(key, []):
                report.leases_with_token += 1
                self._forget_lease(lease.lease_id)
        report.failures.extend(self.unusable)
        for entry in self.unreadable_tokens:
            report.failures.append(
                f"token {entry.get('accessor') or entry.get('backend', '?')}: encrypted in the "
                f"state file and ${STATE_KEY_ENV} does not open it"
            )
        return report

    def _owner(self, lease: Lease, ours: Mapping[str, TokenRecord]) -> str | None:
        """The key of our token that obtained ``lease`` (so revoking it ends the lease), if any."""
        owner = self.lease_owner.get(lease.lease_id)
        if owner:
            return owner if owner in ours else None
        if owner is None:
            # A state file from before owners were recorded: any token of ours on that backend.
            for key, record in ours.items():
                if record.backend == lease.backend:
                    return key
        return None

    def close(self) -> None:
        """Close every backend's connections."""
        for backend in self.backends.values():
            with contextlib.suppress(Exception):
                backend.close()

    # ---- state file ------------------------------------------------------------------------------

    def to_state(self, cipher: StateCipher | None = None) -> dict[str, Any]:
        """The JSON-able state: backend settings, leases, our tokens and files. No secret value.

        With ``cipher`` each token is stored encrypted (``token_sealed``) instead of as-is.
        """
        tokens: list[dict[str, Any]] = []
        for record in self.tokens():
            entry = asdict(record)
            if cipher is not None:
                entry["token_sealed"] = cipher.seal(entry.pop("token"))
            tokens.append(entry)
        return {
            "version": STATE_VERSION,
            "created": time.time(),
            "spec_dir": os.path.abspath(self.spec_dir),
            "backends": {
                name: {
                    "type": self.backend_types[name],
                    "options": self.backend_options[name],
                }
                for name in self.backends
            },
            "tokens": tokens + [dict(entry) for entry in self.unreadable_tokens],
            "leases": [
                {**asdict(lease), "token_accessor": self.lease_owner.get(lease.lease_id, "")}
                for lease in self.leases.values()
            ],
            "files": list(self.files),
        }

    def write_state(self, path: str, merge: bool = True, cipher: StateCipher | None = None) -> None:
        """Write (or merge into) the state file, 0600 in a private directory, atomically."""
        state = self.to_state(cipher)
        if merge:
            try:
                previous = _read_state(path)
            except FileNotFoundError:
                previous = None
            if previous is not None:
                _merge(state, previous)
        directory = os.path.dirname(os.path.abspath(path))
        private_directory(directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=1)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _entry_key(entry: Mapping[str, Any]) -> str:
    return str(entry.get("accessor") or entry.get("token") or entry.get("token_sealed") or "")


def _merge(state: dict[str, Any], previous: Mapping[str, Any]) -> None:
    """Add what an earlier ``export`` of the same job recorded to ``state`` (in place).

    Two exports may use different specs that name different servers alike (``vault``): the earlier
    entry is then kept under a new name, and its leases and tokens follow it, so each is revoked
    against the server that issued it.
    """
    renamed: dict[str, str] = {}
    for name, entry in previous.get("backends", {}).items():
        current = state["backends"].get(name)
        if current is None or current == entry:
            state["backends"].setdefault(name, entry)
            continue
        index = 2
        while f"{name}~{index}" in state["backends"]:
            index += 1
        renamed[name] = f"{name}~{index}"
        state["backends"][renamed[name]] = entry

    def moved(item: Any) -> Any:
        if isinstance(item, dict) and item.get("backend") in renamed:
            return {**item, "backend": renamed[item["backend"]]}
        return item

    known = {lease["lease_id"] for lease in state["leases"]}
    state["leases"] += [
        moved(lease)
        for lease in previous.get("leases", [])
        if not isinstance(lease, dict) or lease.get("lease_id") not in known
    ]
    state["files"] = sorted(set(state["files"]) | set(previous.get("files", [])))
    known_tokens = {_entry_key(t) for t in state["tokens"]}
    state["tokens"] += [
        moved(t) for t in previous.get("tokens", []) if _entry_key(t) not in known_tokens
    ]


def private_directory(directory: str) -> None:
    """Create ``directory`` 0700 if needed and refuse one where others could swap our files.

    The default directory (``jobsecrets-UID`` under a shared temp dir) could have been created
    beforehand by another user; a sticky, world-writable directory (``/tmp``) is fine, since nobody
    else can replace a file we own there.
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"state directory {directory} is not a directory")
    if os.getuid() != 0 and info.st_uid not in (os.getuid(), 0):
        raise ConfigError(
            f"state directory {directory} belongs to another user",
            hint="pass --state with a path in a directory of your own",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"state directory {directory} is writable by other users",
            hint="pass --state with a path in a directory of your own (e.g. $RUNNER_TEMP)",
        )


class Renewer:
    """A daemon thread that renews the ledger's leases and tokens until stopped.

    Renewal failures are reported through ``on_failure`` (messages carry lease ids, never values);
    the job keeps running, since a lease that cannot be renewed still lives until its TTL ends.
    """

    def __init__(
        self,
        ledger: Ledger,
        on_failure: Callable[[str], None] | None = None,
        fraction: float = 2 / 3,
        max_sleep: float = 60.0,
    ) -> None:
        self.ledger = ledger
        self.on_failure = on_failure
        self.fraction = fraction
        self.max_sleep = max_sleep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobsecrets-renewer", daemon=True)

    def start(self) -> Renewer:
        """Start renewing; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for the thread (a renewal under way finishes first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = self.ledger.next_due(self.fraction)
            wait = self.max_sleep if due is None else min(self.max_sleep, max(0.2, due))
            if self._stop.wait(wait):
                return
            for message in self.ledger.renew_due(fraction=self.fraction):
                if self.on_failure is not None:
                    self.on_failure(message)


def _increment(backend: Backend) -> int | None:
    value = backend.options.get("renew_increment")
    if value is None:
        return None
    from .durations import parse_duration

    return parse_duration(value)


def _shred(path: str) -> None:
    """Overwrite then remove a secret file; overwriting is best effort (copy-on-write filesystems)."""
    try:
        size = os.path.getsize(path)
        with open(path, "r+b", buffering=0) as handle:
            handle.write(b"\0" * size)
            os.fsync(handle.fileno())
    except OSError:
        pass
    os.unlink(path)
    # The private directory the files were written to goes too once it is empty.
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(path))


def _read_state(path: str) -> dict[str, Any]:
    """Read a state file; raises FileNotFoundError when there is none."""
    try:
        # O_NOFOLLOW: a symlink planted at our path must not make us read someone else's file.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ConfigError(f"cannot open state file {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if os.getuid() != 0 and info.st_uid != os.getuid():
            raise ConfigError(f"state file {path} belongs to another user; not using it")
        with os.fdopen(fd, encoding="utf-8") as handle:
            fd = -1
            state = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read state file {path}: {type(error).__name__}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ConfigError(
            f"state file {path} is not a jobsecrets state file (version {STATE_VERSION})"
        )
    return state


_LEASE_FIELDS = {f.name for f in dataclasses.fields(Lease)}
_TOKEN_FIELDS = {f.name for f in dataclasses.fields(TokenRecord)}


def load_state(
    path: str,
    env: Mapping[str, str],
    factory: Callable[[str, str, dict[str, Any]], Backend] | None = None,
) -> Ledger | None:
    """Rebuild a ledger from a state file (backends reconnect when revoking); ``None`` if there is none.

    Encrypted tokens are opened with ``$JOBSECRETS_STATE_KEY`` from ``env``; those it cannot open
    are kept aside (reported as failures by :meth:`Ledger.revoke_all`, written back for a retry).
    """
    try:
        state = _read_state(path)
    except FileNotFoundError:
        return None
    cipher = StateCipher.from_env(env)
    ledger = Ledger()
    ledger.spec_dir = str(state.get("spec_dir") or ".")
    context = BackendContext(env=env, spec_dir=ledger.spec_dir)
    # A damaged entry is skipped and reported, never fatal: everything else must still be revoked.
    for name, entry in _items(state.get("backends"), ledger, "backends"):
        try:
            options = dict(entry.get("options") or {})
            if factory is not None:
                backend = factory(name, entry["type"], options)
            else:
                backend = get_backend_class(entry["type"])(name, options, context)
        except (JobSecretsError, KeyError, TypeError, ValueError, AttributeError) as error:
            ledger.unusable.append(f"backend {name!r}: unusable state entry ({_why(error)})")
            continue
        ledger.add_backend(backend)
        ledger.pending_resume[name] = None
    for entry in _entries(state.get("tokens"), ledger, "tokens"):
        token = entry.get("token")
        if token is None and "token_sealed" in entry and cipher is not None:
            token = cipher.open(str(entry["token_sealed"]))
        if token is None:
            ledger.unreadable_tokens.append(dict(entry))
            continue
        fields = {k: v for k, v in entry.items() if k in _TOKEN_FIELDS}
        fields["token"] = token
        try:
            record = TokenRecord(**fields)
        except TypeError:
            # Named by accessor only: the entry holds the token itself.
            ledger.unusable.append(
                f"token {entry.get('accessor') or '?'}: unusable state entry (fields missing)"
            )
            continue
        ledger.recorded_tokens.append(record)
        if ledger.pending_resume.get(record.backend) is None:
            # Reconnect with a token we obtained: it can revoke the leases it created.
            ledger.pending_resume[record.backend] = record
    for entry in _entries(state.get("leases"), ledger, "leases"):
        try:
            lease = Lease(**{k: v for k, v in entry.items() if k in _LEASE_FIELDS})
        except TypeError:
            ledger.unusable.append(
                f"lease {entry.get('lease_id') or '?'}: unusable state entry (fields missing)"
            )
            continue
        ledger.leases[lease.lease_id] = lease
        if "token_accessor" in entry:
            ledger.lease_owner[lease.lease_id] = str(entry["token_accessor"] or "")
    files = state.get("files", [])
    for file in files if isinstance(files, list) else []:
        ledger.files.append(str(file))
    return ledger


def _why(error: BaseException) -> str:
    return error.message if isinstance(error, JobSecretsError) else type(error).__name__


def _items(value: Any, ledger: Ledger, what: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The (name, entry) pairs of a state file mapping, skipping (and reporting) odd ones."""
    if value is None:
        return []
    if not isinstance(value, dict):
        ledger.unusable.append(f"state file: {what!r} is not a mapping")
        return []
    pairs: list[tuple[str, Mapping[str, Any]]] = []
    for name, entry in value.items():
        if isinstance(entry, dict):
            pairs.append((str(name), entry))
        else:
            ledger.unusable.append(f"state file: {what} entry {str(name)!r} is not a mapping")
    return pairs


def _entries(value: Any, ledger: Ledger, what: str) -> list[Mapping[str, Any]]:
    """The entries of a state file list, skipping (and reporting) odd ones."""
    if value is None:
        return []
    if not isinstance(value, list):
        ledger.unusable.append(f"state file: {what!r} is not a list")
        return []
    entries: list[Mapping[str, Any]] = [entry for entry in value if isinstance(entry, dict)]
    if len(entries) < len(value):
        ledger.unusable.append(f"state file: {len(value) - len(entries)} odd {what} entry(ies)")
    return entries
