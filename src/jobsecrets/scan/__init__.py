"""``jobsecrets scan``: look for the job's exact values, in every masked form, in files and commits.

Modules, one job each: :mod:`.matcher` (the forms of every value in one automaton),
:mod:`.content` (one stream in bounded chunks, values wrapped over lines too), :mod:`.archives`
(zip/tar/gzip/bzip2/xz/zstd, nested, with bounded depth and expansion), :mod:`.walker` (which
files, no symlink followed out of the given paths, no FIFO or device opened), :mod:`.gitsource`
(``--staged``, ``--history N``), :mod:`.scanner` (files in parallel), :mod:`.report` (findings:
where and which form, never the value) and :mod:`.command` (values in, exit code out).
"""

from __future__ import annotations

__all__ = ["Limits", "Matcher", "Report", "ScanOptions", "run_scan", "scan_values"]

from .archives import Limits
from .command import ScanOptions, run_scan, scan_values
from .matcher import Matcher
from .report import Report
