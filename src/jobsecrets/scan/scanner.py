"""Running a scan of files on disk, in parallel, into one :class:`Report`.

Files are scanned by a few threads: the Aho-Corasick search and zlib release the GIL, so two
cores scan nearly twice as fast. At most ``2 * workers`` files are in flight, so memory stays at
a few chunks per thread plus the matcher.
"""

from __future__ import annotations

__all__ = ["scan_paths"]

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from .archives import ExpansionLimit, Limits, ScanContext, scan_object
from .matcher import Matcher
from .report import Report
from .walker import open_regular, walk


def _scan_file(
    shown: str, path: str, st: os.stat_result, matcher: Matcher, report: Report, limits: Limits
) -> None:
    ctx = ScanContext(matcher, report, limits)
    ctx.start(st.st_size)
    try:
        fd = open_regular(path, st)
    except OSError as error:
        report.add_issue((shown,), f"cannot be read: {error.strerror or error}")
        return
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
    """Scan every regular file under ``paths`` into ``report``."""
    limits = limits or Limits()
    workers = workers or min(4, os.cpu_count() or 1)
    slots = threading.BoundedSemaphore(2 * workers)
    failures: list[BaseException] = []

    def done(future: Future[None]) -> None:
        slots.release()
        error = future.exception()
        if error is not None:
            failures.append(error)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jobsecrets-scan") as pool:
        for shown, path, st in walk(paths, report):
            slots.acquire()
            if failures:
                slots.release()
                break
            future = pool.submit(_scan_file, shown, path, st, matcher, report, limits)
            future.add_done_callback(done)
    if failures:
        raise failures[0]
