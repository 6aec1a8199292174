"""What a scan found and could not check, and how it is shown: text, JSON, a Markdown table.

A finding names the place (file, archive members, byte offset, line), the variable(s) and the
form found: never the value or any piece of it. Every text rendered here also passes through the
job's mask list, so even a file *named* after a value shows masked.
"""

from __future__ import annotations

__all__ = ["MAX_FINDINGS", "Finding", "Issue", "Report", "where_text"]

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..names import CONTROL_CHARS

#: At most this many findings are kept (the count goes on): a value in every line of a huge file
#: must not make the report itself the memory problem.
MAX_FINDINGS = 10_000


def where_text(where: tuple[str, ...]) -> str:
    """``file!member!member``: the path and the archive members leading to the data."""
    return "!".join(where)


@dataclass(frozen=True, order=True)
class Finding:
    """One occurrence of a value's form."""

    where: tuple[str, ...]
    offset: int
    line: int | None
    names: tuple[str, ...]
    form: str

    def as_dict(self) -> dict[str, object]:
        """For ``--format json``."""
        return {
            "file": self.where[0],
            "members": list(self.where[1:]),
            "offset": self.offset,
            "line": self.line,
            "variables": list(self.names),
            "form": self.form,
        }


@dataclass(frozen=True, order=True)
class Issue:
    """A place not scanned: ``error`` when it could hold a value (unreadable, a zip bomb), else a note."""

    where: tuple[str, ...]
    message: str
    error: bool = True


@dataclass
class Report:
    """Everything one scan found; threads add to it."""

    findings: list[Finding] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    total_findings: int = 0
    files: int = 0
    bytes_read: int = 0
    bytes_scanned: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_finding(self, finding: Finding) -> None:
        """Record one finding (thread-safe)."""
        with self._lock:
            self.total_findings += 1
            if len(self.findings) < MAX_FINDINGS:
                self.findings.append(finding)

    def count_unlisted(self, n: int) -> None:
        """Count ``n`` more findings that are not listed (past :data:`MAX_FINDINGS`)."""
        with self._lock:
            self.total_findings += n

    def add_issue(self, where: tuple[str, ...], message: str, *, error: bool = True) -> None:
        """Record a place that was not (fully) scanned (thread-safe)."""
        with self._lock:
            self.issues.append(Issue(where, message, error))

    def count(self, files: int = 0, read: int = 0, scanned: int = 0) -> None:
        """Add to the totals (thread-safe)."""
        with self._lock:
            self.files += files
            self.bytes_read += read
            self.bytes_scanned += scanned

    @property
    def errors(self) -> list[Issue]:
        """Issues that leave a place unchecked."""
        return [i for i in self.issues if i.error]

    def sorted(self) -> None:
        """Put findings and issues in path order (threads add them in any order)."""
        self.findings.sort()
        self.issues.sort()

    # ---- rendering ---------------------------------------------------------------------------

    def finding_lines(self, mask: Callable[[str], str]) -> list[str]:
        """``place: VAR (form)`` per finding."""
        lines = []
        for f in self.findings:
            place = where_text(f.where)
            at = f"{place}:{f.line}" if f.line is not None else place
            lines.append(_shown(mask(f"{at}: offset {f.offset}: {', '.join(f.names)} ({f.form})")))
        return lines

    def issue_lines(self, mask: Callable[[str], str]) -> list[str]:
        """``error: place: message`` / ``note: ...`` per issue."""
        return [
            _shown(mask(f"{'error' if i.error else 'note'}: {where_text(i.where)}: {i.message}"))
            for i in self.issues
        ]

    def summary_line(self) -> str:
        """One line of totals."""
        more = (
            f" (first {len(self.findings)} listed)"
            if self.total_findings > len(self.findings)
            else ""
        )
        return (
            f"{self.total_findings} finding(s){more}, {len(self.errors)} error(s); "
            f"{self.files} file(s), {self.bytes_read / 1e6:.1f} MB read, "
            f"{self.bytes_scanned / 1e6:.1f} MB scanned"
        )

    def as_json(self, mask: Callable[[str], str], skipped: list[str]) -> str:
        """The whole report as one JSON document."""
        data = {
            "findings": [f.as_dict() for f in self.findings],
            "total_findings": self.total_findings,
            "issues": [
                {"file": where_text(i.where), "message": i.message, "error": i.error}
                for i in self.issues
            ],
            "not_searched": skipped,
            "files": self.files,
            "bytes_read": self.bytes_read,
            "bytes_scanned": self.bytes_scanned,
        }
        return mask(json.dumps(data, indent=2, sort_keys=True))

    def markdown(self, mask: Callable[[str], str]) -> str:
        """A table for ``$GITHUB_STEP_SUMMARY``: variable, file, form."""
        if not self.findings and not self.errors:
            return "### jobsecrets scan: no value found\n\n" + self.summary_line() + "\n"
        rows = ["### jobsecrets scan: values found in files", "", "| variable | file | form |"]
        rows.append("|---|---|---|")
        for f in self.findings:
            place = where_text(f.where) + (f":{f.line}" if f.line is not None else "")
            cells = [", ".join(f.names), place, f.form]
            rows.append("| " + " | ".join(_cell(mask(c)) for c in cells) + " |")
        for i in self.errors:
            rows.append(
                f"| (not scanned) | {_cell(mask(where_text(i.where)))} | {_cell(i.message)} |"
            )
        return "\n".join(rows) + "\n\n" + self.summary_line() + "\n"


def _cell(text: str) -> str:
    return _shown(text.replace("|", "\\|").replace("`", "'"))


def _shown(line: str) -> str:
    """``line`` with its control characters written as ``\\xNN``, after masking.

    File and member names come from whoever made the tree or the archive: a name holding a line
    break would start a new line in the job's log, ``::stop-commands::...`` or ``::error::...``
    to the GitHub runner, and a terminal escape would rewrite what the log shows.
    """
    return CONTROL_CHARS.sub(lambda match: f"\\x{ord(match.group()):02x}", line)
