"""What ``run``, ``export`` and ``revoke`` do, apart from their click wiring.

Each one follows the same rule: whatever happens, what was obtained for the job is revoked unless it is
handed over (to the state file, by ``export``) on purpose.
"""

from __future__ import annotations

__all__ = ["export_command", "revoke_command", "run_command"]

import contextlib
import logging
import os
import sys

from .env_limits import check_child_env
from .errors import JobSecretsError, RevokeError
from .formats import FORMATS, render
from .leases import Renewer, StateCipher, default_state_path, load_state, private_directory
from .policy import resolve_checked
from .redact import MaskList
from .resolver import Resolution
from .safe_files import write_private
from .session import Session

log = logging.getLogger("jobsecrets")


def _masks_for(session: Session, resolution: Resolution) -> MaskList:
    masks = MaskList(
        replacement=session.spec.redact.replacement,
        min_line_length=session.spec.redact.min_line_length,
    )
    for var in resolution.variables:
        masks.add(var.value, name=var.name)
    for record in session.ledger.tokens():
        # The child never gets our token, but mask it anyway: it is a credential.
        masks.add(record.token, name=f"{record.backend} token")
    for token in session.identity_tokens():
        # The CI identity token signs anyone in as this job until it expires: a credential too.
        masks.add(token, name="CI identity token")
    for warning in masks.warnings:
        log.warning("%s", warning)
    return masks


def run_command(
    config: str,
    only: list[str] | None,
    argv: list[str],
    *,
    tty: bool | None,
    audit_log: str | None = None,
) -> int:
    """Resolve, run ``argv`` with the secrets, revoke; returns the exit code to use."""
    from .runner import run_child

    session = Session(config, only)
    renewer: Renewer | None = None
    code = 0
    try:
        # policy: enforced and every variable audited (--audit-log) before the child starts.
        resolution = resolve_checked(session, "run", audit_log)
        log.info(
            "resolved %d variable(s)%s",
            len(resolution.variables),
            f", skipped optional {', '.join(resolution.skipped)}" if resolution.skipped else "",
        )
        masks = _masks_for(session, resolution)
        # Messages name lease ids and accessors only (failures, leases at their max TTL).
        renewer = Renewer(
            session.ledger, on_failure=lambda message: log.warning("%s", message)
        ).start()
        env = dict(session.env)
        env.update(resolution.env())
        # NUL, or beyond the OS's size limits: say which variable, before the command starts.
        check_child_env(env, argv, [var.name for var in resolution.variables])
        code = run_child(argv, env, masks, tty=tty)
    finally:
        try:
            if renewer is not None:
                renewer.stop()
        finally:
            # Even if a signal interrupts stopping the renewer, revocation must still happen.
            report = session.finish()
    if not report.ok and code == 0:
        raise RevokeError(f"the command succeeded but cleanup failed: {report.summary()}")
    # With a failing child, its own code wins; finish() already warned about what was not revoked.
    return int(code)


def _write_output(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    # Only a regular file of ours, never a device, FIFO, symlink or another user's file.
    write_private(output, text)


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _restore_state(path: str, previous: bytes | None) -> None:
    """Put the state file back as it was before this ``export`` (an earlier export's records)."""
    if previous is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    fd = os.open(path + ".restore", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(previous)
    os.replace(path + ".restore", path)


def export_command(
    config: str,
    only: list[str] | None,
    fmt: str,
    *,
    output: str | None,
    state: str | None,
    files_dir: str | None,
    audit_log: str | None = None,
) -> None:
    """Resolve, write the values in ``fmt``, and hand the leases over to the state file."""
    session = Session(config, only)
    # A bad or unusable $JOBSECRETS_STATE_KEY fails here, before anything is obtained.
    cipher = StateCipher.from_env(session.env)
    handed_over = False
    state_path = state or default_state_path(session.env)
    previous = _read_bytes(state_path)
    try:
        if files_dir is None and any(s.file for s in session.spec.secrets):
            files_dir = os.path.dirname(os.path.abspath(state_path))
            # Checked like the state file's directory, and before anything is fetched: secret
            # files must not be written where another user could swap or remove them.
            private_directory(files_dir)
        resolution = resolve_checked(session, "export", audit_log, files_dir=files_dir)
        masks = _masks_for(session, resolution)
        # Record the leases before any value leaves: if we are killed after writing the values,
        # `revoke` still finds them.
        session.ledger.spec_dir = session.context.spec_dir
        if not session.ledger.is_empty():
            session.ledger.write_state(state_path, cipher=cipher)
            handed_over = True
            log.info("state file: %s", state_path)
        if fmt in FORMATS:
            _write_output(render(fmt, resolution.env()), output)
        else:
            from .platforms import load_exporter

            load_exporter(fmt)(resolution, masks, session.env, output)
    except BaseException:
        # Nothing partial: values may not have reached the job, so end what was obtained now,
        # and leave the state file as an earlier `export` of this job left it.
        try:
            session.finish()
        finally:
            if handed_over:
                _restore_state(state_path, previous)
            if not session.ledger.is_empty():
                # What could not be revoked stays recorded: `revoke` (post step, after_script)
                # retries it instead of finding nothing while it lives on.
                with contextlib.suppress(OSError, JobSecretsError):
                    session.ledger.write_state(state_path, cipher=cipher)
        raise
    session.ledger.close()


def revoke_command(state: str | None) -> None:
    """Revoke what the state file records; remove it when everything is gone."""
    env = dict(os.environ)
    path = state or default_state_path(env)
    ledger = load_state(path, env)
    if ledger is None:
        print(f"jobsecrets: nothing to revoke (no state file at {path})", file=sys.stderr)
        return
    from .session import signals_deferred

    # A cancelled job's post step may be signalled too: finish revoking first.
    with signals_deferred():
        report = ledger.revoke_all()
        ledger.close()
        if report.ok:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            print(f"jobsecrets: {report.summary()}", file=sys.stderr)
            return
        # Keep what could not be revoked, so a second `revoke` can try again.
        ledger.write_state(path, merge=False, cipher=StateCipher.from_env(env))
    raise RevokeError(
        report.summary(), hint="run `jobsecrets revoke` again, or revoke the leases listed by hand"
    )
