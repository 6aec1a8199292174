"""``jobsecrets scan``: where the values come from, what is scanned, what is printed, the exit code.

Values come from where the job has them:

* ``run --scan PATH`` hands over the values it resolved (:func:`scan_values`);
* ``scan -c SPEC`` resolves the spec itself (a local check), and revokes what it obtained at once;
* otherwise, in a later CI step, from this process's environment by the names ``export`` recorded
  (``$JOBSECRETS_MASK_VARS``, ``$JOBSECRETS_MASK_FILE_VARS``), exactly as ``jobsecrets redact``
  finds them (:func:`jobsecrets.filter.values_from_env`).

Exit codes: 0 clean; 9 (:class:`~jobsecrets.errors.LeakFound`) when a value was found; 10
(:class:`~jobsecrets.errors.ScanIncomplete`) when nothing was found but something could not be
scanned (unreadable, damaged, a decompression bomb, nested too deep).
"""

from __future__ import annotations

__all__ = ["ScanOptions", "run_scan", "scan_values", "values_for_scan"]

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from ..errors import ConfigError, LeakFound, ScanIncomplete
from ..recorded import recorded_min_line_length, recorded_names, values_from_env
from ..redact import DEFAULT_MIN_LINE_LENGTH, MaskList
from ..safe_files import open_append
from .archives import Limits
from .gitsource import history_blobs, scan_blobs, staged_blobs
from .matcher import DEFAULT_MIN_LENGTH, Matcher
from .report import Report
from .scanner import scan_paths

log = logging.getLogger("jobsecrets")


@dataclass
class ScanOptions:
    """What to scan and how to report it (the command line's options)."""

    paths: list[str] = field(default_factory=list)
    staged: bool = False
    history: int | None = None
    fmt: str = "text"
    summary: str | None = None
    min_length: int = DEFAULT_MIN_LENGTH
    limits: Limits = field(default_factory=Limits)


def values_for_scan(env: Mapping[str, str]) -> tuple[list[tuple[str, str | bytes]], int]:
    """The values a later CI step holds, by the names ``export`` recorded; and min line length."""
    names, file_names = recorded_names(env)
    if not names and not file_names:
        raise ConfigError(
            "no values to look for: no -c/--config, and $JOBSECRETS_MASK_VARS names no variable",
            hint="run it in a step after `jobsecrets export` (the Action and the GitLab include "
            "record the names), or give -c SPEC to resolve the values here",
        )
    values, missing = values_from_env(env, names, file_names)
    for name in missing:
        log.warning("%s is not set or empty: not searched for", name)
    return values, recorded_min_line_length(env) or DEFAULT_MIN_LINE_LENGTH


def scan_values(
    values: Sequence[tuple[str, str | bytes]],
    options: ScanOptions,
    *,
    min_line_length: int = DEFAULT_MIN_LINE_LENGTH,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Scan with these ``(name, value)`` pairs; print the report; return the exit code."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if not options.paths and not options.staged and options.history is None:
        raise ConfigError("nothing to scan: give PATH..., --staged or --history N")
    matcher = Matcher(values, min_length=options.min_length, min_line_length=min_line_length)
    masks = MaskList(min_line_length=min_line_length)
    for name, value in values:
        masks.add(value, name=name)
    for name in matcher.skipped:
        log.warning(
            "%s: value shorter than %d bytes: not searched for (--min-length)",
            name,
            options.min_length,
        )
    report = Report()
    if len(matcher) == 0:
        log.warning("no value to look for: the scan finds nothing by construction")
    if options.paths:
        scan_paths(options.paths, matcher, report, limits=options.limits)
    if options.staged:
        scan_blobs(staged_blobs(), matcher, report, limits=options.limits)
    if options.history is not None:
        scan_blobs(history_blobs(options.history), matcher, report, limits=options.limits)
    report.sorted()
    mask = masks.redact_text
    if options.fmt == "json":
        out.write(report.as_json(mask, matcher.skipped) + "\n")
    else:
        for line in report.finding_lines(mask):
            out.write(line + "\n")
    for line in report.issue_lines(mask):
        err.write(f"jobsecrets: scan: {line}\n")
    err.write(f"jobsecrets: scan: {report.summary_line()}\n")
    out.flush()
    if options.summary:
        try:
            # Not open(): a FIFO nothing reads would hang the scan after its findings.
            fd = open_append(options.summary, 0o666)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(report.markdown(mask))
        except OSError as error:
            err.write(f"jobsecrets: warning: could not write the summary: {error.strerror}\n")
    if report.total_findings:
        return LeakFound.exit_code
    if report.errors:
        return ScanIncomplete.exit_code
    return 0


def run_scan(config: str | None, only: list[str] | None, options: ScanOptions) -> int:
    """``jobsecrets scan``: values from ``config`` (resolved here) or from the environment."""
    if config is None:
        values, min_line = values_for_scan(os.environ)
        return scan_values(values, options, min_line_length=min_line)
    from ..pipeline import resolve_checked
    from ..session import Session

    session = Session(config, only)
    try:
        resolution = resolve_checked(session, "scan", None)
        return scan_values(
            [(v.name, v.value) for v in resolution.variables],
            options,
            min_line_length=session.spec.redact.min_line_length,
        )
    finally:
        # A local check holds nothing beyond the scan: end every lease and token now.
        session.finish()
