"""``jobsecrets export``: resolve, write the values where the format says, hand the leases over.

The leases and tokens go to the state file (for ``jobsecrets revoke`` in a later step) as they are
obtained, and all of them before any value leaves; on any failure nothing is exported, everything
obtained is revoked and the state file is left as it was.
"""

from __future__ import annotations

__all__ = ["export_command"]

import logging
import os
import sys

from ..errors import JobSecretsError
from ..formats import FORMATS, render
from ..lifecycle.cipher import StateCipher
from ..lifecycle.ledger import why
from ..lifecycle.state import (
    StateWriter,
    check_state_lock,
    default_state_path,
    private_directory,
    read_state_bytes,
)
from ..pipeline import importing, resolve_checked
from ..platforms import exporter
from ..safe_files import write_private
from ..session import Session

log = logging.getLogger("jobsecrets")

#: What export needs once the values are in (the redactor, its forms and matcher: ~15-20 ms of
#: imports on a 2-core runner), imported while the stores answer instead of before resolution
#: starts: the sign-ins, and a backend's own process (backends/forked.py), start that much sooner.
_AFTER_RESOLUTION = importing("jobsecrets.commands.common")


def _write_output(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    # Only a regular file of ours, never a device, FIFO, symlink or another user's file.
    write_private(output, text)


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
    state_path = state or default_state_path(session.env)
    # Before anything is fetched: a state path that is no file of ours stops the job here.
    read_state_bytes(state_path)
    check_state_lock(state_path)
    handover = StateWriter(session.ledger, state_path, cipher)
    try:
        if any(s.file for s in session.spec.secrets):
            # Checked like the state file's directory, and before anything is fetched: secret
            # files must not be written where another user could swap or remove them, and a
            # --files-dir that is no directory must not fail after the values were obtained.
            if files_dir is None:
                private_directory(os.path.dirname(os.path.abspath(state_path)))
                files_dir = os.path.dirname(os.path.abspath(state_path))
            else:
                # Absolute: the variables hold these paths for later steps, which may run in
                # another directory, and revoke finds the files by them.
                files_dir = os.path.abspath(files_dir)
                private_directory(files_dir, "--files-dir", "--files-dir")
        # The state file is written as leases and tokens are obtained, not only at the end:
        # killed mid-fetch (SIGKILL, a CI hard cancel), the post step's `revoke` still finds them.
        session.ledger.spec_dir = session.context.spec_dir
        handover.follow()
        resolution = resolve_checked(
            session, "export", audit_log, files_dir=files_dir, meanwhile=_AFTER_RESOLUTION
        )
        from .common import masks_for

        masks = masks_for(session, resolution)
        # Record the leases before any value leaves: if we are killed after writing the values,
        # `revoke` still finds them.
        if not session.ledger.is_empty():
            handover.write()
            log.info("state file: %s", state_path)
        else:
            handover.stop()
        if fmt in FORMATS:
            _write_output(render(fmt, resolution.env()), output)
        else:
            exporter(fmt).export(resolution, masks, session.env, output)
    except BaseException:
        # Nothing partial: values may not have reached the job, so end what was obtained now,
        # and leave the state file as an earlier `export` of this job left it.
        try:
            session.finish()
        finally:
            # This export's records leave the file (another export's, even one written
            # meanwhile, stay), except what could not be revoked: `revoke` (post step,
            # after_script) retries that instead of finding nothing while it lives on.
            try:
                handover.restore()
            except (OSError, JobSecretsError) as error:
                print(
                    f"jobsecrets: warning: could not restore the state file {state_path} "
                    f"({why(error)})",
                    file=sys.stderr,
                )
        raise
    session.ledger.close()
