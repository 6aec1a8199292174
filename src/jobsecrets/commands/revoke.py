"""``jobsecrets revoke``: end every lease and token an ``export`` recorded. Safe to run twice."""

from __future__ import annotations

__all__ = ["revoke_command"]

import contextlib
import os
import sys

from .._signals import signals_deferred
from ..errors import RevokeError
from ..lifecycle.cipher import StateCipher
from ..lifecycle.state import (
    default_state_path,
    load_state,
    read_state_bytes,
    state_lock_or_warn,
    write_state,
)


def revoke_command(state: str | None) -> None:
    """Revoke what the state file records; remove it when everything is gone."""
    env = dict(os.environ)
    path = state or default_state_path(env)
    # Checked without the lock first: no state file, nothing to lock (nor a directory to make).
    if read_state_bytes(path) is None:
        _nothing(path)
        return
    # Locked from reading to rewriting or removing: an `export` writing the file meanwhile
    # would otherwise have its records dropped by the unlink or the rewrite below. A lock that
    # cannot be used is warned about, not obeyed: revoking comes first.
    with state_lock_or_warn(path):
        ledger = load_state(path, env)
        if ledger is None:
            _nothing(path)
            return
        # A cancelled job's post step may be signalled too: finish revoking first.
        with signals_deferred():
            report = ledger.revoke_all()
            ledger.close()
            if report.ok:
                try:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                except OSError as error:
                    # A directory that became read-only: what the file lists is revoked all the
                    # same, and a later `revoke` finds it revoked (safe to run twice).
                    _not_updated(path, "removed", error)
                print(f"jobsecrets: {report.summary()}", file=sys.stderr)
                return
            # Keep what could not be revoked, so a second `revoke` can try again.
            try:
                write_state(
                    ledger, path, merge=False, cipher=StateCipher.from_env(env), locked=True
                )
            except OSError as error:
                # The file still lists everything, revoked or not: a later `revoke` tries it all.
                _not_updated(path, "rewritten with what is left", error)
    raise RevokeError(
        report.summary(), hint="run `jobsecrets revoke` again, or revoke the leases listed by hand"
    )


def _nothing(path: str) -> None:
    print(f"jobsecrets: nothing to revoke (no state file at {path})", file=sys.stderr)


def _not_updated(path: str, what: str, error: OSError) -> None:
    print(
        f"jobsecrets: warning: could not update the state file {path} (not {what}: "
        f"{error.strerror or type(error).__name__})",
        file=sys.stderr,
    )
