"""Files that hold secret values: written, read and removed without harming what a path names.

``export -o PATH`` and the GitLab exporter used to ``open(O_CREAT|O_TRUNC)`` then ``fchmod(0600)``
whatever they got: run as root with ``-o /dev/null``, that made ``/dev/null`` unusable for every
other user of the machine. Here the output must be a regular file that we create, or one that
already exists and belongs to us; anything else (a device, a FIFO, a socket, a directory, someone
else's file, a symlink) is refused before a byte is written or a mode changed.

The checks are made on the opened descriptor (``fstat``), not on the path, so a path swapped
between the check and the open cannot fool them; ``O_NOFOLLOW`` refuses a symlink as the last
component and ``O_NONBLOCK`` keeps the open of a FIFO from hanging. Truncation happens only after
the checks (``O_TRUNC`` at open would already empty someone else's file).

Reading a file a variable or a spec names (:func:`read_regular`) and removing a secret file
(:func:`shred`) take the same care: a FIFO must not block, a device must not be read without end,
a symlink must not lead the overwrite to another file.
"""

from __future__ import annotations

__all__ = [
    "FILES_DIR_PREFIX",
    "append_private",
    "open_append",
    "read_at_most",
    "read_regular",
    "replace_with",
    "shred",
    "write_all",
    "write_private",
]

import contextlib
import errno
import os
import stat

from .errors import ConfigError

#: Prefix of the private directories ``file: true`` values are written to; a state file's secret
#: files are removed only from such a directory.
FILES_DIR_PREFIX = "jobsecrets-files-"


def read_regular(path: str, limit: int) -> bytes | None:
    """The contents of the regular file at ``path``, at most ``limit`` bytes; else None.

    None too when it cannot be opened, is no regular file (a FIFO is opened without blocking,
    a device never read) or holds more than ``limit`` bytes (it may grow while read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        content = read_at_most(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)
    return content if len(content) <= limit else None


def read_at_most(fd: int, limit: int) -> bytes:
    """What ``fd`` holds up to its end, but never more than ``limit + 1`` bytes.

    More than ``limit`` bytes back means there was more: the caller refuses it, having read no
    more of a file that grows, or of a device that never ends, than that.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(fd, limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def replace_with(path: str, data: bytes, mode: int = 0o600, prefix: str = ".jobsecrets-") -> None:
    """Replace ``path`` atomically by a new file of ours holding ``data``, with ``mode``.

    The new file is made by ``mkstemp`` in the same directory (never an existing name, never
    through a symlink someone planted), so ``mode`` is only ever set on a file we created;
    it is removed again if anything fails before the rename.
    """
    import tempfile  # only where a file is replaced (~5 ms of every start otherwise)

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def open_append(path: str, mode: int = 0o600, *, follow: bool = True) -> int:
    """A blocking descriptor that appends to ``path``, created with ``mode`` if it is new.

    Opened without blocking first: a FIFO that no process reads would hold ``open(2)`` for good
    (an audit log or a summary file named by mistake, or on purpose to stall a job); here that
    is an ``OSError`` at once whose ``strerror`` says so. A FIFO with a reader is written to
    (a log shipper), and the descriptor is made blocking again so that a write waits for a slow
    reader instead of failing half done. ``follow=False`` refuses a symlink (``ELOOP``).
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, mode)
    except OSError as error:
        if error.errno == errno.ENXIO:
            # ENXIO's own text ("No such device or address") would send the user looking for
            # a missing file.
            raise OSError(errno.ENXIO, "it is a FIFO (named pipe) that no process reads") from None
        raise
    try:
        os.set_blocking(fd, True)
    except OSError:
        os.close(fd)
        raise
    return fd


def shred(path: str) -> None:
    """Overwrite then remove a secret file; raises OSError when it cannot be removed.

    Overwriting is best effort (copy-on-write filesystems) and only of a regular file of ours,
    with no other name (a hard link), reached without a symlink: neither the file nor its
    directory may be one. The directory is opened first (``O_NOFOLLOW``) and the file found
    in it by name (``dir_fd``), so a state file naming ``LINK/f``, where LINK is a symlink
    to someone's directory, neither zeroes nor removes their ``f``.
    """
    directory, name = os.path.split(path)
    try:
        dir_fd = os.open(
            directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        )
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OSError(error.errno, "its directory is a symbolic link or no directory") from None
        raise
    try:
        try:
            fd = os.open(
                name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
            )
        except OSError:
            fd = -1  # a symlink (ELOOP), a directory, gone: only the name is removed below
        if fd >= 0:
            try:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_nlink == 1:
                    left = info.st_size
                    while left > 0:
                        left -= os.write(fd, bytes(min(left, 1 << 20)))
                    os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)
        os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    # The private directory the files were written to goes too once it is empty (rmdir never
    # follows a symlink in the last place).
    with contextlib.suppress(OSError):
        os.rmdir(directory)


def _refuse(path: str, why: str) -> ConfigError:
    return ConfigError(
        f"refusing to write secret values to {path}: {why}",
        hint="name a new file, or a regular file of your own (it is made 0600)",
    )


def write_private(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` as a 0600 regular file we own; see the module docstring."""
    fd = _open_private(path, 0)
    try:
        os.ftruncate(fd, 0)
        write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def append_private(path: str, text: str) -> None:
    """Append ``text`` (UTF-8) to ``path``, held to :func:`write_private`'s rules (a 0600
    regular file we own, no symlink, no other hard link), in one write."""
    fd = _open_private(path, os.O_APPEND)
    try:
        write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _open_private(path: str, extra_flags: int) -> int:
    """A blocking descriptor on ``path`` for writing, checked and made 0600; see the module
    docstring. Nothing is written or truncated here."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | extra_flags
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _refuse(path, "it is a symbolic link") from None
        if error.errno in (errno.ENXIO, errno.EISDIR):
            raise _refuse(path, "it is not a regular file") from None
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, "it is not a regular file (a device, FIFO or socket)")
        if info.st_uid != os.geteuid():
            raise _refuse(path, "it belongs to another user")
        if info.st_nlink > 1:
            # Another name for the same file could be readable by someone else.
            raise _refuse(path, "it has other hard links")
        os.set_blocking(fd, True)
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write less than it was given)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
