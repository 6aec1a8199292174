"""Resolution: from a spec to the job's variables, in about one round trip per store.

Each backend runs its own pipeline (sign in, expand prefix selections, read), all at once: a fast store
never waits for a slow one to finish signing in. Variables naming the same backend+path+params share
one read (one lease, whatever the number of fields). Each lease is recorded in the ledger the moment it
exists, and only then are documents turned into values. Any failure of a required variable fails the
whole resolution: nothing partial is returned, and the caller revokes what the ledger holds. What the
failed resolution did, variable by variable (read and withheld, or failed and why), goes to the
caller's ``on_failure`` for the audit log: the raised error combines the causes, and one copy of it per
variable would hide which variables were read, with leases issued, and why each other one failed.

Threads never share mutable state here: each :class:`_BackendRun` keeps its own, the main thread reads
it only after the run finished (or was abandoned at the deadline, see :class:`_LateResults`).
"""

from __future__ import annotations

__all__ = ["BackendFactory", "default_backend_factory", "resolve", "wanted_backends"]

import functools
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from . import unshown
from ._exit import linger_until
from .backends.base import Backend, BackendContext, Document, Lease, ReadRequest
from .backends.registry import get_backend_class
from .errors import (
    BackendError,
    ConfigError,
    JobSecretsError,
    SecretNotFound,
    ValueNotExportable,
)
from .failures import combine
from .fields import FieldMissing, to_text
from .fieldsets import FieldSetError, select
from .jsonsafe import NestedTooDeeply
from .lifecycle.ledger import Ledger
from .names import CONTROL_CHARS, check_name, shown_id, to_env_name
from .resolved import FailedVar, Resolution, ResolvedVar
from .safe_files import FILES_DIR_PREFIX
from .spec.model import BackendSpec, SecretSpec, Spec
from .spec.references import option_references

log = logging.getLogger("jobsecrets")

#: Builds the live backend for one ``backends:`` entry (tests pass their own).
BackendFactory = Callable[[BackendSpec, BackendContext], Backend]


def default_backend_factory(spec: BackendSpec, context: BackendContext) -> Backend:
    """The registered class for ``spec.type``, built with the spec's options."""
    return get_backend_class(spec.type)(spec.name, spec.options, context)


def wanted_backends(spec: Spec) -> list[str]:
    """The backends a resolution signs in to: those the secrets name, and those that export
    credentials of their own (AWS ``credentials: true``) even when no secret names them."""
    wanted = {s.backend for s in spec.secrets}
    for name, backend in spec.backends.items():
        if get_backend_class(backend.type).exports_credentials(backend.options):
            wanted.add(name)
    # A backend whose options name another backend's secret (a GitHub App's key in Vault) needs
    # that one signed in too, in its own pipeline: the deadline and late-result handling cover it.
    for name in list(wanted):
        wanted |= {r.backend for r in option_references(spec.backends[name]).values() if r.backend}
    return sorted(wanted)


@dataclass(frozen=True)
class _Member:
    """One variable to read: a spec entry, or one secret found under a prefix selection."""

    name: str
    secret: SecretSpec
    path: str

    @property
    def ref(self) -> str:
        """The reference as shown to people (a prefix member names the secret it found)."""
        raw = self.secret.ref.raw
        return f"{raw} -> {self.path}" if self.secret.is_prefix else raw

    def request(self) -> ReadRequest:
        """The read this variable needs (made once: resolution asks for it more than once)."""
        return self._request

    @functools.cached_property
    def _request(self) -> ReadRequest:
        return replace(self.secret.read_request(self.path), variables=(self.name,), ref=self.ref)


class _BackendRun:
    """One backend's pipeline: sign in, expand prefixes, read every path once.

    Runs in a pool thread; its attributes are read by the main thread only after :meth:`__call__`
    returned (or, for :meth:`pending`, as a best-effort description at the deadline).
    """

    def __init__(self, spec: Spec, backend: Backend, late: _LateResults, ledger: Ledger) -> None:
        self.spec = spec
        self.backend = backend
        self.late = late
        self.ledger = ledger
        self.stage = "signing in to"
        self.members: list[_Member] = []
        self.requests: dict[tuple[str, str, str], ReadRequest] = {}
        self.documents: dict[tuple[str, str, str], Document | JobSecretsError] = {}
        self.lock = threading.Lock()
        self.read_keys: set[tuple[str, str, str]] = set()  # requests answered so far
        #: Answers as they came (:meth:`_obtained`): a run abandoned at the deadline has no
        #: ``documents``, and the audit log must still name the leases its reads were issued.
        self.obtained: dict[tuple[str, str, str], Document] = {}

    def __call__(self) -> None:
        backend = self.backend
        started = time.monotonic()
        backend.expect_reads(
            len({s.ref.path for s in self.spec.secrets if s.backend == backend.name})
        )
        backend.login()
        # -vv: timings per backend (names and counts only, never a value).
        log.debug("backend %r: signed in (%.0f ms)", backend.name, _ms_since(started))
        if self.late.abandoned():
            # Signed in after the deadline, maybe after the caller revoked the ledger: end it here.
            self.late.revoke_token(backend)
            return
        # export writes the state file now: killed mid-fetch (SIGKILL, a CI hard cancel), the
        # job's `revoke` still finds this token.
        self.ledger.signed_in(backend)
        self.stage = "listing prefixes of"
        for secret in self.spec.secrets:
            if secret.backend == backend.name:
                self.members.extend(
                    _expand_prefix(self.spec, secret, backend)
                    if secret.is_prefix
                    else [_Member(secret.name, secret, secret.ref.path)]
                )
        # One ReadRequest per path + params + options, naming every variable that wants it.
        for member in self.members:
            request = member.request()
            existing = self.requests.get(request.key)
            if existing is not None:
                request = replace(existing, variables=(*existing.variables, member.name))
            self.requests[request.key] = request
        if not self.requests:
            return
        requests = list(self.requests.values())
        backend.preflight(requests)  # refuses what cannot be meant (KV v2 'data/' paths): exit 2
        self.stage = "reading"
        read_started = time.monotonic()
        results = self.backend.read_many(
            requests, max_workers=self.spec.settings.concurrency, on_result=self._obtained
        )
        log.debug(
            "backend %r: %d read(s) in %.0f ms (%.0f ms in all)",
            backend.name,
            len(requests),
            _ms_since(read_started),
            _ms_since(started),
        )
        if self.late.abandoned():
            return  # past the deadline: every lease was revoked as it came (_obtained)
        self.documents = {r.key: result for r, result in zip(requests, results, strict=True)}

    def _obtained(self, request: ReadRequest, result: Document | JobSecretsError) -> None:
        """One read is done: its lease goes to the ledger now (or, past the deadline, is revoked
        now), not when the slowest read of the wave ends: a read that stalls until the deadline
        left the leases of the others unrecorded, so neither this run nor a later ``revoke``
        knew of them."""
        with self.lock:
            self.read_keys.add(request.key)
            if isinstance(result, Document):
                self.obtained[request.key] = result
        if isinstance(result, Document):
            # Before any error is formatted: another read's error text may quote a value.
            _remember_values(result.data)
        if isinstance(result, Document) and result.lease is not None:
            self.late.record(self.backend, [result.lease], self.ledger)

    def obtained_for(self, name: str) -> Document | None:
        """The answer read for entry ``name`` so far (its lease issued), if any; ``None`` for a
        prefix entry or a read that never came back."""
        with self.lock:
            for member in self.members:
                if member.name == name and not member.secret.is_prefix:
                    return self.obtained.get(member.request().key)
        return None

    def pending(self) -> str:
        """What this run was still doing, for the deadline's message: the store's address, so
        it says which server to look at, and its last troubled answer if any."""
        name = self.backend.name
        location = self.backend.location()
        at = f" at {location}" if location else ""
        if self.backend.last_trouble:
            at += f" (its last answer: {self.backend.last_trouble})"
        if self.stage != "reading":
            return f"{self.stage} {name!r}{at}"
        with self.lock:
            waiting = [r for key, r in self.requests.items() if key not in self.read_keys]
        variables = [v for r in waiting for v in r.variables]
        shown = ", ".join(variables[:5])
        if len(variables) > 5:
            shown += f" and {len(variables) - 5} more"
        return f"reading {len(waiting)} path(s) of {name!r}{at} ({shown})"


def resolve(
    spec: Spec,
    context: BackendContext,
    ledger: Ledger,
    *,
    files_dir: str | None = None,
    backend_factory: BackendFactory = default_backend_factory,
    meanwhile: Callable[[], object] | None = None,
    on_failure: Callable[[Resolution], object] | None = None,
) -> Resolution:
    """Fetch every variable of ``spec``. Leases are recorded in ``ledger`` as they are obtained.

    ``meanwhile``: called on this thread once every backend's pipeline has started, before
    waiting for them: the caller's own preparation (imports) then fills the stores' round trips.

    Raises the first error (in spec order) of a required variable, with every failed variable named;
    the caller must then revoke ``ledger``. Before raising a :class:`JobSecretsError`, calls
    ``on_failure`` with the partial resolution, never to be handed over: ``variables`` read fine,
    ``failed`` each with its own error (a backend that could not sign in, or was still busy at the
    deadline, fails each of its entries with that error), ``skipped`` as usual.
    """
    runs: dict[str, _BackendRun] = {}
    # The overall deadline bounds sign-in and reads together. Backends see it in the context too:
    # retries never sleep past it, and ``context.remaining()`` bounds a request by it.
    if context.deadline is None:
        context.deadline = time.monotonic() + spec.settings.deadline
    late = _LateResults(spec.settings.deadline)
    backends = []
    for name in wanted_backends(spec):
        backend = backend_factory(spec.backends[name], context)
        ledger.add_backend(backend)
        backends.append(backend)
    if backend_factory is default_backend_factory and len(backends) > 1:
        from .backends.forked import fork_apart

        # A backend whose library takes the longest to import signs in and reads on the other
        # core (backends/forked.py); before any thread of ours starts, so the fork is clean.
        # One whose options name another backend's secret reads it through this process's
        # session (context.lookup): it stays here.
        keep = {b.name for b in backends if option_references(spec.backends[b.name])}
        built, backends = backends, fork_apart(backends, context.env, keep=keep)
        for original, backend in zip(built, backends, strict=True):
            if backend is not original:
                ledger.add_backend(backend)  # the stand-in replaces the unused original
    for backend in backends:
        runs[backend.name] = _BackendRun(spec, backend, late, ledger)

    broken, pipeline_error = _gather(
        runs,
        context.deadline,
        late,
        max_workers=max(1, min(spec.settings.concurrency, len(runs))),
        meanwhile=meanwhile,
    )
    # The backends that did their work are turned into variables even when another one failed:
    # nothing is handed over then, but the audit log must say what was read (leases issued).
    live = {name: run for name, run in runs.items() if name not in broken}
    members = _in_spec_order(spec, live)
    clashes = _name_clashes(spec, members)

    resolution = Resolution()
    errors: list[JobSecretsError] = []
    # Names taken by variables the spec names itself; `#*` members may not take them (fieldsets.py).
    taken = {m.name for m in members if not m.secret.selects_fields}
    for member in members:
        result = runs[member.secret.backend].documents[member.request().key]
        problem = clashes.get(id(member))
        if problem is not None:
            document = result if isinstance(result, Document) else None
            _fail(resolution, errors, member.name, member, ConfigError(problem), document)
            continue
        resolution.variables.extend(_variables(spec, member, result, resolution, errors, taken))
    _add_exported(live, resolution, errors)
    for var in resolution.variables:
        unshown.remember(var.value)  # a value as the job gets it (a JSON subtree, a number)
    # Which error is raised is unchanged: a failed pipeline first, then a name clash, then the
    # variables' own errors combined.
    error = pipeline_error
    if error is None and clashes:
        error = ConfigError(
            "prefix selection failed:\n" + "\n".join(f"  - {p}" for p in clashes.values())
        )
    if error is None and errors:
        error = _combine(errors)
    if error is not None:
        if isinstance(error, JobSecretsError) and on_failure is not None:
            for secret in spec.secrets:
                cause = broken.get(secret.backend)
                if cause is not None:
                    # Never signed in, or abandoned at the deadline: each entry fails with the
                    # backend's own error (a bug's exception is named by the error raised).
                    own = cause if isinstance(cause, JobSecretsError) else error
                    # A read that came back before the deadline had its lease issued (and
                    # revoked since): the record names it.
                    run = runs.get(secret.backend)
                    resolution.failed.append(
                        FailedVar(
                            secret.name,
                            secret.backend,
                            secret.ref.path,
                            secret.ref.raw,
                            own,
                            run.obtained_for(secret.name) if run is not None else None,
                            secret=secret,
                        )
                    )
            on_failure(resolution)
        raise error
    # The deadline bounds resolution. Later calls (renewals, revocation when the job ends) have
    # their own timeouts; a deadline still set would make them the short "late" kind.
    context.deadline = None
    file_names = {m.name for m in members if m.secret.file}
    if file_names:
        try:
            _write_files(resolution, file_names, ledger, files_dir)
        except JobSecretsError as failure:
            if on_failure is not None:
                on_failure(_files_failed(resolution, file_names, failure))
            raise
    return resolution


def _fail(
    resolution: Resolution,
    errors: list[JobSecretsError],
    name: str,
    member: _Member,
    error: JobSecretsError,
    document: Document | None = None,
) -> None:
    """Variable ``name`` (of ``member``) failed with ``error``: for the combined error, and on its
    own, with the store's answer if the read succeeded (its lease was issued), for the audit log."""
    errors.append(error)
    resolution.failed.append(
        FailedVar(
            name, member.secret.backend, member.path, member.ref, error, document, member.secret
        )
    )


def _files_failed(resolution: Resolution, names: set[str], error: JobSecretsError) -> Resolution:
    """The partial resolution when the ``file: true`` values could not be written: those variables
    failed with ``error`` (their reads, and leases, happened), the others are withheld."""
    partial = Resolution(skipped=list(resolution.skipped))
    for var in resolution.variables:
        if var.name in names:
            partial.failed.append(
                FailedVar(var.name, var.backend, var.path, var.ref, error, var.document, var.secret)
            )
        else:
            partial.variables.append(var)
    return partial


def _in_spec_order(spec: Spec, runs: Mapping[str, _BackendRun]) -> list[_Member]:
    """Every member, ordered as the spec lists its entries (prefix members sorted by path)."""
    by_entry: dict[int, list[_Member]] = {}
    for run in runs.values():
        for member in run.members:
            by_entry.setdefault(id(member.secret), []).append(member)
    return [m for secret in spec.secrets for m in by_entry.get(id(secret), [])]


def _variables(
    spec: Spec,
    member: _Member,
    result: Document | JobSecretsError,
    resolution: Resolution,
    errors: list[JobSecretsError],
    taken: set[str],
) -> list[ResolvedVar]:
    """The variables a read gives: one, or one per field for ``#*`` (skipped optional ones and
    errors are noted in ``resolution`` and ``errors``)."""
    secret = member.secret
    if isinstance(result, JobSecretsError):
        if secret.optional and isinstance(result, SecretNotFound):
            resolution.skipped.append(member.name)
        else:
            _fail(resolution, errors, member.name, member, result)
        return []
    # `prefix/*#*`: each secret's fields are named after it (the AWS action's way).
    name_prefix = (
        member.name + "_" if secret.is_prefix and secret.selects_fields else secret.name_prefix
    )
    try:
        selected = select(
            result.data,
            secret.ref.field,
            name=member.name,
            name_prefix=name_prefix,
            flatten=secret.flatten,
        )
    except FieldMissing as error:
        if secret.optional:
            resolution.skipped.append(member.name)
        else:
            missing = SecretNotFound(f"{member.name} ({member.ref}): {error}")
            _fail(resolution, errors, member.name, member, missing, result)
        return []
    except FieldSetError as error:
        refused = ConfigError(f"{member.name} ({member.ref}): {error}")
        _fail(resolution, errors, member.name, member, refused, result)
        return []
    variables = []
    for name, raw in selected:
        if secret.selects_fields:  # named after the store's keys: hostile until checked
            problem = check_name(name, spec.allow_names) or (
                "name taken" if name in taken else None
            )
            if problem:
                refused = ConfigError(f"{member.name} ({member.ref}): {problem}")
                _fail(resolution, errors, name, member, refused, result)
                continue
            taken.add(name)
        try:
            value = to_text(raw, secret.encoding)
            if isinstance(value, str):
                # A store's JSON string may hold "\ud800": no UTF-8 text, so no variable, file
                # or mask can carry it exactly (it was a UnicodeEncodeError later, in each).
                value.encode("utf-8")
        except NestedTooDeeply as error:  # a structure too deep to write as JSON
            too_deep = ValueNotExportable(f"{name} ({member.ref}): {error}")
            _fail(resolution, errors, name, member, too_deep, result)
            continue
        except UnicodeEncodeError:  # its own message would quote the character
            not_text = ValueNotExportable(
                f"{name} ({member.ref}): the value is not valid Unicode text (a lone surrogate)"
            )
            _fail(resolution, errors, name, member, not_text, result)
            continue
        if isinstance(value, bytes) and not secret.file:
            binary = ConfigError(
                f"{name} ({member.ref}): the value is binary",
                hint="use 'file: true' or 'encoding: base64' for this variable",
            )
            _fail(resolution, errors, name, member, binary, result)
            continue
        variables.append(
            ResolvedVar(
                name=name,
                value=value,
                backend=secret.backend,
                path=member.path,
                ref=member.ref,
                version=result.version,
                lease_id=result.lease.lease_id if result.lease else None,
                lease_ttl=result.lease.ttl if result.lease else None,
                document=result,
                secret=secret,
            )
        )
    return variables


def _add_exported(
    runs: Mapping[str, _BackendRun], resolution: Resolution, errors: list[JobSecretsError]
) -> None:
    """The variables backends hand out on their own (short-lived credentials), checked like any."""
    seen = {v.name for v in resolution.variables}
    for name, run in runs.items():
        backend = run.backend
        for var_name, value in backend.exported_variables().items():
            problem = check_name(var_name, backend.EXPORTED_NAMES)
            if problem or var_name in seen:
                refused = ConfigError(
                    f"backend {name!r}: cannot export {var_name}: {problem or 'name taken'}"
                )
                errors.append(refused)
                resolution.failed.append(
                    FailedVar(var_name, name, "(credentials)", f"{name}:credentials", refused)
                )
                continue
            seen.add(var_name)
            resolution.variables.append(
                ResolvedVar(var_name, value, name, "(credentials)", f"{name}:credentials")
            )


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
                log.info("revoked lease %s obtained after the deadline", shown_id(lease.lease_id))
            except Exception as error:  # best effort: the thread has no one to report to
                log.warning(
                    "could not revoke lease %s obtained after the deadline (%s)",
                    shown_id(lease.lease_id),
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


#: Leaves of one document remembered at most (a document of more is hostile or a mistake; its
#: variables' values are remembered anyway when they are made).
_MAX_REMEMBERED_LEAVES = 10_000


def _remember_values(data: object) -> None:
    """Remember every text leaf of a document (:mod:`jobsecrets.unshown`): each is a value the
    process must never print, requested or not. Iterative: a document may nest deeply."""
    pending, seen = [data], 0
    while pending and seen < _MAX_REMEMBERED_LEAVES:
        item = pending.pop()
        seen += 1
        if isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        else:
            unshown.remember(item)  # text and bytes; numbers and the like are no secret text


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


#: The longest a signalled process waits at exit for a sign-in or read on the wire.
_LINGER_MAX = 10.0


def _gather(
    runs: Mapping[str, _BackendRun],
    deadline: float,
    late: _LateResults,
    *,
    max_workers: int,
    meanwhile: Callable[[], object] | None = None,
) -> tuple[dict[str, BaseException], BaseException | None]:
    """Run every backend's pipeline concurrently; returns the failed ones (backend name -> its
    exception) and the error to raise for them: the first failure in name order, or all of them
    combined, or ``None`` when every pipeline finished.

    When ``deadline`` (``time.monotonic()``) passes first, the error is a :class:`BackendError`
    that says what was still pending, and each pending backend fails with it, without waiting
    for it: the threads finish on their own (each request has its own timeout) and ``late``
    makes them revoke whatever they obtain. The finished pipelines' reads stay usable, for the
    audit log's account of what was issued.
    """
    # Not a ``with`` block: leaving one waits for every thread, which is what the deadline forbids.
    pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="jobsecrets")
    futures: dict[str, Future[None]] = {name: pool.submit(run) for name, run in runs.items()}
    try:
        if meanwhile is not None:
            meanwhile()
        _done, not_done = wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    except BaseException:
        # SIGTERM/SIGINT (Terminated, KeyboardInterrupt) while the threads still work: the caller
        # revokes the ledger now, so whatever they obtain from here on they must revoke themselves,
        # exactly as after the deadline. Otherwise those leases and tokens outlive the job. The
        # process waits for them at exit (up to the deadline, at most _LINGER_MAX): a sign-in
        # answered a second after the signal made a token only that thread knows of.
        late.abandon()
        pool.shutdown(wait=False, cancel_futures=True)
        if any(not future.done() for future in futures.values()):
            linger_until(min(deadline, time.monotonic() + _LINGER_MAX))
        raise
    if not_done:
        late.abandon()
        pool.shutdown(wait=False, cancel_futures=True)
        pending = sorted(name for name, future in futures.items() if future in not_done)
        timed_out = BackendError(
            f"the overall deadline ({late.deadline_seconds}s) passed while still "
            + "; ".join(runs[name].pending() for name in pending),
            hint="a store is slow or unreachable; raise 'settings: {deadline: ...}' if it is "
            "only slow",
        )
        broken: dict[str, BaseException] = {name: timed_out for name in pending}
        # A pipeline that failed before the deadline keeps its own error (the deadline's is raised).
        for name, future in futures.items():
            if future not in not_done and (failure := future.exception()) is not None:
                broken[name] = failure
        return broken, timed_out
    pool.shutdown(wait=True)
    broken = {name: e for name in sorted(futures) if (e := futures[name].exception()) is not None}
    failures = list(broken.values())
    if not failures:
        return broken, None
    first = failures[0]
    if isinstance(first, JobSecretsError) and len(failures) > 1:
        return broken, _combine([f for f in failures if isinstance(f, JobSecretsError)])
    return broken, first


def _combine(errors: list[JobSecretsError]) -> JobSecretsError:
    """One error naming every failed variable, one line per distinct cause (see failures.py)."""
    return combine(errors)


def _expand_prefix(spec: Spec, secret: SecretSpec, backend: Backend) -> list[_Member]:
    """One member per secret found under a prefix selection; names checked against the denylist."""
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
        members.append(_Member(name, secret, path))
    if problems:
        raise ConfigError("prefix selection failed:\n" + "\n".join(f"  - {p}" for p in problems))
    return members


def _name_clashes(spec: Spec, members: list[_Member]) -> dict[int, str]:
    """Prefix members must not take a name another variable (or another prefix member) has:
    each one that does (by ``id``: two members may be equal), with the problem."""
    declared = {s.name for s in spec.secrets if not s.is_prefix}
    seen: set[str] = set()
    problems: dict[int, str] = {}
    for member in members:
        if member.name in seen or (member.secret.is_prefix and member.name in declared):
            problems[id(member)] = f"{member.ref}: maps to {member.name}, which is taken"
        seen.add(member.name)
    return problems


def _write_files(
    resolution: Resolution, names: set[str], ledger: Ledger, files_dir: str | None
) -> None:
    """Write ``file: true`` values to 0600 files in a private 0700 directory; the variable holds the path."""
    import tempfile  # only with `file: true` secrets (~5 ms of every start otherwise)

    try:
        directory = tempfile.mkdtemp(prefix=FILES_DIR_PREFIX, dir=files_dir)
    except OSError as error:
        # After resolution: the caller revokes what was obtained; the user gets the reason.
        raise ConfigError(
            f"cannot create a private directory for 'file: true' values in "
            f"{files_dir or tempfile.gettempdir()}: {error.strerror or type(error).__name__}",
            hint=(
                "pass --files-dir with a directory of your own"
                if files_dir
                else "set TMPDIR to a writable directory of your own"
            ),
        ) from None
    # mkdtemp creates it 0700 already; said again in case of an odd umask-ignoring filesystem.
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
            handle.write(var.value_bytes)
        updated.append(replace(var, file=path))
    resolution.variables = updated
