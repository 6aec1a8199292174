"""Running a scan of files on disk, in parallel, into one :class:`Report`.

Files are scanned by a few threads: the Aho-Corasick search and inflating release the GIL, so
two cores scan nearly twice as fast. Each thread holds one file at a time, plus the small files
it has read and not searched yet (about 1 MiB: they are searched together, see
:class:`~jobsecrets.scan.archives.MemberBatch`), so memory stays at a few chunks per thread plus
the matcher.
"""

from __future__ import annotations

__all__ = ["scan_paths"]

import os
import threading

from ..keysearch import BusyCores
from .archives import ExpansionLimit, Limits, MemberBatch, ScanContext, scan_object, sniff
from .matcher import Matcher
from .report import Report
from .walker import open_regular, walk

# Files smaller than this are read in one call (most files of a source tree).
_SMALL = 1 << 20


def _scan_file(
    shown: str,
    path: str,
    st: os.stat_result,
    matcher: Matcher,
    report: Report,
    limits: Limits,
    small: MemberBatch,
) -> None:
    ctx = ScanContext(matcher, report, limits)
    ctx.start(st.st_size)
    try:
        fd = open_regular(path, st)
    except OSError as error:
        report.add_issue((shown,), f"cannot be read: {error.strerror or error}")
        return
    if st.st_size < _SMALL:
        # Most files of a tree are small: one read, and when it is not an archive, one search.
        try:
            data = os.read(fd, st.st_size + 1)
        except OSError as error:
            os.close(fd)
            report.add_issue((shown,), f"cannot be read: {error.strerror or error}")
            return
        if sniff(data[:512]) is None:
            os.close(fd)
            # Searched with the thread's next small files in one call (a call per file of a
            # source tree costs more than its search); reported as if it was searched alone.
            small.add((shown,), data)
            report.count(files=1, read=len(data))
            return
        os.lseek(fd, 0, os.SEEK_SET)
    with os.fdopen(fd, "rb", buffering=0) as handle:
        try:
            scan_object(handle, (shown,), ctx, seekable=handle)
        except ExpansionLimit as error:
            report.add_issue((shown,), str(error))
        except OSError as error:
            report.add_issue((shown,), f"cannot be read: {error.strerror or error}")
    report.count(files=1, read=st.st_size)


def scan_paths(
    paths: list[str],
    matcher: Matcher,
    report: Report,
    *,
    limits: Limits | None = None,
    workers: int | None = None,
) -> None:
    """Scan every regular file under ``paths`` into ``report``.

    Each thread takes the next file from the one walk itself (under a lock): handing files from
    a main thread to a pool costs a GIL switch per file, which dominates a tree of small files.
    """
    limits = limits or Limits()
    count = workers or min(4, os.cpu_count() or 1)
    files = walk(paths, report)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        small = MemberBatch(matcher, report)
        try:
            while not failures:
                with lock:
                    item = next(files, None)
                if item is None:
                    break
                _scan_file(*item, matcher, report, limits, small)
            small.flush()
        except BaseException as error:  # re-raised in the caller's thread
            failures.append(error)
        finally:
            busy.free_one()

    # While every thread has files, each core is busy with one: a big file is searched in two
    # halves on two cores only once a thread has run out of files (keysearch.BusyCores).
    with BusyCores(count - 1) as busy:
        threads = [
            threading.Thread(target=worker, name=f"jobsecrets-scan-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
