"""Which files a scan reads: regular files under the given paths, no symlink followed out of them.

* A path given on the command line is taken as named (if it is a symlink, its target is scanned:
  the user asked for it). Below it, no symlink is followed: one pointing inside the given paths is
  scanned where it points to anyway, one pointing outside (or dangling, or in a loop) is listed as
  a note and not read. So symlink loops cannot loop and ``/`` cannot be reached through a link.
* FIFOs, sockets and devices are never opened (opening a FIFO blocks, reading a device never
  ends): they are listed as notes. Files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked
  again after opening, so a file swapped for a FIFO or a link in between is not read either.
* A file reached twice (a hard link, a path given twice) is read once.
* What cannot be read (permissions, a directory that cannot be listed) is an error: the scan
  cannot say it is clean.
"""

from __future__ import annotations

__all__ = ["open_regular", "walk"]

import errno
import os
import stat
from collections.abc import Iterator

from .report import Report

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def walk(paths: list[str], report: Report) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(path shown, path to open, stat)`` of every regular file; the rest goes to ``report``."""
    roots = [os.path.realpath(p) for p in paths]
    seen: set[tuple[int, int]] = set()

    def take(
        shown: str, path: str, st: os.stat_result
    ) -> Iterator[tuple[str, str, os.stat_result]]:
        key = (st.st_dev, st.st_ino)
        if key not in seen:
            seen.add(key)
            yield shown, path, st

    for top in paths:
        try:
            st = os.stat(top)
        except FileNotFoundError:
            # Nothing there, nothing to upload (GitLab only warns about a missing artifact path).
            report.add_issue((top,), "does not exist: nothing to scan", error=False)
            continue
        except OSError as error:
            report.add_issue((top,), f"cannot be read: {error.strerror}")
            continue
        if stat.S_ISREG(st.st_mode):
            # Opened by its real path: O_NOFOLLOW must not refuse a symlink the user named.
            yield from take(top, os.path.realpath(top), st)
            continue
        if not stat.S_ISDIR(st.st_mode):
            report.add_issue((top,), f"{_kind(st.st_mode)}: not read", error=False)
            continue
        # Each directory with what its parent's listing said it was: it is listed only if it
        # still is that directory (a symlink swapped in meanwhile would lead out of the tree).
        stack: list[tuple[str, os.stat_result, bool]] = [(top, st, True)]
        while stack:
            directory, expected, named = stack.pop()
            try:
                listed = _listing(directory, expected, follow=named)
            except OSError as error:
                report.add_issue(
                    (os.path.normpath(directory),), f"cannot be listed: {error.strerror}"
                )
                continue
            subdirs: list[tuple[str, os.stat_result, bool]] = []
            for name, found in listed:
                path = os.path.join(directory, name)
                if isinstance(found, OSError):
                    report.add_issue((os.path.normpath(path),), f"cannot be read: {found.strerror}")
                    continue
                st = found
                if stat.S_ISLNK(st.st_mode):
                    target = os.path.realpath(path)
                    if not (os.path.exists(target) and _inside(target, roots)):
                        report.add_issue(
                            (os.path.normpath(path),),
                            "symlink to outside the scanned paths (or dangling, or a loop): "
                            "not followed",
                            error=False,
                        )
                elif stat.S_ISDIR(st.st_mode):
                    subdirs.append((path, st, False))
                elif stat.S_ISREG(st.st_mode):
                    # Shown without a leading "./" (scan . names files as the user sees them).
                    yield from take(os.path.normpath(path), path, st)
                else:
                    report.add_issue(
                        (os.path.normpath(path),), f"{_kind(st.st_mode)}: not read", error=False
                    )
            stack.extend(reversed(subdirs))


def _listing(
    directory: str, expected: os.stat_result, *, follow: bool
) -> list[tuple[str, os.stat_result | OSError]]:
    """Each entry of ``directory`` (sorted by name) with its ``lstat`` (or the error), if it is
    still the directory ``expected`` describes (the entries are looked at through it).

    Opened without following a symlink unless the user named it (``follow``), and compared by
    device and inode with what was seen before; raises :class:`OSError` otherwise.
    """
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(directory, flags)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OSError(error.errno, "changed while the scan ran") from None
        raise
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (expected.st_dev, expected.st_ino):
            raise OSError(errno.ESTALE, "changed while the scan ran")
        listed: list[tuple[str, os.stat_result | OSError]] = []
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    listed.append((entry.name, entry.stat(follow_symlinks=False)))
                except OSError as error:
                    listed.append((entry.name, error))
        return sorted(listed, key=lambda item: item[0])
    finally:
        os.close(fd)


def open_regular(path: str, expected: os.stat_result) -> int:
    """Open ``path`` for reading only if it is still the regular file ``expected`` describes.

    Raises :class:`OSError` otherwise (ELOOP for a symlink swapped in, EINVAL for a FIFO...).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (
            expected.st_dev,
            expected.st_ino,
        ):
            raise OSError(22, "changed while the scan ran")
        # O_NONBLOCK stays: it changes nothing for a regular file, and saves two system calls.
    except BaseException:
        os.close(fd)
        raise
    return fd
