"""The lease ledger: everything with a lifetime that jobsecrets obtained for a job, and how it ends.

While ``run`` is alive a :class:`Renewer` thread renews renewable leases and tokens before they expire.
When the job ends :meth:`Ledger.revoke_all` revokes every lease, then every token jobsecrets obtained
(a token the user supplied is never revoked). For ``export``, the ledger is written to a state file that
``jobsecrets revoke`` reads in a later step.

The state file holds lease ids, backend settings and the tokens jobsecrets itself obtained, so a later
process can revoke them. It holds no secret *value*. It is created 0600 in a 0700 directory, and the
tokens in it are short-lived and revoked (and the file removed) by ``revoke``.
"""

from __future__ import annotations

__all__ = ["STATE_VERSION", "Ledger", "Renewer", "RevokeReport", "default_state_path", "load_state"]

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .backends.base import Backend, BackendContext, Lease, TokenRecord
from .backends.registry import get_backend_class
from .errors import ConfigError, JobSecretsError, RevokeError

STATE_VERSION = 1


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
    """What a revocation did: counts and the failures (lease ids / accessors, never values)."""

    leases_revoked: int = 0
    tokens_revoked: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def summary(self) -> str:
        """One line for the log."""
        text = f"revoked {self.leases_revoked} lease(s) and {self.tokens_revoked} token(s)"
        if self.failures:
            text += f"; {len(self.failures)} failure(s): " + "; ".join(self.failures)
        return text


class Ledger:
    """Leases and tokens obtained for one job, with the live backends that can renew and revoke them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.leases: dict[str, Lease] = {}
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

    def add_backend(self, backend: Backend) -> None:
        """Track a backend (its token, once it signed in, is revoked at the end)."""
        with self._lock:
            self.backends[backend.name] = backend
            self.backend_types[backend.name] = backend.type_name
            self.backend_options[backend.name] = dict(backend.options)

    def add_lease(self, lease: Lease) -> None:
        """Record a lease the moment it is obtained, so a failure later still revokes it."""
        with self._lock:
            self.leases[lease.lease_id] = lease

    def add_file(self, path: str) -> None:
        """Record a secret file to remove when the job ends."""
        with self._lock:
            self.files.append(path)

    def tokens(self) -> list[TokenRecord]:
        """The tokens jobsecrets obtained (user-supplied ones are not listed), each once."""
        records: dict[str, TokenRecord] = {}
        for backend in self.backends.values():
            record = backend.token_record()
            if record is not None:
                records.setdefault(record.token, record)
        for record in self.recorded_tokens:
            records.setdefault(record.token, record)
        return list(records.values())

    def is_empty(self) -> bool:
        """True when there is nothing to revoke or remove."""
        return not self.leases and not self.tokens() and not self.files

    # ---- renewal -------------------------------------------------------------------------------

    def renew_due(self, now: float | None = None, fraction: float = 2 / 3) -> list[str]:
        """Renew each renewable lease past ``fraction`` of its TTL; returns failure messages."""
        now = time.time() if now is None else now
        failures = []
        for lease in list(self.leases.values()):
            if not lease.renewable or lease.ttl <= 0:
                continue
            if now < lease.obtained_at + lease.ttl * fraction:
                continue
            backend = self.backends.get(lease.backend)
            if backend is None:
                continue
            increment = _increment(backend)
            try:
                renewed = backend.renew_lease(lease, increment or lease.ttl)
            except JobSecretsError as error:
                failures.append(f"lease {lease.lease_id}: {error.message}")
                continue
            with self._lock:
                self.leases[lease.lease_id] = renewed
        for backend in list(self.backends.values()):
            record = backend.token_record()
            if record is None or not record.renewable or record.ttl <= 0:
                continue
            if now >= record.obtained_at + record.ttl * fraction:
                try:
                    backend.renew_token()
                except JobSecretsError as error:
                    failures.append(f"token of {backend.name!r}: {error.message}")
        return failures

    def next_due(self, fraction: float = 2 / 3) -> float | None:
        """Seconds until the next renewal is due, or ``None`` if nothing is renewable."""
        due = []
        for lease in self.leases.values():
            if lease.renewable and lease.ttl > 0:
                due.append(lease.obtained_at + lease.ttl * fraction)
        for backend in self.backends.values():
            record = backend.token_record()
            if record is not None and record.renewable and record.ttl > 0:
                due.append(record.obtained_at + record.ttl * fraction)
        if not due:
            return None
        return max(0.0, min(due) - time.time())

    # ---- the end ---------------------------------------------------------------------------------

    def revoke_all(self) -> RevokeReport:
        """Revoke every lease, then every token we obtained, and remove secret files. Never raises."""
        report = RevokeReport()
        needed = {lease.backend for lease in self.leases.values()}
        needed |= {record.backend for record in self.recorded_tokens}
        for name, record in list(self.pending_resume.items()):
            if name not in needed:
                # Nothing of this backend's to revoke: do not sign in again just to do nothing.
                del self.pending_resume[name]
                continue
            try:
                self.backends[name].resume(record)
            except JobSecretsError as error:
                report.failures.append(f"reconnect {name!r}: {error.message}")
            del self.pending_resume[name]
        for path in list(self.files):
            with contextlib.suppress(FileNotFoundError):
                _shred(path)
            self.files.remove(path)
        for lease in list(self.leases.values()):
            backend = self.backends.get(lease.backend)
            owns_token = backend is not None and backend.token_record() is not None
            try:
                if backend is None:
                    raise RevokeError(f"no backend {lease.backend!r}")
                backend.revoke_lease(lease.lease_id)
                report.leases_revoked += 1
            except JobSecretsError as error:
                if owns_token:
                    # Revoking our own token below revokes every lease it created, so a token that may
                    # not call sys/leases/revoke still ends all of them.
                    report.leases_revoked += 1
                else:
                    report.failures.append(f"lease {lease.lease_id}: {error.message}")
                    continue
            with self._lock:
                self.leases.pop(lease.lease_id, None)
        for record in self.tokens():
            backend = self.backends.get(record.backend)
            try:
                if backend is None:
                    raise RevokeError(f"no backend {record.backend!r}")
                backend.revoke_token(record)
                report.tokens_revoked += 1
                if record in self.recorded_tokens:
                    self.recorded_tokens.remove(record)
            except JobSecretsError as error:
                label = record.accessor or record.backend
                report.failures.append(f"token {label}: {error.message}")
        return report

    def close(self) -> None:
        """Close every backend's connections."""
        for backend in self.backends.values():
            with contextlib.suppress(Exception):
                backend.close()

    # ---- state file ------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The JSON-able state: backend settings, leases, our tokens and files. No secret value."""
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
            "tokens": [asdict(record) for record in self.tokens()],
            "leases": [asdict(lease) for lease in self.leases.values()],
            "files": list(self.files),
        }

    def write_state(self, path: str, merge: bool = True) -> None:
        """Write (or merge into) the state file, 0600 in a 0700 directory, atomically."""
        state = self.to_state()
        if merge and os.path.exists(path):
            # A second `export` in the same job adds to what the first one recorded.
            previous = _read_state(path)
            for name, entry in previous.get("backends", {}).items():
                state["backends"].setdefault(name, entry)
            known = {lease["lease_id"] for lease in state["leases"]}
            state["leases"] += [
                lease for lease in previous.get("leases", []) if lease["lease_id"] not in known
            ]
            state["files"] = sorted(set(state["files"]) | set(previous.get("files", [])))
            known_tokens = {t["token"] for t in state["tokens"]}
            state["tokens"] += [
                t for t in previous.get("tokens", []) if t["token"] not in known_tokens
            ]
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
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
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read state file {path}: {type(error).__name__}") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ConfigError(
            f"state file {path} is not a jobsecrets state file (version {STATE_VERSION})"
        )
    return state


def load_state(
    path: str,
    env: Mapping[str, str],
    factory: Callable[[str, str, dict[str, Any]], Backend] | None = None,
) -> Ledger | None:
    """Rebuild a ledger from a state file (backends reconnect when revoking); ``None`` if there is none."""
    try:
        state = _read_state(path)
    except FileNotFoundError:
        return None
    ledger = Ledger()
    ledger.spec_dir = str(state.get("spec_dir") or ".")
    context = BackendContext(env=env, spec_dir=ledger.spec_dir)
    for name, entry in state.get("backends", {}).items():
        options = dict(entry.get("options") or {})
        if factory is not None:
            backend = factory(name, entry["type"], options)
        else:
            backend = get_backend_class(entry["type"])(name, options, context)
        ledger.add_backend(backend)
        ledger.pending_resume[name] = None
    for token in state.get("tokens", []):
        record = TokenRecord(**token)
        ledger.recorded_tokens.append(record)
        if ledger.pending_resume.get(record.backend) is None:
            # Reconnect with a token we obtained: it can revoke the leases it created.
            ledger.pending_resume[record.backend] = record
    for lease in state.get("leases", []):
        ledger.add_lease(Lease(**lease))
    for file in state.get("files", []):
        ledger.files.append(str(file))
    return ledger
