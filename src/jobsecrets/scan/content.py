"""Matching one byte stream in bounded chunks, including values broken across lines.

The stream is read :data:`CHUNK` bytes at a time; the last ``2 * maxlen + 256`` bytes of each chunk
are searched again with the next, so an occurrence cut by a chunk boundary is found, and memory
stays at a few chunks whatever the stream's size. Occurrences are counted once (by their start).

Two views of each text chunk are searched:

* the bytes as they are;
* the bytes with every CR, LF, space and tab removed, for a value (or its base64) wrapped over
  several lines: ``base64`` at 76 columns, PEM at 64, a YAML folded scalar with its indentation,
  a formatter's line wrap. Only matches that really span a line break are reported from this view,
  so it adds no finding the first view has, and nothing on one line. Chunks with a NUL byte in
  their first 8 KiB are binary: only the first view, no line numbers.
"""

from __future__ import annotations

__all__ = ["CHUNK", "scan_stream"]

import bisect
import re
from collections.abc import Callable

from .matcher import Matcher
from .report import Finding, Report

#: Bytes read per step; big enough that the re-searched overlap and the per-call cost vanish.
CHUNK = 4 << 20
_SPACE = b"\r\n\t "
_SPACE_RUNS = re.compile(rb"[\r\n\t ]+")
_BINARY_PROBE = 8192


def _raw_offsets(data: bytes) -> Callable[[int], int]:
    """A function mapping an offset in ``data`` without whitespace to the offset in ``data``.

    Built only when the whitespace-free view had a match (rare), so its Python loop costs nothing
    on clean data.
    """
    starts: list[int] = []  # view offset where each whitespace run was removed
    removed: list[int] = []  # bytes removed up to and including that run
    total = 0
    for run in _SPACE_RUNS.finditer(data):
        starts.append(run.start() - total)
        total += run.end() - run.start()
        removed.append(total)

    def raw(view_offset: int) -> int:
        i = bisect.bisect_right(starts, view_offset)
        return view_offset + (removed[i - 1] if i else 0)

    return raw


def scan_stream(
    read: Callable[[int], bytes],
    matcher: Matcher,
    where: tuple[str, ...],
    report: Report,
    *,
    first: bytes = b"",
) -> int:
    """Search everything ``read`` returns (after ``first``); returns the number of bytes searched."""
    keep = 2 * matcher.maxlen + 256
    tail = b""
    base = 0  # stream offset of data[0]
    lines_before = 0  # line breaks in the stream before data[0]
    binary: bool | None = None
    seen: set[int] = set()
    total = 0
    pending = first
    while True:
        chunk = pending or read(CHUNK)
        pending = b""
        if not chunk:
            break
        total += len(chunk)
        data = tail + chunk if tail else chunk
        if binary is None:
            binary = b"\x00" in data[:_BINARY_PROBE]

        hits = [(pattern, start, "") for pattern, start, _end in matcher.find(data)]
        if not binary:
            view = data.translate(None, _SPACE)
            if len(view) != len(data):
                wrapped = matcher.find(view)
                if wrapped:
                    raw = _raw_offsets(data)
                    for pattern, start, end in wrapped:
                        raw_start, raw_end = raw(start), raw(end - 1) + 1
                        piece = data[raw_start:raw_end]
                        if b"\n" in piece or b"\r" in piece:
                            hits.append((pattern, raw_start, ", split across lines"))
        for pattern, start, suffix in hits:
            offset = base + start
            if offset in seen:
                continue
            seen.add(offset)
            line = None if binary else lines_before + data.count(b"\n", 0, start) + 1
            owners = matcher.owners(pattern)
            names = tuple(dict.fromkeys(name for name, _ in owners))
            form = " / ".join(dict.fromkeys(label for _, label in owners)) + suffix
            report.add_finding(Finding(where, offset, line, names, form))
        cut = max(0, len(data) - keep)
        if not binary:
            lines_before += data.count(b"\n", 0, cut)
        tail = data[cut:]
        base += cut
    return total
