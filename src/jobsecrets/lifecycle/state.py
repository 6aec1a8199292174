"""The state file: what ``export`` hands over so that ``jobsecrets revoke`` can end it in a later step.

It holds lease ids, backend settings and the tokens jobsecrets itself obtained, never a secret *value*.
How the tokens in it are protected:

* the file is created 0600 (atomically, never world-readable for an instant) in a directory that only
  its owner may write to; the default directory is a per-user ``jobsecrets-UID`` created 0700;
* the tokens are the job's own short-lived login tokens (never a token the user supplied), and
  ``revoke`` revokes them and removes the file;
* optionally, when ``$JOBSECRETS_STATE_KEY`` is set (by a CI wrapper that can hand a random key from
  its main step to its post step), each token is encrypted (:mod:`.cipher`): a copy of the file alone
  (an artifact upload, a cache, a backup of the workspace) then revokes nothing and signs nobody in.
"""

from __future__ import annotations

__all__ = [
    "STATE_VERSION",
    "StateWriter",
    "check_state_lock",
    "default_state_path",
    "load_state",
    "private_directory",
    "read_state_bytes",
    "state_lock",
    "state_lock_or_warn",
    "state_of",
    "write_state",
]

import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from typing import Any

from .. import jsonsafe
from ..backends.base import Backend, BackendContext, Lease, TokenRecord
from ..backends.registry import get_backend_class
from ..errors import ConfigError
from ..names import shown_id
from ..platforms import job_key, state_base
from ..safe_files import FILES_DIR_PREFIX, read_at_most, replace_with
from .cipher import StateCipher
from .ledger import Ledger, why

log = logging.getLogger("jobsecrets")

STATE_VERSION = 1
#: The most a state file's per-request timeout is taken for (a damaged one falls back to 10s).
_MAX_TIMEOUT = 86_400.0
#: Far above any real state file (~300 bytes a lease: 5,000 leases are 1.5 MB); a path that names
#: something bigger is not one, and must not be read into memory.
MAX_STATE_FILE = 64 << 20


def default_state_path(env: Mapping[str, str]) -> str:
    """Where ``export`` and ``revoke`` keep the state file unless ``--state`` says otherwise.

    ``$JOBSECRETS_STATE`` if set; else the CI platform's directory for the job
    (:func:`jobsecrets.platforms.state_base`: ``$RUNNER_TEMP`` on GitHub, beside the build directory
    on GitLab) or the temp directory, in a per-user ``jobsecrets-UID`` directory created 0700, named
    after the job's ids.
    """
    explicit = env.get("JOBSECRETS_STATE")
    if explicit:
        return explicit
    job = job_key(env)
    suffix = f"-{job}" if job else ""
    return os.path.join(state_base(env), f"jobsecrets-{os.getuid()}", f"state{suffix}.json")


def state_of(ledger: Ledger, cipher: StateCipher | None = None) -> dict[str, Any]:
    """The JSON-able state: backend settings, leases, our tokens and files. No secret value.

    With ``cipher`` each token is stored encrypted (``token_sealed``) instead of as-is.
    """
    # Leases before owners: a lease recorded between the two (export writes the file while the
    # resolver's threads record) then still has its owner; read the other way it had none.
    leases = ledger.lease_list()
    owners = ledger.lease_owners()
    tokens: list[dict[str, Any]] = []
    for record in ledger.tokens():
        entry = asdict(record)
        if cipher is not None:
            entry["token_sealed"] = cipher.seal(entry.pop("token"))
        tokens.append(entry)
    backends: dict[str, Any] = {
        backend.name: {"type": backend.type_name, "options": backend.recorded_options()}
        for backend in ledger.backend_list()
    }
    for name, entry in ledger.kept_backends.items():
        backends.setdefault(name, entry)
    state = {
        "version": STATE_VERSION,
        "created": time.time(),
        "spec_dir": os.path.abspath(ledger.spec_dir),
        # The spec's per-request timeout, which `revoke` (no spec at hand) bounds requests by.
        "timeout": next((b.context.timeout for b in ledger.backend_list()), None),
        "backends": backends,
        "tokens": tokens
        + [dict(entry) for entry in ledger.unreadable_tokens]
        + list(ledger.kept_tokens),
        # Field by field, not asdict(): a lease holds plain values, and asdict's recursive
        # deep copy was half of writing the state for 2,500 leases.
        "leases": [
            {
                **{name: getattr(lease, name) for name in _LEASE_NAMES},
                "token_accessor": owners.get(lease.lease_id, ""),
            }
            for lease in leases
        ]
        + list(ledger.kept_leases),
        "files": list(ledger.files),
    }
    if ledger.kept_sections:
        state[_DAMAGED] = dict(ledger.kept_sections)
    return state


#: Where a state file keeps sections of the wrong type (``"leases": "..."``) it read, as they were.
_DAMAGED = "damaged"
#: The sections of a state file and the type each must have.
_SECTIONS: dict[str, type] = {"backends": dict, "tokens": list, "leases": list, "files": list}


def write_state(
    ledger: Ledger,
    path: str,
    merge: bool = True,
    cipher: StateCipher | None = None,
    *,
    locked: bool = False,
) -> None:
    """Write (or merge into) the state file, 0600 in a private directory, atomically.

    The read, merge and write happen under :func:`state_lock` (``locked``: the caller holds it
    already), so two commands writing one state file at once never lose each other's records.
    """
    private_directory(os.path.dirname(os.path.abspath(path)))
    with contextlib.nullcontext() if locked else state_lock(path):
        state = state_of(ledger, cipher)
        if merge:
            previous = _parse_state(path, read_state_bytes(path))
            if previous is not None:
                _merge(state, previous)
        _replace_state(path, state)


def _replace_state(path: str, state: Mapping[str, Any]) -> bytes:
    """Replace the state file by ``state`` (0600, atomically); the bytes written."""
    # One write of the whole text: json.dump writes every token of it separately.
    data = json.dumps(state, indent=1).encode("utf-8")
    replace_with(path, data, 0o600, prefix=".state-")
    return data


#: What the lock file beside a state file is named after it (``state.json.lock``).
LOCK_SUFFIX = ".lock"


@contextlib.contextmanager
def state_lock(path: str) -> Iterator[None]:
    """Hold the exclusive lock of the state file at ``path`` (``flock`` on ``PATH.lock``).

    Every read-modify-write of a state file happens under it: 16 ``export`` steps of one job
    writing one file at once each read it, merged, and replaced it, and the last replace dropped
    what the others had recorded (leases and tokens that then outlived the job). The lock file
    is never removed: removing it would let a waiting process lock a name nobody else uses.
    A process that dies (SIGKILL) releases the lock with its descriptor.
    """
    fd = _open_lock(path + LOCK_SUFFIX)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_state_lock(path: str) -> None:
    """Raise :class:`ConfigError` when an existing lock beside the state file at ``path`` cannot
    be used (a directory, a symlink, another user's): ``export`` says so before it signs in,
    instead of failing at its first write and revoking what it had obtained."""
    lock = path + LOCK_SUFFIX
    if os.path.lexists(lock):
        os.close(_open_lock(lock))


@contextlib.contextmanager
def state_lock_or_warn(path: str) -> Iterator[None]:
    """:func:`state_lock`, or no lock with a warning when the lock file cannot be used.

    For ``revoke``: the lock is advisory, and a lock path that is a directory, a symlink, another
    user's file or in a read-only directory must not keep what the job obtained alive. Without
    the lock, an ``export`` writing the same file at that moment may lose its records; that is
    the smaller harm, and the warning says so.
    """
    try:
        fd = _open_lock(path + LOCK_SUFFIX)
    except ConfigError as error:
        log.warning(
            "%s; revoking without the lock (an export writing this state file at the same "
            "time may lose its records)",
            error.message,
        )
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _open_lock(path: str) -> int:
    """A descriptor on the lock file at ``path``, created 0600; only a regular file of ours.

    As for the state file: never through a symlink (``O_NOFOLLOW``), never blocking on a FIFO
    (``O_NONBLOCK``), never someone else's file. Nothing is ever written to it.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as error:
        raise ConfigError(
            f"cannot open the state file's lock {path}: {error.strerror}",
            hint="pass --state with a file path in a directory of your own",
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"state lock {path} is not a regular file; not using it")
        if os.getuid() != 0 and info.st_uid != os.getuid():
            raise ConfigError(f"state lock {path} belongs to another user; not using it")
        # Its mode is left as found: an existing file may not be ours to change (run as root,
        # anyone's is), and an empty lock file exposes nothing whatever its mode.
    except BaseException:
        os.close(fd)
        raise
    return fd


#: The least time between two writes of the state file while ``export`` resolves (a sign-in is
#: written at once): 2,500 leases recorded in a second cost a handful of writes, not 2,500.
PROGRESS_INTERVAL = 0.2


class StateWriter:
    """One ``export``'s records in a state file that other commands may write at the same time.

    :meth:`write` merges the ledger into whatever the file holds now; :meth:`restore` (a failed
    export) takes this export's records out again. Both under :func:`state_lock`.

    :meth:`follow` keeps the file current while the export resolves: it used to be written only
    once every value was in, so an export killed mid-fetch (SIGKILL, a CI hard cancel, no
    ``finally`` runs) left its login token and leases recorded nowhere, and the post step's
    ``revoke`` found nothing while they lived on. A background thread writes right after each
    sign-in and at most once every :data:`PROGRESS_INTERVAL` seconds after leases. Restoring used
    to put back the bytes read when the export started, dropping what a concurrent export had
    recorded meanwhile: now those bytes come back only when nobody else wrote the file since
    this export's first write (so a lone failed export still leaves the file byte for byte as it
    was); otherwise exactly this export's entries are removed from the current file.
    """

    def __init__(self, ledger: Ledger, path: str, cipher: StateCipher | None = None) -> None:
        self.ledger = ledger
        self.path = path
        self.cipher = cipher
        # Serializes this process's own writes (under the file lock, which other processes see).
        self._io = threading.Lock()
        self._wrote = False
        # The file right before this export's first write, and what its last write left.
        self._before: bytes | None = None
        self._written: bytes | None = None
        # False once another command changed the file between two writes of ours.
        self._alone = True
        # Everything this export ever wrote, to take out again: lease ids, token entry keys
        # (a sealed token's differs at each write), secret files, backend entries.
        self._leases: set[str] = set()
        self._tokens: set[str] = set()
        self._files: set[str] = set()
        self._backends: dict[str, Any] = {}

        # The progress writer (follow): a thread started on the first record, not before (the
        # resolver forks a backend off only while no thread runs).
        self._interval = PROGRESS_INTERVAL
        self._wake = threading.Condition()
        self._due = False
        self._urgent = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    def follow(self, interval: float = PROGRESS_INTERVAL) -> None:
        """Write the state file as the ledger records things, until :meth:`stop`."""
        self._interval = interval
        self.ledger.on_record(self._recorded)

    def stop(self) -> None:
        """No progress write from now on (one under way ends first); the thread exits."""
        self.ledger.on_record(None)
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        with self._io:
            pass  # a progress write under way has ended once this lock is ours

    def _recorded(self, urgent: bool) -> None:
        """The ledger's hook: called from the resolver's threads, so it only signals."""
        with self._wake:
            if self._stopped:
                return
            self._due = True
            self._urgent = self._urgent or urgent
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._progress, name="jobsecrets-state", daemon=True
                )
                self._thread.start()
            self._wake.notify_all()

    def _progress(self) -> None:
        last = float("-inf")
        while True:
            with self._wake:
                while True:
                    if self._stopped:
                        return
                    if self._due:
                        wait = 0.0 if self._urgent else last + self._interval - time.monotonic()
                        if wait <= 0:
                            break
                        self._wake.wait(wait)
                    else:
                        self._wake.wait()
                self._due = self._urgent = False
            last = time.monotonic()
            try:
                with self._io:
                    if self._stopped or self.ledger.is_empty():
                        continue
                    private_directory(os.path.dirname(os.path.abspath(self.path)))
                    with state_lock(self.path):
                        self._write_locked(keep_only_ledger=False)
            except Exception as error:  # the final write reports it (export fails then)
                log.debug("state file %s: progress write failed (%s)", self.path, why(error))

    @property
    def wrote(self) -> bool:
        """Whether this export has written the state file."""
        return self._wrote

    def write(self) -> None:
        """Merge the ledger into the state file as it is now (0600, atomically, locked).

        Progress writes (:meth:`follow`) stop here: this one is the last of a successful export.
        """
        self.stop()
        private_directory(os.path.dirname(os.path.abspath(self.path)))
        with self._io, state_lock(self.path):
            self._write_locked(keep_only_ledger=False)

    def restore(self) -> None:
        """A failed export: the file as it was without this export, plus what the ledger still
        holds (what could not be revoked: a later ``revoke`` retries it)."""
        self.stop()
        with self._io:
            if not self._wrote and self.ledger.is_empty():
                return
            private_directory(os.path.dirname(os.path.abspath(self.path)))
            with state_lock(self.path):
                self._write_locked(keep_only_ledger=True)

    def _write_locked(self, *, keep_only_ledger: bool) -> None:
        current = read_state_bytes(self.path)
        if not self._wrote:
            self._before = current
        elif current != self._written:
            self._alone = False
        if keep_only_ledger and self._wrote and self._alone:
            # Nobody else wrote since our first write: back to those very bytes.
            base_bytes = self._before
            base = _parse_state(self.path, base_bytes)
        else:
            base_bytes = None
            base = self._without_ours(_parse_state(self.path, current))
        if keep_only_ledger and self.ledger.is_empty():
            if base_bytes is not None:
                replace_with(self.path, base_bytes, 0o600, prefix=".state-")
            elif base is None or not _holds_anything(base):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            else:
                _replace_state(self.path, base)
            self._written = None
            return
        state = state_of(self.ledger, self.cipher)
        self._note_ours(state)
        if base is not None:
            _merge(state, base)
        self._written = _replace_state(self.path, state)
        self._wrote = True

    def _note_ours(self, state: Mapping[str, Any]) -> None:
        self._leases.update(lease["lease_id"] for lease in state["leases"])
        self._tokens.update(_entry_key(token) for token in state["tokens"])
        self._files.update(state["files"])
        self._backends.update(state["backends"])

    def _without_ours(self, state: dict[str, Any] | None) -> dict[str, Any] | None:
        """``state`` without the entries this export wrote (another command's stay)."""
        if state is None or not self._wrote:
            return state
        # A section of the wrong type (damage) stays as it is, for the merge to keep.
        leases = [
            lease
            for lease in _as_list(state.get("leases"))
            if not (isinstance(lease, dict) and _entry_id(lease.get("lease_id")) in self._leases)
        ]
        tokens = [t for t in _as_list(state.get("tokens")) if _entry_key(t) not in self._tokens]
        used = {_entry_id(e.get("backend")) for e in leases + tokens if isinstance(e, dict)}
        backends = state.get("backends")
        if isinstance(backends, dict):
            backends = {
                name: entry
                for name, entry in backends.items()
                if name in used or self._backends.get(name) != entry
            }
        files = [f for f in _as_list(state.get("files")) if _entry_id(f) not in self._files]
        result = {**state, "backends": backends}
        for section, kept in (("leases", leases), ("tokens", tokens), ("files", files)):
            if isinstance(state.get(section, []), list):
                result[section] = kept
        return result


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _holds_anything(state: Mapping[str, Any]) -> bool:
    """Whether a state has a lease, token or file left (else there is nothing to keep)."""
    sections = ("leases", "tokens", "files")
    # A section of the wrong type is damage that may name something alive: it counts too.
    return bool(state.get(_DAMAGED)) or any(state.get(s) for s in sections)


def _entry_key(entry: Any) -> str:
    if not isinstance(entry, Mapping):
        # A damaged entry (kept as it was for a human to see): told apart by what it is.
        return "?" + json.dumps(entry, sort_keys=True, default=repr)
    return str(entry.get("accessor") or entry.get("token") or entry.get("token_sealed") or "")


def _merge(state: dict[str, Any], previous: Mapping[str, Any]) -> None:
    """Add what an earlier ``export`` of the same job recorded to ``state`` (in place).

    Two exports may use different specs that name different servers alike (``vault``): the earlier
    entry is then kept under a new name, and its leases and tokens follow it, so each is revoked
    against the server that issued it.
    """
    _carry_damaged(state, previous)
    renamed: dict[str, str] = {}
    backends = previous.get("backends")
    for name, entry in (backends if isinstance(backends, dict) else {}).items():
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
        if isinstance(item, dict) and _entry_id(item.get("backend")) in renamed:
            return {**item, "backend": renamed[item["backend"]]}
        return item

    known = {lease["lease_id"] for lease in state["leases"] if isinstance(lease, dict)}
    state["leases"] += [
        moved(lease)
        for lease in _as_list(previous.get("leases"))
        if not isinstance(lease, dict) or _entry_id(lease.get("lease_id")) not in known
    ]
    files = {f for f in _as_list(previous.get("files")) if isinstance(f, str)}
    state["files"] = sorted(set(state["files"]) | files)
    known_tokens = {_entry_key(t) for t in state["tokens"]}
    state["tokens"] += [
        moved(t) for t in _as_list(previous.get("tokens")) if _entry_key(t) not in known_tokens
    ]


def _carry_damaged(state: dict[str, Any], previous: Mapping[str, Any]) -> None:
    """Keep, under ``damaged``, whatever of ``previous`` no merge can use: a section of the wrong
    type, and the ``damaged`` sections it kept itself."""
    damaged: dict[str, Any] = {}
    earlier = previous.get(_DAMAGED)
    if isinstance(earlier, dict):
        damaged.update(earlier)
    elif earlier is not None:
        damaged[_DAMAGED] = earlier
    for section, kind in _SECTIONS.items():
        value = previous.get(section)
        if value is not None and not isinstance(value, kind):
            damaged.setdefault(section, value)
    if damaged:
        state[_DAMAGED] = {**damaged, **state.get(_DAMAGED, {})}


def _entry_id(value: Any) -> str | None:
    """A lease id from a state file to look up: a string, else ``None`` (a damaged file's list
    is no key)."""
    return value if isinstance(value, str) else None


def private_directory(
    directory: str, what: str = "state directory", option: str = "--state"
) -> None:
    """Create ``directory`` 0700 if needed and refuse one where others could swap our files.

    The default directory (``jobsecrets-UID`` under a shared temp dir) could have been created
    beforehand by another user; a sticky, world-writable directory (``/tmp``) is fine, since nobody
    else can replace a file we own there. ``what`` and ``option`` name it in the errors.
    """
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
    except OSError as error:
        # A device or a file where the directory should be (makedirs: FileExistsError), a
        # parent that is no directory, no permission: a clear error, before anything is fetched.
        why = (
            "it is not a directory"
            if isinstance(error, FileExistsError)
            else error.strerror or type(error).__name__
        )
        raise ConfigError(
            f"{what} {directory} cannot be used: {why}",
            hint=f"pass {option} with a path in a directory of your own",
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {directory} is not a directory")
    if os.getuid() != 0 and info.st_uid not in (os.getuid(), 0):
        raise ConfigError(
            f"{what} {directory} belongs to another user",
            hint=f"pass {option} with a path in a directory of your own",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"{what} {directory} is writable by other users",
            hint=f"pass {option} with a path in a directory of your own (e.g. $RUNNER_TEMP)",
        )


def read_state_bytes(path: str) -> bytes | None:
    """The bytes of the state file at ``path``; ``None`` when there is none.

    A ``ConfigError`` when ``path`` is no regular file of ours: a symlink planted there must not
    make us read someone else's file, a FIFO must not hang the command (``O_NONBLOCK``), a
    device must not be read without end.
    """
    if path.endswith(("/", os.sep)) or not os.path.basename(path):
        # 'st/x.json/' passed here as "no state yet", then export made st/x.json a directory
        # and failed to write the state after fetching (NotADirectoryError, internal error).
        raise ConfigError(
            f"state file {path!r} names a directory, not a file",
            hint="pass --state (or $JOBSECRETS_STATE) with a file path, e.g. $RUNNER_TEMP/js.json",
        )
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"cannot open state file {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"state file {path} is not a regular file (a directory, device, FIFO or "
                "socket); not using it",
                hint="pass --state with a file path in a directory of your own",
            )
        if os.getuid() != 0 and info.st_uid != os.getuid():
            raise ConfigError(f"state file {path} belongs to another user; not using it")
        content = read_at_most(fd, MAX_STATE_FILE)
    except OSError as error:
        raise ConfigError(f"cannot read state file {path}: {type(error).__name__}") from None
    finally:
        os.close(fd)
    if len(content) > MAX_STATE_FILE:
        raise ConfigError(
            f"state file {path} is larger than {MAX_STATE_FILE >> 20} MiB: not a state file"
        )
    return content


def _read_state(path: str) -> dict[str, Any]:
    """Read a state file; raises FileNotFoundError when there is none."""
    state = _parse_state(path, read_state_bytes(path))
    if state is None:
        raise FileNotFoundError(path)
    return state


def _parse_state(path: str, content: bytes | None) -> dict[str, Any] | None:
    """The state in ``content`` (read from ``path``); ``None`` for no file at all."""
    if content is None:
        return None
    try:
        state = jsonsafe.loads(content.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError among them
        raise ConfigError(f"cannot read state file {path}: {type(error).__name__}") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ConfigError(
            f"state file {path} is not a jobsecrets state file (version {STATE_VERSION})"
        )
    return state


#: A lease's fields in declaration order (the state file's key order).
_LEASE_NAMES = tuple(f.name for f in dataclasses.fields(Lease))


def _label(value: object) -> str:
    """An id from a state file for a message: a string, cut short; anything else ``?``."""
    return shown_id(value[:80]) if isinstance(value, str) and value else "?"


#: Said of each damaged entry a failed ``revoke`` writes back as it was.
_KEPT = "; kept in the state file"


def _number(value: Any, default: float) -> float:
    """A finite number from a state file, else ``default`` (a bool is no number here)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return default
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        return default
    return number if math.isfinite(number) else default


def _lease_from(entry: Mapping[str, Any]) -> Lease | str:
    """The lease a state file entry names, or why it cannot be revoked.

    Only what revocation needs is required (the lease id and its backend's name): a damaged
    ``ttl`` or ``obtained_at`` (``"60"``, ``"yesterday"``) is taken as unknown. Refusing such an
    entry made ``revoke`` fail, then rewrite the file without it: the next ``revoke`` exited 0
    while the lease lived on.
    """
    lease_id, backend = entry.get("lease_id"), entry.get("backend")
    if not isinstance(lease_id, str) or not lease_id:
        return "no usable 'lease_id'"
    if not isinstance(backend, str) or not backend:
        return "no usable 'backend'"
    ttl = entry.get("ttl")
    path = entry.get("path")
    return Lease(
        backend=backend,
        lease_id=lease_id,
        ttl=ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else 0,
        renewable=entry.get("renewable") is True,
        path=path if isinstance(path, str) else "",
        obtained_at=_number(entry.get("obtained_at"), 0.0),
    )


def _token_from(entry: Mapping[str, Any], token: Any) -> TokenRecord | str:
    """The token record a state file entry holds (``token`` opened already), or why it cannot
    be revoked. As for leases, only the token and its backend's name are required."""
    backend = entry.get("backend")
    if not isinstance(token, str) or not token:
        return "no usable 'token'"
    if not isinstance(backend, str) or not backend:
        return "no usable 'backend'"
    accessor, ttl = entry.get("accessor"), entry.get("ttl")
    return TokenRecord(
        backend=backend,
        token=token,
        accessor=accessor if isinstance(accessor, str) else "",
        ttl=ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else 0,
        renewable=entry.get("renewable") is True,
        obtained_at=_number(entry.get("obtained_at"), 0.0),
    )


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
    timeout = state.get("timeout")
    if (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and 0 < timeout <= _MAX_TIMEOUT  # NaN and infinity fail this too
    ):
        context.timeout = float(timeout)
    # A damaged entry is reported, never fatal: everything else must still be revoked. What is
    # damaged beyond use is kept as it was (ledger.kept_*), so a rewritten file still holds it.
    for name, entry in _items(state.get("backends"), ledger, "backends"):
        try:
            options = dict(entry.get("options") or {})
            if factory is not None:
                backend = factory(name, entry["type"], options)
            else:
                backend = get_backend_class(entry["type"])(name, options, context)
        except Exception as error:  # any damage: reported, the rest revoked
            ledger.unusable.append(f"backend {name!r}: unusable state entry ({why(error)}){_KEPT}")
            ledger.kept_backends[name] = entry
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
        record = _token_from(entry, token)
        if isinstance(record, str):
            # Named by accessor only: the entry holds the token itself.
            ledger.unusable.append(
                f"token {_label(entry.get('accessor'))}: unusable state entry ({record}){_KEPT}"
            )
            ledger.kept_tokens.append(entry)
            continue
        ledger.recorded_tokens.append(record)
        if ledger.pending_resume.get(record.backend) is None:
            # Reconnect with a token we obtained: it can revoke the leases it created.
            ledger.pending_resume[record.backend] = record
    for entry in _entries(state.get("leases"), ledger, "leases"):
        lease = _lease_from(entry)
        if isinstance(lease, str):
            ledger.unusable.append(
                f"lease {_label(entry.get('lease_id'))}: unusable state entry ({lease}){_KEPT}"
            )
            ledger.kept_leases.append(entry)
            continue
        # Unknown (absent, from before owners were recorded, or damaged): any token of ours on
        # that backend may end it.
        accessor = entry.get("token_accessor")
        ledger.restore_lease(lease, accessor if isinstance(accessor, str) else None)
    damaged = state.get(_DAMAGED)
    if damaged is not None:
        # Sections an earlier revoke kept: still damage, still kept.
        kept = damaged if isinstance(damaged, dict) else {_DAMAGED: damaged}
        names = ", ".join(repr(str(name))[:40] for name in kept)
        ledger.unusable.append(f"state file: damaged section(s) {names} kept under {_DAMAGED!r}")
        ledger.kept_sections.update(kept)
    files = state.get("files", [])
    if not isinstance(files, list):
        ledger.unusable.append(f"state file: 'files' is not a list{_KEPT}")
        ledger.kept_sections["files"] = files
    for file in files if isinstance(files, list) else []:
        path = str(file)
        if os.path.basename(os.path.dirname(path)).startswith(FILES_DIR_PREFIX):
            ledger.add_file(path)
        else:
            # revoke overwrites and removes these: only a file in a directory of the kind
            # `file: true` writes to, never any path a damaged or planted state file names.
            ledger.unusable.append(
                f"secret file {_label(path)}: not in a {FILES_DIR_PREFIX}* directory, not removed"
            )
    return ledger


def _items(value: Any, ledger: Ledger, what: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The (name, entry) pairs of a state file mapping, skipping (and reporting) odd ones."""
    if value is None:
        return []
    if not isinstance(value, dict):
        ledger.unusable.append(f"state file: {what!r} is not a mapping{_KEPT}")
        ledger.kept_sections[what] = value
        return []
    pairs: list[tuple[str, Mapping[str, Any]]] = []
    for name, entry in value.items():
        if isinstance(entry, dict):
            pairs.append((str(name), entry))
        else:
            ledger.unusable.append(
                f"state file: {what} entry {str(name)!r} is not a mapping{_KEPT}"
            )
            ledger.kept_backends[str(name)] = entry
    return pairs


def _entries(value: Any, ledger: Ledger, what: str) -> list[Mapping[str, Any]]:
    """The entries of a state file list, skipping (and reporting) odd ones."""
    if value is None:
        return []
    if not isinstance(value, list):
        ledger.unusable.append(f"state file: {what!r} is not a list{_KEPT}")
        ledger.kept_sections[what] = value
        return []
    entries: list[Mapping[str, Any]] = [entry for entry in value if isinstance(entry, dict)]
    odd = [entry for entry in value if not isinstance(entry, dict)]
    if odd:
        ledger.unusable.append(f"state file: {len(odd)} odd {what} entry(ies){_KEPT}")
        (ledger.kept_leases if what == "leases" else ledger.kept_tokens).extend(odd)
    return entries
