"""``jobsecrets redact``: a filter that masks a job's secrets in whatever is piped through it.

The GitLab include resolves the secrets into the job's shell and then sends everything that shell
prints through this filter (``exec >fifo 2>&1``), because GitLab cannot mask values fetched at run
time. The filter learns the values the way the job itself holds them: from its own environment, by
the variable *names* listed in ``$JOBSECRETS_MASK_VARS`` (and ``$JOBSECRETS_MASK_FILE_VARS`` for
``file: true`` variables, whose contents are masked). Values never travel in argv or a file.

It reads stdin until every writer has closed it, emits redacted output as soon as it safely can
(the redactor holds back only a tail that could still become a secret), and at the end flushes what
it held. ``--done-file`` names a file it removes once its last byte has been written: the job's
shell waits for that before it exits, so no output is lost or reordered at the end of the job.
Only the regular file found there at the start is removed (never a device, a FIFO, a directory, a
symlink, or a file put there later): ``--done-file /dev/null`` run as root removed /dev/null.

Values are taken as the bytes the job holds, also when they are not UTF-8. It never fails open or
exits early: if the mask list cannot be built, it says so in the log, withholds the output, reads
its input to the end (so the job's writes neither fail nor block) and exits 1.

Signals: SIGINT and SIGHUP are ignored (a Ctrl-C or hangup reaches the job's shell, whose exit ends
our input anyway); SIGTERM stops reading and flushes what is held, redacted. It is noticed between
reads (through a wakeup pipe), never raised in the middle of a write: every byte read comes out.
"""

from __future__ import annotations

__all__ = ["build_masks", "run_filter", "run_filter_from_env"]

import contextlib
import logging
import os
import select
import signal
import stat
from collections.abc import Mapping
from types import FrameType

from ..recorded import (
    REPLACEMENT_ENV,
    VARS_ENV,
    recorded_min_line_length,
    recorded_names,
    values_from_env,
)
from ..redact import DEFAULT_MIN_LINE_LENGTH, DEFAULT_REPLACEMENT, MaskList
from ..safe_files import write_all

# Pipes deliver at most 64 KiB per read on Linux; a bigger buffer costs nothing and helps on macOS.
_READ_SIZE = 1 << 20
log = logging.getLogger("jobsecrets")


def build_masks(
    env: Mapping[str, str],
    names: list[str],
    file_names: list[str],
    *,
    replacement: bytes | str = DEFAULT_REPLACEMENT,
    min_line_length: int = DEFAULT_MIN_LINE_LENGTH,
) -> tuple[MaskList, list[str]]:
    """The mask list for the values these variables hold; also the names that held nothing.

    For ``file_names`` the variable holds a path: the file's contents are masked (the path is not
    a secret).
    """
    masks = MaskList(replacement=replacement, min_line_length=min_line_length)
    values, missing = values_from_env(env, names, file_names)
    for name, value in values:
        masks.add(value, name=name)
    return masks, missing


class _DoneFile:
    """The ``--done-file``: the regular file found at its path when the filter starts.

    Removed at the end only if the path still names that very file, so a path the caller got
    wrong (a device, a FIFO, a directory, a symlink, nothing yet) is never removed, however the
    filter is run and by whom. The file is held open (``O_PATH``: no I/O, no device opened) until
    then: its inode cannot be freed and reused by a new file at the same path meanwhile, so
    comparing device and inode is enough.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fd = -1
        if not path:
            return
        flags = getattr(os, "O_PATH", os.O_RDONLY | os.O_NONBLOCK) | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags)
        except OSError as error:
            log.warning("--done-file %s: %s: it will not be removed", path, error.strerror)
            return
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            log.warning("--done-file %s is not a regular file: it will not be removed", path)
            return
        self._fd = fd

    def remove(self) -> None:
        """Remove the file if the path still names the one found at the start; never raises."""
        if self.path is None or self._fd < 0:
            return
        with contextlib.suppress(OSError):
            held, now = os.fstat(self._fd), os.lstat(self.path)
            if stat.S_ISREG(now.st_mode) and (now.st_dev, now.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = -1


def _on_term(signum: int, frame: FrameType | None) -> None:
    # Nothing here: the wakeup fd tells the loop. Raising would drop a chunk being written.
    pass


def run_filter(
    env: Mapping[str, str],
    names: list[str],
    file_names: list[str],
    *,
    replacement: bytes | str | None = None,
    min_line_length: int | None = None,
    done_file: str | None = None,
    in_fd: int = 0,
    out_fd: int = 1,
) -> int:
    """Copy ``in_fd`` to ``out_fd`` with every listed value masked; returns the exit code (0)."""
    done = _DoneFile(done_file)
    try:
        masks, missing = build_masks(
            env,
            names,
            file_names,
            replacement=replacement if replacement is not None else DEFAULT_REPLACEMENT,
            min_line_length=min_line_length
            if min_line_length is not None
            else DEFAULT_MIN_LINE_LENGTH,
        )
        for name in missing:
            log.info("%s is not set or empty: nothing to mask for it", name)
        for warning in masks.warnings:
            # `export` already warned about these in the job log; here only with -v.
            log.info("%s", warning)
        if not names and not file_names:
            log.warning(
                "no variables to mask were named ($%s is empty): output passes as is", VARS_ENV
            )
        redactor = masks.redactor()
    except Exception as error:
        return _withhold(
            in_fd, out_fd, f"could not build the mask list ({type(error).__name__})", done
        )
    try:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        # The wakeup fd first: a SIGTERM the moment our handler is in place must not go unseen.
        previous_wakeup = signal.set_wakeup_fd(wake_w)
        # Installed only now: `main()` turned SIGTERM into an exception that would skip the flush.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _on_term)
        output_open = True
        try:
            while True:
                ready, _, _ = select.select([in_fd, wake_r], [], [])
                if wake_r in ready:
                    break  # SIGTERM
                chunk = os.read(in_fd, _READ_SIZE)
                if not chunk:
                    break
                out = redactor.feed(chunk)
                if out and output_open:
                    try:
                        write_all(out_fd, out)
                    except BrokenPipeError:
                        # Nobody reads the log any more; keep draining so the job's writes do not
                        # fail with SIGPIPE while it is still running.
                        output_open = False
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            tail = redactor.flush()
            if tail and output_open:
                with contextlib.suppress(OSError):
                    write_all(out_fd, tail)
        return 0
    finally:
        done.remove()


def _withhold(in_fd: int, out_fd: int, reason: str, done: _DoneFile) -> int:
    """Masking cannot work: say so in the log, then read the input to its end, passing nothing.

    Failing open would print the secrets; exiting would make every later write of the job fail
    (or block) and lose the rest of its log. So the job runs on, its output is withheld, the
    log says why, and the exit code is 1.
    """
    message = f"jobsecrets redact: {reason}: the job's output is withheld from the log\n"
    with contextlib.suppress(OSError):
        write_all(out_fd, message.encode())
    log.error("%s", message.strip())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        while os.read(in_fd, _READ_SIZE):
            pass
    except OSError:
        pass
    done.remove()
    return 1


def run_filter_from_env(env: Mapping[str, str], *, done_file: str | None = None) -> int:
    """:func:`run_filter` configured by the ``$JOBSECRETS_MASK_*`` variables of ``env``."""
    names, file_names = recorded_names(env)
    return run_filter(
        env,
        names,
        file_names,
        replacement=env.get(REPLACEMENT_ENV) or None,
        min_line_length=recorded_min_line_length(env),
        done_file=done_file,
    )
