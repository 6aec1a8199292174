"""Plan, then resolve: which variables come from where, and fetching them in about one round trip.

Resolution signs in to every backend at once, expands prefix selections, groups variables by
backend+path so each path is read once (one lease, whatever the number of fields), reads every backend
concurrently, records each lease in the ledger the moment it exists, and only then turns documents into
values. Any failure of a required variable fails the whole resolution: nothing partial is returned, and
the caller revokes what the ledger holds.
"""

from __future__ import annotations

__all__ = ["PlanEntry", "Resolution", "ResolvedVar", "plan", "resolve"]

import functools
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .backends.base import Backend, BackendContext, Document, Lease, ReadRequest
from .backends.registry import get_backend_class
from .errors import BackendError, ConfigError, JobSecretsError, SecretNotFound
from .failures import combine
from .fields import FieldMissing, extract, to_text
from .leases import Ledger
from .names import CONTROL_CHARS, check_name, to_env_name
from .spec import BackendSpec, SecretSpec, Spec

log = logging.getLogger("jobsecrets")


@dataclass(frozen=True)
class PlanEntry:
    """One variable of the plan, as ``plan`` shows it: no value, no network."""

    name: str
    ref: str
    backend: str
    backend_type: str
    path: str
    field: str | None
    auth: str
    file: bool
    optional: bool
    prefix: bool


def plan(spec: Spec) -> list[PlanEntry]:
    """The plan of a spec: one entry per variable (a prefix selection is one entry)."""
    entries = []
    for secret in spec.secrets:
        backend = spec.backends[secret.backend]
        cls = get_backend_class(backend.type)
        entries.append(
            PlanEntry(
                name=secret.name,
                ref=secret.ref.raw,
                backend=backend.name,
                backend_type=backend.type,
                path=secret.ref.path,
                field=secret.ref.field,
                auth=cls.describe_auth(backend.options),
                file=secret.file,
                optional=secret.optional,
                prefix=secret.is_prefix,
            )
        )
    return entries


@dataclass(frozen=True)
class ResolvedVar:
    """A resolved variable: its value and where it came from (for summaries and audit; never shown)."""

    name: str
    value: str | bytes = field(repr=False)
    backend: str
    path: str
    ref: str
    file: str | None = None
    version: str | None = None
    lease_id: str | None = None
    lease_ttl: int | None = None
    document: Document | None = field(default=None, repr=False)


@dataclass
class Resolution:
    """Everything a job gets: the variables (values or file paths) and the extra credentials."""

    variables: list[ResolvedVar] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """Name -> what the environment variable holds (the file path for ``file: true``)."""
        result = {}
        for var in self.variables:
            if var.file is not None:
                result[var.name] = var.file
            else:
                value = var.value
                result[var.name] = (
                    value if isinstance(value, str) else value.decode("utf-8", "replace")
                )
        return result

    def secret_values(self) -> list[bytes]:
        """Every value to mask, as bytes (file contents too: a job may cat the file)."""
        values = []
        for var in self.variables:
            value = var.value
            values.append(value if isinstance(value, bytes) else value.encode("utf-8"))
        return values


def _new_backend(spec: BackendSpec, context: BackendContext) -> Backend:
    cls = get_backend_class(spec.type)
    return cls(spec.name, spec.options, context)


def resolve(
    spec: Spec,
    context: BackendContext,
    ledger: Ledger,
    *,
    files_dir: str | None = None,
    backend_factory: Callable[[BackendSpec, BackendContext], Backend] = _new_backend,
) -> Resolution:
    """Fetch every variable of ``spec``. Leases are recorded in ``ledger`` as they are obtained.

    Raises the first error (in spec order) of a required variable, with every failed variable named;
    the caller must then revoke ``ledger``.
    """
    wanted = {s.backend for s in spec.secrets}
    # A backend that only hands out credentials (AWS `credentials: true`) is wanted with no secret.
    wanted |= {name for name, b in spec.backends.items() if b.options.get("credentials") is True}
    backends: dict[str, Backend] = {}
    for name in sorted(wanted):
        backend = backend_factory(spec.backends[name], context)
        backends[name] = backend
        ledger.add_backend(backend)

    # The overall deadline bounds sign-in and reads together. Backends see it in the context too:
    # AWS retries never sleep past it, and ``context.remaining()`` bounds a request by it.
    if context.deadline is None:
        context.deadline = time.monotonic() + spec.settings.deadline
    late = _LateResults(spec.settings.deadline)

    # One pipeline per backend (sign in, expand prefixes, read), all running at once: a fast store
    # never waits for a slow one to finish signing in (boto3's client alone costs ~0.1 s of CPU).
    expanded: dict[str, list[SecretSpec]] = {}
    groups: dict[str, dict[tuple[str, str, str], ReadRequest]] = {}
    documents: dict[tuple[str, tuple[str, str, str]], Document | JobSecretsError] = {}
    stage: dict[str, str] = {}

    def pipeline(name: str) -> None:
        backend = backends[name]
        stage[name] = "signing in to"
        backend.login()
        if late.abandoned():
            # Signed in after the deadline, maybe after the caller revoked the ledger: end it here.
            late.revoke_token(backend)
            return
        stage[name] = "listing prefixes of"
        mine = [s for s in spec.secrets if s.backend == name]
        for secret in mine:
            expanded[secret.name] = (
                _expand_prefix(spec, secret, backend) if secret.is_prefix else [secret]
            )
        # Group: one ReadRequest per path + params + options, shared by every variable naming it.
        per_backend: dict[tuple[str, str, str], ReadRequest] = {}
        for secret in (member for s in mine for member in expanded[s.name]):
            request = secret.read_request()
            existing = per_backend.get(request.key)
            if existing is not None:
                request = ReadRequest(
                    existing.path,
                    existing.params,
                    existing.options,
                    (*existing.variables, secret.name),
                    existing.ref,
                )
            per_backend[request.key] = request
        groups[name] = per_backend
        if not per_backend:
            return
        stage[name] = "reading"
        requests = list(per_backend.values())
        results = backend.read_many(requests, max_workers=spec.settings.concurrency)
        leases = [r.lease for r in results if isinstance(r, Document) and r.lease is not None]
        if not late.record(backend, leases, ledger):
            return
        for request, result in zip(requests, results, strict=True):
            documents[(name, request.key)] = result

    def pending(names: list[str]) -> str:
        parts = []
        for name in names:
            # The store's address, so the message says which server to look at.
            address = getattr(backends[name], "address", "") or getattr(
                backends[name], "_endpoint", ""
            )
            at = f" at {address}" if address else ""
            trouble = getattr(backends[name], "last_trouble", None)
            if trouble:
                at += f" (its last answer: {trouble})"
            what = stage.get(name, "signing in to")
            if what == "reading":
                variables = [v for r in groups[name].values() for v in r.variables]
                shown = ", ".join(variables[:5])
                if len(variables) > 5:
                    shown += f" and {len(variables) - 5} more"
                parts.append(f"reading {len(groups[name])} path(s) of {name!r}{at} ({shown})")
            else:
                parts.append(f"{what} {name!r}{at}")
        return "; ".join(parts)

    _gather(
        {name: functools.partial(pipeline, name) for name in backends},
        context.deadline,
        late,
        pending,
        max_workers=max(1, min(spec.settings.concurrency, len(backends))),
    )
    secrets = [member for s in spec.secrets for member in expanded[s.name]]
    _check_expanded_names(spec, secrets)

    resolution = Resolution()
    errors: list[JobSecretsError] = []
    for secret in secrets:
        request_key = secret.read_request().key
        result = documents[(secret.backend, request_key)]
        if isinstance(result, JobSecretsError):
            if secret.optional and isinstance(result, SecretNotFound):
                resolution.skipped.append(secret.name)
                continue
            errors.append(result)
            continue
        try:
            raw = extract(result.data, secret.ref.field)
        except FieldMissing as error:
            if secret.optional:
                resolution.skipped.append(secret.name)
                continue
            errors.append(SecretNotFound(f"{secret.name} ({secret.ref.raw}): {error}"))
            continue
        value = to_text(raw, secret.encoding)
        if isinstance(value, bytes) and not secret.file:
            errors.append(
                ConfigError(
                    f"{secret.name} ({secret.ref.raw}): the value is binary",
                    hint="use 'file: true' or 'encoding: base64' for this variable",
                )
            )
            continue
        resolution.variables.append(
            ResolvedVar(
                name=secret.name,
                value=value,
                backend=secret.backend,
                path=secret.ref.path,
                ref=secret.ref.raw,
                version=result.version,
                lease_id=result.lease.lease_id if result.lease else None,
                lease_ttl=result.lease.ttl if result.lease else None,
                document=result,
            )
        )

    seen = {v.name for v in resolution.variables}
    for name, backend in backends.items():
        for var_name, value in backend.exported_variables().items():
            problem = check_name(var_name, ("AWS_*",))
            if problem or var_name in seen:
                errors.append(
                    ConfigError(
                        f"backend {name!r}: cannot export {var_name}: {problem or 'name taken'}"
                    )
                )
                continue
            seen.add(var_name)
            resolution.variables.append(
                ResolvedVar(var_name, value, name, "(credentials)", f"{name}:credentials")
            )

    if errors:
        raise _combine(errors)
    # The deadline bounds resolution. Later calls (renewals, revocation when the job ends) have
    # their own timeouts; a deadline still set would make them the short "late" kind.
    context.deadline = None
    if any(s.file for s in secrets):
        _write_files(resolution, {s.name for s in secrets if s.file}, ledger, files_dir)
    return resolution


class _LateResults:
    """What to do with work that finishes after the overall deadline gave up on it.

    Once the deadline passes, :func:`resolve` raises and its caller revokes the ledger, while
    threads may still be waiting on a slow server (each request is bounded by ``timeout``, not
    by the deadline). Leases and tokens they obtain afterwards must not outlive the job, and the
    ledger may be revoked already: so from that moment the threads revoke what they get themselves.
    """

    def __init__(self, deadline_seconds: float) -> None:
        self.deadline_seconds = deadline_seconds
        self._lock = threading.Lock()
        self._abandoned = False

    def abandon(self) -> None:
        """The deadline passed: nothing obtained from now on goes to the ledger."""
        with self._lock:
            self._abandoned = True

    def abandoned(self) -> bool:
        """Whether :meth:`abandon` was called."""
        with self._lock:
            return self._abandoned

    def record(self, backend: Backend, leases: list[Lease], ledger: Ledger) -> bool:
        """Add ``leases`` to the ledger, or revoke them now if too late; True when recorded."""
        with self._lock:
            if not self._abandoned:
                for lease in leases:
                    ledger.add_lease(lease)
                return True
        for lease in leases:
            try:
                backend.revoke_lease(lease.lease_id)
                log.info("revoked lease %s obtained after the deadline", lease.lease_id)
            except Exception as error:  # best effort: the thread has no one to report to
                log.warning(
                    "could not revoke lease %s obtained after the deadline (%s)",
                    lease.lease_id,
                    type(error).__name__,
                )
        return False

    def revoke_token(self, backend: Backend) -> None:
        """Revoke the token a login obtained after the deadline (idempotent on the ledger's side)."""
        record = backend.token_record()
        if record is None:
            return
        try:
            backend.revoke_token(record)
        except Exception as error:  # best effort, as above
            log.warning(
                "could not revoke the %r token obtained after the deadline (%s)",
                backend.name,
                type(error).__name__,
            )


def _gather(
    jobs: Mapping[str, Callable[[], None]],
    deadline: float,
    late: _LateResults,
    describe_pending: Callable[[list[str]], str],
    *,
    max_workers: int,
) -> None:
    """Run jobs concurrently and raise the first failure (in name order) once all are done.

    When ``deadline`` (``time.monotonic()``) passes first, raise a :class:`BackendError` that says
    what was still pending, without waiting for it: the threads finish on their own (each request
    has its own timeout) and ``late`` makes them revoke whatever they obtain.
    """
    # Not a ``with`` block: leaving one waits for every thread, which is what the deadline forbids.
    pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="jobsecrets")
    futures: dict[str, Future[None]] = {name: pool.submit(job) for name, job in jobs.items()}
    try:
        _done, not_done = wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    except BaseException:
        # SIGTERM/SIGINT (Terminated, KeyboardInterrupt) while the threads still work: the caller
        # revokes the ledger now, so whatever they obtain from here on they must revoke themselves,
        # exactly as after the deadline. Otherwise those leases and tokens outlive the job.
        late.abandon()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    if not_done:
        late.abandon()
        pool.shutdown(wait=False, cancel_futures=True)
        pending = sorted(name for name, future in futures.items() if future in not_done)
        raise BackendError(
            f"the overall deadline ({late.deadline_seconds}s) passed while still "
            f"{describe_pending(pending)}",
            hint="a store is slow or unreachable; raise 'settings: {deadline: ...}' if it is "
            "only slow",
        )
    pool.shutdown(wait=True)
    failures = []
    for name in sorted(futures):
        error = futures[name].exception()
        if error is not None:
            failures.append(error)
    if failures:
        first = failures[0]
        if isinstance(first, JobSecretsError) and len(failures) > 1:
            raise _combine([f for f in failures if isinstance(f, JobSecretsError)])
        raise first


def _combine(errors: list[JobSecretsError]) -> JobSecretsError:
    """One error naming every failed variable, one line per distinct cause (see failures.py)."""
    return combine(errors)


def _expand_prefix(spec: Spec, secret: SecretSpec, backend: Backend) -> list[SecretSpec]:
    """One SecretSpec per secret found under a prefix selection; names checked against the denylist."""
    prefix = secret.ref.path[:-1]
    found = backend.list_prefix(prefix)
    problems: list[str] = []
    if not found and not secret.optional:
        problems.append(f"{secret.name} ({secret.ref.raw}): no secret under the prefix")
    members = []
    for path in sorted(found):
        if CONTROL_CHARS.search(path) or not path.startswith(prefix):
            # Store names are hostile: a newline plus `::workflow-command` in a name would reach
            # the runner through any message that names the secret.
            problems.append(f"{secret.name} ({secret.ref.raw}): refused a secret name {path!r}")
            continue
        name = secret.name_prefix + to_env_name(path[len(prefix) :].strip("/"))
        problem = check_name(name, spec.allow_names)
        if problem:
            problems.append(f"{secret.name} ({secret.ref.raw}): secret {path!r}: {problem}")
            continue
        ref = type(secret.ref)(
            secret.ref.backend,
            path,
            secret.ref.field,
            f"{secret.ref.raw} -> {path}",
            secret.ref.backend_type,
        )
        members.append(
            SecretSpec(
                name=name,
                ref=ref,
                backend=secret.backend,
                file=secret.file,
                optional=secret.optional,
                params=secret.params,
                options=secret.options,
                encoding=secret.encoding,
                policy=secret.policy,
                line=secret.line,
            )
        )
    if problems:
        raise ConfigError("prefix selection failed:\n" + "\n".join(f"  - {p}" for p in problems))
    return members


def _check_expanded_names(spec: Spec, secrets: list[SecretSpec]) -> None:
    """Prefix members must not take a name another variable (or another prefix member) has."""
    declared = {s.name for s in spec.secrets if not s.is_prefix}
    originals = {id(s) for s in spec.secrets}
    seen: set[str] = set()
    problems = []
    for secret in secrets:
        member = id(secret) not in originals
        if secret.name in seen or (member and secret.name in declared):
            problems.append(f"{secret.ref.raw}: maps to {secret.name}, which is taken")
        seen.add(secret.name)
    if problems:
        raise ConfigError("prefix selection failed:\n" + "\n".join(f"  - {p}" for p in problems))


def _write_files(
    resolution: Resolution, names: set[str], ledger: Ledger, files_dir: str | None
) -> None:
    """Write ``file: true`` values to 0600 files in a private 0700 directory; the variable holds the path."""
    directory = tempfile.mkdtemp(prefix="jobsecrets-files-", dir=files_dir)
    os.chmod(directory, 0o700)
    updated = []
    for var in resolution.variables:
        if var.name not in names:
            updated.append(var)
            continue
        path = os.path.join(directory, var.name)
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, stat.S_IRUSR | stat.S_IWUSR
        )
        ledger.add_file(path)
        with os.fdopen(fd, "wb") as handle:
            value = var.value
            handle.write(value if isinstance(value, bytes) else value.encode("utf-8"))
        updated.append(
            ResolvedVar(
                var.name,
                var.value,
                var.backend,
                var.path,
                var.ref,
                path,
                var.version,
                var.lease_id,
                var.lease_ttl,
                var.document,
            )
        )
    resolution.variables = updated
