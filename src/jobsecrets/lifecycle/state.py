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
    "default_state_path",
    "load_state",
    "private_directory",
    "read_state_bytes",
    "state_of",
    "write_state",
]

import dataclasses
import json
import os
import stat
import time
from collections.abc import Callable, Mapping
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
    owners = ledger.lease_owners()
    tokens: list[dict[str, Any]] = []
    for record in ledger.tokens():
        entry = asdict(record)
        if cipher is not None:
            entry["token_sealed"] = cipher.seal(entry.pop("token"))
        tokens.append(entry)
    return {
        "version": STATE_VERSION,
        "created": time.time(),
        "spec_dir": os.path.abspath(ledger.spec_dir),
        # The spec's per-request timeout, which `revoke` (no spec at hand) bounds requests by.
        "timeout": next((b.context.timeout for b in ledger.backend_list()), None),
        "backends": {
            backend.name: {"type": backend.type_name, "options": backend.recorded_options()}
            for backend in ledger.backend_list()
        },
        "tokens": tokens + [dict(entry) for entry in ledger.unreadable_tokens],
        # Field by field, not asdict(): a lease holds plain values, and asdict's recursive
        # deep copy was half of writing the state for 2,500 leases.
        "leases": [
            {
                **{name: getattr(lease, name) for name in _LEASE_NAMES},
                "token_accessor": owners.get(lease.lease_id, ""),
            }
            for lease in ledger.lease_list()
        ],
        "files": list(ledger.files),
    }


def write_state(
    ledger: Ledger, path: str, merge: bool = True, cipher: StateCipher | None = None
) -> None:
    """Write (or merge into) the state file, 0600 in a private directory, atomically."""
    state = state_of(ledger, cipher)
    if merge:
        try:
            previous = _read_state(path)
        except FileNotFoundError:
            previous = None
        if previous is not None:
            _merge(state, previous)
    private_directory(os.path.dirname(os.path.abspath(path)))
    # One write of the whole text: json.dump writes every token of it separately.
    replace_with(path, json.dumps(state, indent=1).encode("utf-8"), 0o600, prefix=".state-")


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
    content = read_state_bytes(path)
    if content is None:
        raise FileNotFoundError(path)
    try:
        state = jsonsafe.loads(content.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError among them
        raise ConfigError(f"cannot read state file {path}: {type(error).__name__}") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ConfigError(
            f"state file {path} is not a jobsecrets state file (version {STATE_VERSION})"
        )
    return state


_LEASE_FIELDS = {f.name for f in dataclasses.fields(Lease)}
#: The same, in declaration order (the state file's key order).
_LEASE_NAMES = tuple(f.name for f in dataclasses.fields(Lease))
_TOKEN_FIELDS = {f.name for f in dataclasses.fields(TokenRecord)}
#: The types a restored field may have, by the annotation's name (the dataclasses' are strings).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}


def _wrong_field(record: Lease | TokenRecord) -> str | None:
    """The first field of a record read back from a state file whose value has the wrong type.

    A damaged or hostile file can hold a list for a lease id: kept, it is an unhashable key or
    a TypeError deep in revocation, which then ends nothing at all.
    """
    for spec in dataclasses.fields(record):
        value = getattr(record, spec.name)
        # The annotation is a string here (postponed annotations), a class otherwise.
        kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
        allowed = _FIELD_TYPES.get(kind)
        if allowed is None:
            continue
        # A bool is an int to isinstance: not a ttl or a time all the same.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            return spec.name
    return None


def _label(value: object) -> str:
    """An id from a state file for a message: a string, cut short; anything else ``?``."""
    return shown_id(value[:80]) if isinstance(value, str) and value else "?"


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
    # A damaged entry is skipped and reported, never fatal: everything else must still be revoked.
    for name, entry in _items(state.get("backends"), ledger, "backends"):
        try:
            options = dict(entry.get("options") or {})
            if factory is not None:
                backend = factory(name, entry["type"], options)
            else:
                backend = get_backend_class(entry["type"])(name, options, context)
        except Exception as error:  # any damage: reported, the rest revoked
            ledger.unusable.append(f"backend {name!r}: unusable state entry ({why(error)})")
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
                f"token {_label(entry.get('accessor'))}: unusable state entry (fields missing)"
            )
            continue
        wrong = _wrong_field(record)
        if wrong is not None:
            ledger.unusable.append(
                f"token {_label(entry.get('accessor'))}: unusable state entry "
                f"('{wrong}' has the wrong type)"
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
                f"lease {_label(entry.get('lease_id'))}: unusable state entry (fields missing)"
            )
            continue
        wrong = _wrong_field(lease)
        if wrong is not None:
            ledger.unusable.append(
                f"lease {_label(entry.get('lease_id'))}: unusable state entry "
                f"('{wrong}' has the wrong type)"
            )
            continue
        owner = str(entry["token_accessor"] or "") if "token_accessor" in entry else None
        ledger.restore_lease(lease, owner)
    files = state.get("files", [])
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
