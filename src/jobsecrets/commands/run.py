"""``jobsecrets run -- CMD``: resolve, run the command with the secrets, mask its output, revoke.

Whatever happens (a failing child, a signal, a resolution error halfway), what was obtained for the
job is revoked before the process exits; the child's exit code is ours unless cleanup fails.
While it runs, what it obtained is also in the job's state file (as ``export`` records it), and
taken out again at the end: a ``run`` killed outright (SIGKILL: the out-of-memory killer, a CI
hard cancel) cannot revoke, and ``jobsecrets revoke`` (a post step, an after_script, by hand)
then finds what it left alive.
"""

from __future__ import annotations

__all__ = ["run_command"]

import logging
import sys

from ..env_limits import check_child_env
from ..errors import JobSecretsError, RevokeError
from ..lifecycle.renewal import Renewer
from ..lifecycle.state import StateWriter
from ..pipeline import importing, resolve_checked
from ..session import Session

log = logging.getLogger("jobsecrets")

#: What run needs once the values are in (the child's runner, the redactor, its forms and
#: matcher), imported while the stores answer instead of before resolution starts (as export).
_AFTER_RESOLUTION = importing("jobsecrets.runner", "jobsecrets.commands.common")


def run_command(
    config: str,
    only: list[str] | None,
    argv: list[str],
    *,
    tty: bool | None,
    audit_log: str | None = None,
    scan: list[str] | None = None,
) -> int:
    """Resolve, run ``argv`` with the secrets, revoke; returns the exit code to use.

    With ``scan`` paths, they are searched for the values after the child exits and before
    revocation; a finding (9) or an incomplete scan (10) is the exit code when the child's is 0.
    """
    session = Session(config, only)
    renewer: Renewer | None = None
    code = 0
    handover = _state_writer(session)
    try:
        if handover is not None:
            session.ledger.spec_dir = session.context.spec_dir
            handover.follow()
        # policy: enforced and every variable audited (--audit-log) before the child starts.
        resolution = resolve_checked(session, "run", audit_log, meanwhile=_AFTER_RESOLUTION)
        log.info(
            "resolved %d variable(s)%s",
            len(resolution.variables),
            f", skipped optional {', '.join(resolution.skipped)}" if resolution.skipped else "",
        )
        # Messages name lease ids and accessors only (failures, leases at their max TTL).
        renewer = Renewer(
            session.ledger, on_failure=lambda message: log.warning("%s", message)
        ).start()
        env = dict(session.env)
        env.update(resolution.env())
        # NUL, or beyond the OS's size limits: say which variable, before the command starts.
        check_child_env(env, argv, [var.name for var in resolution.variables])
        # The mask list and its matcher (a noticeable fraction of a second for 1,000 secrets) are
        # built once the child runs, while it starts up; its output waits for them, unread.
        from ..runner import run_child
        from .common import masks_for

        code = run_child(argv, env, lambda: masks_for(session, resolution), tty=tty)
        if scan:
            # Issue 19: the child's outputs are checked while the values still exist to compare.
            from ..scan.command import ScanOptions, scan_values

            scan_code = scan_values(
                [(v.name, v.value) for v in resolution.variables],
                ScanOptions(paths=scan),
                min_line_length=session.spec.redact.min_line_length,
                out=sys.stderr,
            )
            code = code or scan_code
    finally:
        try:
            if renewer is not None:
                renewer.stop()
        finally:
            # Even if a signal interrupts stopping the renewer, revocation must still happen.
            try:
                report = session.finish()
            finally:
                if handover is not None:
                    _take_out(handover)
    if not report.ok and code == 0:
        raise RevokeError(f"the command succeeded but cleanup failed: {report.summary()}")
    # With a failing child, its own code wins; finish() already warned about what was not revoked.
    return int(code)


def _state_writer(session: Session) -> StateWriter | None:
    """The job's state file, to keep this run's leases and tokens in while it runs; ``None``
    (said at -v) when it cannot be used: run needs none to work, only to be found if killed."""
    import os

    from ..lifecycle.cipher import StateCipher
    from ..lifecycle.state import (
        check_state_lock,
        default_state_path,
        private_directory,
        read_state_bytes,
    )

    path = default_state_path(session.env)
    try:
        cipher = StateCipher.from_env(session.env)
        private_directory(os.path.dirname(os.path.abspath(path)))
        read_state_bytes(path)
        check_state_lock(path)
    except (OSError, ValueError, JobSecretsError) as error:
        log.info("no state file for this run (%s): if it is killed, revoke finds nothing", error)
        return None
    return StateWriter(session.ledger, path, cipher)


def _take_out(handover: StateWriter) -> None:
    """This run's records out of the state file again (what could not be revoked stays, for
    ``jobsecrets revoke``); a failure to is said, never raised over the command's outcome."""
    try:
        handover.restore()
    except (OSError, JobSecretsError) as error:
        log.warning("could not take this run's records out of the state file (%s)", error)
