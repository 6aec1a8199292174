"""Matching one byte stream in bounded chunks, values broken over lines included.

The stream is read :data:`CHUNK` bytes at a time. The matcher's keys are searched in each chunk
(without the GIL); each key found is verified where it is (:meth:`Matcher.verify`). A key in the
last ``2 * maxlen + 256`` bytes of a chunk is left for the next one, which starts ``4 * maxlen + 512``
bytes before the end of this one: every key is verified once, with at least ``2 * maxlen + 256``
bytes on both sides of it, so an occurrence cut by a chunk boundary (or spread over lines) is
seen whole. Memory stays at a few chunks whatever the stream's size.

At each start only the longest form is reported, and a form inside another (a line of a
multi-line value within the value) is not reported again. In text, a value broken by line
breaks (``base64`` at 76 columns, PEM at 64, a YAML folded scalar with its indentation, ``fold``)
is reported with ``split across lines``. Streams with a NUL byte in their first 8 KiB are binary:
no line breaks are skipped, and no line numbers are given.
"""

from __future__ import annotations

__all__ = ["CHUNK", "scan_stream"]

from collections.abc import Callable
from typing import Any

from ..hexdumps import find_dumps
from .matcher import Matcher
from .report import MAX_FINDINGS, Finding, Report

#: Bytes read per step; big enough that the re-searched overlap and the per-call cost vanish.
CHUNK = 4 << 20
_BINARY_PROBE = 8192


def scan_stream(
    read: Callable[[int], bytes],
    matcher: Matcher,
    where: tuple[str, ...],
    report: Report,
    *,
    first: bytes = b"",
    lines_from: Any = None,
) -> int:
    """Search everything ``read`` returns (after ``first``); returns the number of bytes searched.

    ``lines_from`` is the same data as a seekable file: line numbers are then counted at the end,
    for the findings only, instead of for every chunk.
    """
    # Twice the longest form on each side of a key: a wrapped form may carry as many bytes of
    # whitespace as it has bytes (the most _wrapped_match skips).
    keep = 4 * matcher.maxlen + 512
    margin = keep // 2
    tail = b""
    base = 0  # stream offset of data[0]
    done_upto = 0  # keys before this stream offset have been verified
    covered_until = -1  # end of the last reported occurrence
    lines_before = 0  # line breaks in the stream before data[0] (without lines_from)
    binary: bool | None = None
    found: list[tuple[int, int, str, int | None]] = []  # offset, form, how, line
    uncounted = 0  # occurrences beyond MAX_FINDINGS in this stream: counted, not listed
    # One chunk read ahead: the last chunk is known to be the last, so it is searched once
    # (a small file costs one search, not one more for its tail).
    chunk = first + read(CHUNK - len(first)) if len(first) < CHUNK else first
    total = 0
    while chunk:
        ahead = read(CHUNK)
        total += len(chunk)
        final = not ahead
        data = tail + chunk if tail else chunk
        chunk = ahead
        if binary is None:
            binary = b"\x00" in data[:_BINARY_PROBE]
        limit = len(data) if final else len(data) - margin
        matches: list[tuple[int, int, int, str]] = []
        dumps: list[int] = []
        for key_id, at, _end in matcher.candidates(data):
            if at >= limit or base + at < done_upto:
                continue
            if key_id >= matcher.dump_keys_from:
                dumps.append(at)
                continue
            matches.extend(
                (form_id, start, end, ", split across lines" if wrapped else "")
                for form_id, start, end, wrapped in matcher.verify(
                    data, key_id, at, wrapped=not binary
                )
            )
        if dumps and not binary:
            matches.extend(_in_dumps(data, dumps, matcher, matches))
        # Longest first at each start; then skip what an earlier occurrence already covers.
        # Lines counted from the last finding on, not from the start for each: a chunk of
        # nothing but findings was quadratic (4 MiB of one value: minutes).
        counted_to, counted = 0, 0
        for form_id, start, end, how in sorted(matches, key=lambda m: (m[1], -m[2])):
            if base + end <= covered_until:
                continue
            covered_until = max(covered_until, base + end)
            line = None
            if not binary and lines_from is None:
                counted += data.count(b"\n", counted_to, start)
                counted_to = start
                line = lines_before + counted + 1
            if len(found) < MAX_FINDINGS:
                found.append((base + start, form_id, how, line))
            else:
                # A file made of a value must not make the list of its findings the memory problem.
                uncounted += 1
        if final:
            break
        done_upto = base + limit
        cut = max(0, len(data) - keep)
        if not binary and lines_from is None:
            lines_before += data.count(b"\n", 0, cut)
        tail = data[cut:]
        base += cut
    if found and not binary and lines_from is not None:
        lines = _lines_at(lines_from, [offset for offset, _, _, _ in found])
        found = [(o, f, w, lines[o]) for o, f, w, _ in found]
    for offset, form_id, how, line in found:
        owners = matcher.owners(form_id)
        names = tuple(dict.fromkeys(name for name, _ in owners))
        form = " / ".join(dict.fromkeys(label for _, label in owners)) + how
        report.add_finding(Finding(where, offset, line, names, form))
    if uncounted:
        report.count_unlisted(uncounted)
    return total


def _in_dumps(
    data: bytes,
    starts: list[int],
    matcher: Matcher,
    plain: list[tuple[int, int, int, str]],
) -> list[tuple[int, int, int, str]]:
    """Forms found in the bytes the hex dumps of ``data`` show (xxd, hexdump, od: see
    :mod:`jobsecrets.hexdumps`), each as ``(form id, start, end, how)`` with start and end the
    span of the dump's lines that print it. A form already found as it is inside the dump (a
    short value whole in one line's ASCII column) is not reported twice. A dump is decoded from
    its first line to its end within this chunk (4 MiB).
    """
    found: list[tuple[int, int, int, str]] = []
    for dump in find_dumps(data, starts):
        first = dump.lines[0][0]
        last = dump.line_of(len(dump.shown))
        seen = {form_id for form_id, start, _end, _how in plain if first <= start <= last}
        for key_id, at, _end in matcher.candidates(dump.shown):
            if key_id >= matcher.dump_keys_from:
                continue
            for form_id, start, end, _wrapped in matcher.verify(
                dump.shown, key_id, at, wrapped=False
            ):
                if form_id in seen:
                    continue
                seen.add(form_id)
                line_end = data.find(b"\n", dump.line_of(end - 1))
                found.append(
                    (
                        form_id,
                        dump.line_of(start),
                        len(data) if line_end < 0 else line_end,
                        ", in a hex dump",
                    )
                )
    return found


def _lines_at(handle: Any, offsets: list[int]) -> dict[int, int]:
    """Line number of each offset, counted by reading the file again (findings are rare)."""
    handle.seek(0)
    result: dict[int, int] = {}
    lines = 1
    pos = 0
    for offset in sorted(set(offsets)):
        while pos < offset:
            block = handle.read(min(CHUNK, offset - pos))
            if not block:
                break
            lines += block.count(b"\n")
            pos += len(block)
        result[offset] = lines
    return result
