"""Hex dumps in a stream: secrets found in the bytes a dump shows, masked in its columns.

``xxd``, ``hexdump -C``/``hd``, ``hexdump``, ``od`` (octal words), ``od -b``,
``od -x``/``-t x1``/``-t x2``/``-t x4``/``-c`` and ``od -A x -t x1z`` print a value 16 bytes (or 8, or 32...) per line, each byte as hex digits
and often once more in an ASCII column. No exact pattern finds a value there: its hex is cut by
spaces and line addresses at an offset that depends on where it sits in the file, and the ASCII
column shows it in slices. So dumps are decoded: :class:`DumpMasker` recognises the lines of a
dump, joins the bytes they show, looks for every masked form in those bytes (the same
:class:`~jobsecrets.redact.PatternSet` the redactor uses) and replaces, in each line a match
touches, the hex of the matched bytes and their slice of the ASCII column.

What is recognised, on purpose narrowly so that ordinary output is never held or changed:

* a dump starts with the line of address 0 (six to sixteen ``0``, then ``:`` or a space), at the
  start of a line or after a prefix that ends in white space (``docker build``'s ``#5 0.123``);
  its later lines have their address at the same column;
* a line is the address, then hex groups of one width (2, 4, 8 or 16 digits, or wider where an
  ASCII column confirms them: ``xxd -g0``, ``-g16``; the last may be shorter) separated by spaces, then nothing, ``|ascii|``, ``>ascii<`` or the ASCII column
  (``xxd``), which must show exactly the bytes the groups give (``.`` for the unprintable); or
  the address then ``od``'s octal words or bytes, or ``od -c`` cells of four characters; or
  ``*`` (repeated lines left out);
* groups wider than one byte are read in the order the ASCII column confirms, else as ``xxd``
  (big-endian) writes them after ``addr:`` and as ``od``/``hexdump`` (little-endian) do otherwise;
* ``xxd -e``'s short last line, its last group right-aligned in its place;
* the dump ends at the first line that is none of these. Where that line starts with an
  address like the dump's own (a layout not known here), the start of a form the dump's bytes
  end in is masked: the rest of it may be in that line.

A line of a dump is held only while the bytes shown so far end in something that may still
become a masked form, exactly as the redactor holds a stream's end; an incomplete line is held
while it may still be a dump line. Not recognised: ``xxd -p`` and ``od -An`` (no addresses:
their hex is still masked where a whole hex form sits on one line), dumps that do not start at
address 0 (``xxd -s``, ``tail`` of a dump).
"""

from __future__ import annotations

__all__ = [
    "TRIGGER_KEYS",
    "Dump",
    "DumpLine",
    "DumpMasker",
    "Matcher",
    "find_dumps",
    "parse_dump_line",
]

import array
import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

_HEX = b"0123456789abcdefABCDEF"
_ADDRESS = re.compile(rb"([0-9A-Fa-f]{6,16})(:?)( +)")
_ADDRESS_ONLY = re.compile(rb"[0-9A-Fa-f]{6,16}")
# od's octal words (the default, -o: six digits, 16-bit little-endian) and bytes (-b: three).
_OCTAL_WORDS = re.compile(rb"(?: [01][0-7]{5})+ *")
_OCTAL_BYTES = re.compile(rb"(?: [0-3][0-7]{2})+ *")
# od -c cells: a printable character, a backslash escape or three octal digits, right-aligned
# in four columns; four spaces are a space.
_OD_CELL = re.compile(rb"   [\x21-\x7e]|  \\[0abfnrtv]| [0-7]{3}|    ")
_OD_ESCAPES = {
    ord("0"): 0,
    ord("a"): 7,
    ord("b"): 8,
    ord("f"): 12,
    ord("n"): 10,
    ord("r"): 13,
    ord("t"): 9,
    ord("v"): 11,
}
#: Where a dump's first line may start: its address, after a line start or white space (a
#: prefix such as a timestamp ends in one), then ``:`` or a space. The look-behind follows the
#: literal so that the search runs at the speed of a literal search.
_CANDIDATE = re.compile(rb"000000(?<![^\s]000000)0{0,10}[: ]")
_SPACE = frozenset(b" \t\n\r\f\v")
#: The end of every first address, for a caller whose own key search can look for them at no
#: cost (the redactor's, the leak scan's): where neither is found, no dump starts.
TRIGGER_KEYS = (b"000000 ", b"000000:")
#: A line longer than this is not a dump line (xxd's widest, -c 256, is ~1.2 KB), and an
#: unfinished line longer than this is not held as one.
_MAX_LINE = 1 << 14
#: The widest group (in hex digits) read without an ASCII column to confirm it: od -t x8.
_WIDEST_UNCONFIRMED = 16
#: The shortest start of a value masked where a dump ends at a line it cannot read (a value
#: has at least 3 bytes: shorter ones are not masked anywhere).
_MIN_UNREAD_PREFIX = 3
#: First addresses tried per line: output made of "000000 " cannot make every one of them
#: parse the rest of its line (quadratic in the line's length).
_TRIES_PER_LINE = 4


class Matcher(Protocol):
    """What :class:`DumpMasker` needs of the redactor's pattern set."""

    def spans_and_hold(self, data: bytes) -> tuple[list[tuple[int, int]], int]:
        """Disjoint ``[start, end)`` matches, and where a wrapped match may go on."""

    def hold_start(self, data: bytes) -> int:
        """Start of the longest end of ``data`` that may still grow into a match."""


@dataclass(frozen=True)
class DumpLine:
    """One line of a dump: the bytes it shows and where they are printed.

    ``groups`` is the ``[start, end)`` of the hex (octal, ``od -c``) groups in the text given to
    :func:`parse_dump_line`, ``kind`` how to read them (``"hex"``, ``"octal"``, ``"chars"``) and
    ``size`` how many bytes each group shows; ``ascii_at`` is where the ASCII column starts (byte
    ``i`` is printed at ``ascii_at + i``), or ``None`` when there is none.
    """

    address: int
    data: bytes
    groups: tuple[int, int] = (0, 0)
    kind: str = "hex"
    size: int = 1
    ascii_at: int | None = None
    little: bool = False  # groups read little-endian (od -x, hexdump, xxd -e)

    def cells(self, text: bytes) -> list[tuple[int, int]]:
        """``[start, end)`` in ``text`` of the group that shows each byte (for masking)."""
        start, end = self.groups
        if self.kind == "chars":
            return [(pos, pos + 4) for pos in range(start, end, 4)][: len(self.data)]
        out: list[tuple[int, int]] = []
        for m in _WORD.finditer(text, start, end):
            out += [m.span()] * (self.size if self.kind == "octal" else (m.end() - m.start()) // 2)
        return out[: len(self.data)]


_WORD = re.compile(rb"[^ ]+")
#: How an ASCII column shows each byte: itself if printable, else ".".
_SHOWN = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))


#: Array type codes of 2, 4 and 8 bytes: a byte swap of whole groups in one C call.
_SWAP = {array.array(code).itemsize: code for code in "HIQ"}


def _reorder(data: bytes, width: int) -> bytes:
    """``data`` read as little-endian groups of ``width`` bytes (the last may be shorter)."""
    if len(data) % width == 0 and width in _SWAP:
        groups = array.array(_SWAP[width], data)
        groups.byteswap()
        return groups.tobytes()
    full = len(data) - len(data) % width
    out = bytearray(data)
    for k in range(width):
        out[k:full:width] = data[width - 1 - k : full : width]
    if full < len(data):
        out[full:] = data[full:][::-1]
    return bytes(out)


def _parse_groups(text: bytes, start: int, colon: bool) -> DumpLine | None:
    """The hex groups and ASCII column of ``text[start:]`` (address excluded), or ``None``.

    The groups end before a run of two spaces or at the end of the line; hexdump -C has one
    such run between its two halves, so the second run is tried too. The ASCII column can itself
    look like groups: each place is tried, the first whose column shows the groups' bytes wins.
    """
    first = text.find(b"  ", start)
    ends = [len(text)] if first < 0 else [first]
    if first >= 0:
        second = text.find(b"  ", first + 2)
        ends.append(len(text) if second < 0 else second)
    for end in ends:
        area = text[start:end]
        tokens = area.split()
        if not tokens or (end == ends[-1] and end != ends[0] and area.count(b"  ") != 1):
            continue
        width = len(tokens[0])
        if width % 2 or len(tokens[-1]) % 2 or len(tokens[-1]) > width:
            continue
        if len(tokens) > 1 and set(map(len, tokens[:-1])) != {width}:
            continue
        try:
            raw = bytes.fromhex(area.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            continue
        rest = text[end:]
        group = width // 2
        readings = (raw, _reorder(raw, group)) if group > 1 else (raw,)
        for little, data in enumerate(readings):
            ascii_at = _ascii_column(text, end, rest, data)
            if ascii_at == -1 or (ascii_at is None and width > _WIDEST_UNCONFIRMED):
                # A group wider than any od/hexdump prints (xxd -g0, -g16: one group of the
                # whole line) is read only where xxd's ASCII column confirms it: a bare run of
                # hex after "000000 " is far more often a hash than a dump.
                continue
            if ascii_at is None and group > 1 and bool(little) == colon:
                # No column to confirm the order: xxd (``addr:``) is big-endian, od/hexdump
                # little-endian.
                continue
            return DumpLine(0, data, (start, end), "hex", group, ascii_at, bool(little))
    return None


def _parse_right_aligned(text: bytes, origin: int) -> DumpLine | None:
    """``xxd -e``'s short last line: its last group right-aligned in its place, or ``None``.

    ``origin`` is where the first group starts (after ``addr: ``). xxd -e prints each group's
    bytes in reverse, so a group short of bytes has spaces on its left, and the ASCII column
    stays where a full line has it: the groups sit on a grid of ``width + 1`` columns, the last
    one ends on it, and the ASCII column is the line's last characters, as many as the bytes.
    """
    tokens = list(_WORD.finditer(text, origin))
    count = 0
    for index, token in enumerate(tokens):
        if (token.end() - token.start()) % 2:
            return None
        count += (token.end() - token.start()) // 2
        column = len(text) - count
        following = tokens[index + 1].start() if index + 1 < len(tokens) else len(text)
        if following >= column:
            break  # only spaces between this group and the column: the groups end here
    else:
        return None
    groups = tokens[: index + 1]
    last = groups[-1]
    # A single group gives its width by where it ends; otherwise the first one is full.
    width = last.end() - origin if index == 0 else groups[0].end() - groups[0].start()
    if width % 2 or last.end() - last.start() >= width or column - last.end() < 2:
        return None
    if last.end() != origin + index * (width + 1) + width:
        return None
    if any(
        g.start() != origin + i * (width + 1) or g.end() - g.start() != width
        for i, g in enumerate(groups[:-1])
    ):
        return None
    try:
        raw = bytes.fromhex(text[origin : last.end()].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    data = _reorder(raw, width // 2)
    if text[column:] != data.translate(_SHOWN):
        return None
    return DumpLine(0, data, (groups[0].start(), last.end()), "hex", width // 2, column, True)


def _ascii_column(text: bytes, after: int, rest: bytes, data: bytes) -> int | None:
    """Start of the ASCII column after the groups; ``None``: none; ``-1``: not a dump line."""
    stripped = rest.strip(b" ")
    if not stripped:
        return None
    shown = data.translate(_SHOWN)
    if len(stripped) >= 2 and (
        (stripped[0] == 0x7C and stripped[-1] == 0x7C)
        or (stripped[0] == 0x3E and stripped[-1] == 0x3C)
    ):
        # hexdump -C's |column| and od -z's >column<; else it may be xxd's, showing | or >.
        at = after + len(rest) - len(rest.lstrip(b" ")) + 1
        if text[at : at + len(stripped) - 2] == shown:
            return at
    # xxd: the column is the line's last len(data) characters, after at least two spaces.
    at = len(text) - len(data)
    if at - after >= 2 and not text[after:at].strip(b" ") and text[at:] == shown:
        return at
    return -1


def _parse_od_chars(text: bytes, start: int) -> DumpLine | None:
    """``od -c`` cells after the address (which ends at ``start``), or ``None``."""
    if (len(text) - start) % 4 or len(text) == start:
        return None
    data = bytearray()
    for pos in range(start, len(text), 4):
        if _OD_CELL.fullmatch(text, pos, pos + 4) is None:
            return None
        cell = text[pos : pos + 4]
        if cell == b"    ":
            data.append(0x20)
        elif cell[2] == 0x5C:  # backslash escape
            data.append(_OD_ESCAPES[cell[3]])
        elif cell[0] == 0x20 and cell[1] != 0x20:
            value = int(cell[1:], 8)
            if value > 0xFF:
                return None
            data.append(value)
        else:
            data.append(cell[3])
    return DumpLine(0, bytes(data), (start, len(text)), "chars", 1, None)


def _parse_octal(text: bytes, start: int) -> DumpLine | None:
    """``od``'s octal words or ``od -b``'s octal bytes after the address, or ``None``."""
    if _OCTAL_WORDS.fullmatch(text, start) is not None:
        values = [int(word, 8) for word in text[start:].split()]
        data = b"".join(value.to_bytes(2, "little") for value in values)
        return DumpLine(0, data, (start, len(text)), "octal", 2, None)
    if _OCTAL_BYTES.fullmatch(text, start) is not None:
        if text[-1:] == b" " and _parse_od_chars(text, start) is not None:
            # Octal cells then four spaces: od -c's space after bytes it prints in octal, or
            # hexdump -b padding its last line. Read as od -c: dropping a space would shift
            # every later byte of an od -c dump, an extra space after hexdump -b's last byte
            # shifts nothing.
            return None
        data = bytes(int(word, 8) for word in text[start:].split())
        return DumpLine(0, data, (start, len(text)), "octal", 1, None)
    return None


def parse_dump_line(text: bytes) -> DumpLine | None:
    """``text`` (one line, without its line end) read as a line of a hex dump, or ``None``."""
    if len(text) > _MAX_LINE:
        return None
    if text == b"*":
        return DumpLine(-1, b"")
    if _ADDRESS_ONLY.fullmatch(text):
        return DumpLine(int(text, 16), b"")  # od/hexdump: the end address
    m = _ADDRESS.match(text)
    if m is None:
        return None
    colon = bool(m.group(2))
    parsed = None
    if not colon:
        parsed = _parse_octal(text, m.start(3))
    if parsed is None:
        parsed = _parse_groups(text, m.end(), colon)
    if parsed is None and colon:
        parsed = _parse_right_aligned(text, m.start(3) + 1)
    if parsed is None and not colon:
        # od -c: the cells start right after the address (the first one begins with spaces).
        parsed = _parse_od_chars(text, m.start(3))
    if parsed is None:
        return None
    return DumpLine(
        int(m.group(1), 16),
        parsed.data,
        parsed.groups,
        parsed.kind,
        parsed.size,
        parsed.ascii_at,
        parsed.little,
    )


@dataclass(frozen=True)
class Dump:
    """One whole dump found in a buffer (:func:`find_dumps`): the bytes it shows, and its lines.

    ``lines[i]`` is ``(offset of line i in the buffer, offset in shown of its first byte)``.
    """

    shown: bytes
    lines: tuple[tuple[int, int], ...]

    def line_of(self, at: int) -> int:
        """Offset in the buffer of the line that shows byte ``at`` of :attr:`shown`."""
        # The lines are in order of their first shown byte: no list is built per lookup.
        index = bisect.bisect_right(self.lines, at, key=lambda line: line[1])
        return self.lines[max(index - 1, 0)][0]


def find_dumps(data: bytes, starts: Iterable[int] | None = None) -> Iterator[Dump]:
    """Every dump in ``data``, a whole buffer (a file), in order.

    ``starts`` are places where a first address may begin, when the caller's own search has
    found them (the leak scan's key search); by default they are searched for here.
    """
    places = (m.start() for m in _CANDIDATE.finditer(data)) if starts is None else starts
    done = 0
    line_end, tries = -2, 0
    searched_from = -1
    for t in sorted(places):
        while t > 0 and data[t - 1] == 0x30:  # a key found inside a longer run of zeros
            t -= 1
        if t < done or (t > 0 and data[t - 1] not in _SPACE):
            continue
        if 0 <= searched_from <= t and (line_end == -1 or line_end >= t):
            # The line end found from an earlier place on this line is this one's too: looked
            # for again from each place, a long line without a break (text written to hurt:
            # "000000 " repeated) cost a scan to its end per place, quadratic.
            nl = line_end
        else:
            nl = data.find(b"\n", t)
            searched_from = t
        tries = tries + 1 if nl == line_end else 1
        line_end = nl
        if tries > _TRIES_PER_LINE:
            continue
        line_start = data.rfind(b"\n", 0, t) + 1
        column = t - line_start
        end = len(data) if nl < 0 else nl + 1
        first = parse_dump_line(_line_text(data[t:end]))
        if first is None or first.address != 0 or not first.data:
            continue
        shown = [first.data]
        lines = [(line_start, 0)]
        size = len(first.data)
        pos = end
        while pos < len(data):
            nl = data.find(b"\n", pos)
            end = len(data) if nl < 0 else nl + 1
            text = _line_text(data[pos:end])
            line = parse_dump_line(text[column:]) if len(text) > column else None
            if line is None:
                break
            lines.append((pos, size))
            shown.append(line.data)
            size += len(line.data)
            pos = end
        done = pos
        yield Dump(b"".join(shown), tuple(lines))


def _address_shape(text: bytes) -> tuple[int, bytes] | None:
    """The length of the address ``text`` starts with and the separator after it, or ``None``."""
    m = _ADDRESS.match(text)
    return None if m is None else (len(m.group(1)), m.group(2) or b" ")


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint ``[start, end)`` spans covering ``spans``."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _line_text(raw: bytes) -> bytes:
    """A line without its end (``\\n``, ``\\r\\n``, ``\\r\\r\\n``: a pty's)."""
    return raw.rstrip(b"\r\n")


#: A line's shape: every hex digit as ``x``, everything else as it is.
_SHAPE = bytes(0x78 if b in _HEX else b for b in range(256))


class _Layout:
    """The layout of a dump's full lines, to read the next ones with a few C calls.

    Every full line of a dump has the same shape (its digits in the same columns, the same
    spaces and delimiters): a line of that shape is read by slicing, ``bytes.fromhex`` (or
    ``int(word, 8)`` for od's octal) and, where there is an ASCII column, comparing it with the
    bytes. Anything else (the last, shorter line; od -c) is parsed in full.
    """

    __slots__ = ("_address", "_ascii", "_head", "_length", "_line", "_tail")

    def __init__(self, text: bytes, line: DumpLine) -> None:
        self._line = line
        self._length = len(text)
        at = line.ascii_at
        end = len(text) if at is None else at + len(line.data)
        self._ascii = (at, end) if at is not None else None
        # The shape before the ASCII column, and what follows it (hexdump -C's "|").
        self._head = text[:at].translate(_SHAPE)
        self._tail = text[end:]
        self._address = len(text) - len(text.lstrip(_HEX))

    def read(self, text: bytes) -> DumpLine | None:
        """``text`` read with this layout, or ``None`` when it does not have its shape."""
        try:
            return self._read(text)
        except ValueError:
            # A line with the layout's shape whose digits are none (the shape maps any letter
            # alike: "x00000010:" after "00000000:"): not a line of this dump. Raised, it ended
            # the redaction of everything the command printed.
            return None

    def _read(self, text: bytes) -> DumpLine | None:
        line = self._line
        ascii_span = self._ascii
        at = None if ascii_span is None else ascii_span[0]
        if len(text) != self._length or text[:at].translate(_SHAPE) != self._head:
            return None
        start, end = line.groups
        if line.kind == "octal":
            words = [int(word, 8) for word in text[start:end].split()]
            if line.size == 2:
                if max(words, default=0) > 0xFFFF:
                    return None
                data = b"".join(word.to_bytes(2, "little") for word in words)
            elif max(words, default=0) > 0xFF:
                return None
            else:
                data = bytes(words)
        else:
            data = bytes.fromhex(text[start:end].decode("ascii"))
            if line.little:
                data = _reorder(data, line.size)
        if ascii_span is not None:
            if text[ascii_span[0] : ascii_span[1]] != data.translate(_SHOWN):
                return None
            if text[ascii_span[1] :] != self._tail:
                return None
        return DumpLine(
            int(text[: self._address], 16), data, line.groups, line.kind, line.size, at, line.little
        )


@dataclass
class _Held:
    """A dump line waiting to be passed on: its bytes as printed, and what it shows."""

    raw: bytes
    column: int  # where the dump part starts in ``raw``
    line: DumpLine


class DumpMasker:
    """The hex-dump stage of a redactor: passes a stream on with values in dumps masked.

    :meth:`feed` returns what may be passed on now (to the pattern stage, which masks the
    rest); :meth:`flush` returns the rest at the end of the stream.
    """

    def __init__(self, matcher: Matcher, replacement: bytes) -> None:
        self._matcher = matcher
        self._replacement = replacement
        # Not passed on yet: the held dump lines, then an unfinished piece (the "tail").
        self._pending = b""
        self._held: list[_Held] = []
        self._held_size = 0
        self._column = -1  # column of the current dump's addresses; -1 outside a dump
        self._layout: _Layout | None = None  # the current dump's full lines
        # The current dump's first address: its length and what follows it (": " or " ").
        self._address: tuple[int, bytes] = (0, b"")
        # Where the tail (or the next chunk, when nothing is held) starts: its column in its
        # line, and the byte before it.
        self._col0 = 0
        self._prev = 0x0A

    @property
    def pending(self) -> int:
        """How many bytes are held back."""
        return len(self._pending)

    @property
    def idle(self) -> bool:
        """Nothing held and no dump under way: a chunk with no first address passes as it is."""
        return not self._pending and self._column < 0

    def may_hold_end(self, chunk: bytes) -> bool:
        """Whether :meth:`feed` would hold the end of ``chunk``: a run of at most sixteen zeros
        after white space, which may still grow into a dump's first address."""
        end = len(chunk)
        start = end
        while start > 0 and chunk[start - 1] == 0x30 and end - start <= 16:
            start -= 1
        if start == end or end - start > 16:
            return False
        before = chunk[start - 1] if start > 0 else self._prev
        return before in _SPACE

    def skip(self, chunk: bytes) -> None:
        """``chunk`` went past this stage unchanged (the caller found no first address in it)."""
        self._advance(chunk, 0, len(chunk))

    def may_start(self, chunk: bytes, at: int) -> bool:
        """Whether a dump's first address may end with the trigger key at ``chunk[at:]``.

        As :data:`_CANDIDATE` decides: the run of zeros the key ends is at most sixteen long
        and comes after white space or the start of the stream.
        """
        start = at
        while start > 0 and chunk[start - 1] == 0x30:
            start -= 1
        if at + 6 - start > 16:
            return False
        before = chunk[start - 1] if start > 0 else self._prev
        return before in _SPACE

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk; return what may be passed on now."""
        if (
            not self._pending
            and self._column < 0
            and (not chunk or chunk[-1] != 0x30)  # no run of zeros at the end to wait on
            and _CANDIDATE.search(chunk) is None
        ):
            self._advance(chunk, 0, len(chunk))
            return chunk
        data = self._pending + chunk if self._pending else chunk
        out: list[bytes] = []
        pos = self._held_size
        first_line = -1  # where a dump's first line starts (its address is at column 0 there)
        while pos < len(data):
            if self._column < 0:
                begin, column = self._find_start(data, pos)
                out.append(data[pos:begin])
                self._advance(data, pos, begin)
                pos = begin
                if column < 0:
                    break
                self._column, first_line = column, begin
                self._address = _address_shape(data[begin:]) or (0, b"")
            nl = data.find(b"\n", pos)
            column = 0 if pos == first_line else self._column
            if nl < 0:
                if self._may_continue(data[pos:], column):
                    break
                self._end_dump(out)
                continue
            text = _line_text(data[pos : nl + 1])[column:]
            parsed = self._layout.read(text) if self._layout is not None else None
            if parsed is None:
                parsed = parse_dump_line(text) if text else None
                if parsed is None:
                    self._end_dump(out, unread=_address_shape(text) == self._address)
                    continue
                if self._layout is None and parsed.kind != "chars" and parsed.data:
                    self._layout = _Layout(text, parsed)
            self._held.append(_Held(data[pos : nl + 1], column, parsed))
            self._held_size += nl + 1 - pos
            pos = nl + 1
            self._col0, self._prev = 0, 0x0A
        if self._column >= 0:
            self._pass_lines(out, final=False)
        self._pending = b"".join(h.raw for h in self._held) + data[pos:]
        return b"".join(out)

    def flush(self) -> bytes:
        """End of the stream: everything held, masked."""
        out: list[bytes] = []
        tail = self._pending[self._held_size :]
        unread = False
        if tail:
            # The stream may end in a dump line without its line end.
            column = self._column if self._column >= 0 else 0
            text = _line_text(tail)
            parsed = parse_dump_line(text[column:]) if len(text) > column else None
            if parsed is not None and (self._column >= 0 or (parsed.address == 0 and parsed.data)):
                self._held.append(_Held(tail, column, parsed))
                tail = b""
            elif self._column >= 0 and _address_shape(text[column:]) == self._address:
                unread = True
        self._pass_lines(out, final=True, unread=unread)
        out.append(tail)
        self._pending = b""
        self._column = -1
        self._layout = None
        self._advance(tail, 0, len(tail))
        return b"".join(out)

    def _advance(self, data: bytes, start: int, end: int) -> None:
        """Note that ``data[start:end]`` was passed on (where the next byte sits in its line)."""
        if end <= start:
            return
        nl = data.rfind(b"\n", start, end)
        self._col0 = end - nl - 1 if nl >= 0 else self._col0 + end - start
        self._prev = data[end - 1]

    def _find_start(self, data: bytes, pos: int) -> tuple[int, int]:
        """Where ordinary text from ``pos`` ends, and the column of the dump that starts there.

        The column is -1 when no dump starts: then ``data[end:]`` is an unfinished line that
        may still become a dump's first line (held), or ``end`` is ``len(data)``.
        """
        n = len(data)
        line_end, tries = -2, 0
        m = _CANDIDATE.search(data, pos)
        while m is not None:
            t = m.start()
            nl = data.find(b"\n", t)
            tries = tries + 1 if nl == line_end else 1
            line_end = nl
            if t == 0 and self._prev not in _SPACE:
                m = _CANDIDATE.search(data, t + 1)
                continue
            if nl < 0:
                if n - t <= _MAX_LINE:
                    return t, -1
                break
            if tries > _TRIES_PER_LINE:
                m = _CANDIDATE.search(data, nl + 1)
                continue
            parsed = parse_dump_line(_line_text(data[t : nl + 1]))
            if parsed is not None and parsed.address == 0 and parsed.data:
                line = data.rfind(b"\n", pos, t)
                return t, t - line - 1 if line >= 0 else self._col0 + t - pos
            m = _CANDIDATE.search(data, t + 1)
        # A run of zeros at the very end may still become a first address.
        if data.endswith(b"0"):
            zeros = n - len(data.rstrip(b"0"))
            start = n - zeros
            if zeros <= 16 and start >= pos:
                before = data[start - 1] if start > 0 else self._prev
                if before in _SPACE:
                    return start, -1
        return n, -1

    def _may_continue(self, partial: bytes, column: int) -> bool:
        """Whether an unfinished line may still be a line of the current dump."""
        if len(partial) > _MAX_LINE:
            return False
        body = partial.rstrip(b"\r")[column:]
        if not body:
            return True
        if body[:1] == b"*":
            return len(body) == 1
        return all(c in _HEX for c in body[:6])

    def _end_dump(self, out: list[bytes], *, unread: bool = False) -> None:
        """The dump ended: pass on every held line (``unread``: see :meth:`_pass_lines`)."""
        self._pass_lines(out, final=True, unread=unread)
        self._column = -1
        self._layout = None

    def _pass_lines(self, out: list[bytes], *, final: bool, unread: bool = False) -> None:
        """Mask the held lines and pass on those no later line can change.

        ``unread``: the dump ended at a line that starts with an address like the dump's own
        (as long, the same separator) but could not be read (a layout not known here). The value whose start the held bytes end in may go on in that
        line, where it cannot be found: that start is masked rather than shown.
        """
        if not self._held:
            return
        shown = b"".join(h.line.data for h in self._held)
        spans, hold = self._matcher.spans_and_hold(shown)
        if unread:
            start = self._matcher.hold_start(shown)
            if len(shown) - start >= _MIN_UNREAD_PREFIX:
                spans = _union([*spans, (start, len(shown))])
        cut = len(shown)
        if not final:
            cut = min(cut, hold, self._matcher.hold_start(shown))
            for start, end in spans:
                if end > cut:
                    cut = min(cut, start)
                    break
        starts: list[int] = []
        offset = 0
        for held in self._held:
            starts.append(offset)
            offset += len(held.line.data)
        # Lines are passed whole: keep from the line that holds the cut, and further back while
        # a match runs from a passed line into a kept one (it is found again next time only
        # if all of it is still held).
        keep = len(self._held)
        while True:
            keep = next(
                (i for i, h in enumerate(self._held) if starts[i] + len(h.line.data) > cut),
                len(self._held),
            )
            if keep == len(self._held):
                break
            crossing = [s for s, e in spans if s < starts[keep] < e]
            if not crossing:
                break
            cut = min(crossing)
        for index in range(keep):
            out.append(self._mask(self._held[index], starts[index], spans))
        self._held = self._held[keep:]
        self._held_size = sum(len(h.raw) for h in self._held)

    def _mask(self, held: _Held, offset: int, spans: list[tuple[int, int]]) -> bytes:
        """``held``'s line with the bytes of ``spans`` (positions in the joined bytes) masked."""
        line = held.line
        size = len(line.data)
        ranges: list[tuple[int, int]] = []
        cells: list[tuple[int, int]] = []
        for start, end in spans:
            lo, hi = max(start - offset, 0), min(end - offset, size)
            if lo >= hi:
                continue
            cells = cells or line.cells(_line_text(held.raw)[held.column :])
            ranges.append((cells[lo][0], cells[hi - 1][1]))
            if line.ascii_at is not None:
                ranges.append((line.ascii_at + lo, line.ascii_at + hi))
        if not ranges:
            return held.raw
        ranges.sort()
        merged: list[tuple[int, int]] = []
        for start, end in ranges:
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        raw, base = held.raw, held.column
        pieces: list[bytes] = []
        pos = 0
        for start, end in merged:
            pieces.append(raw[pos : base + start])
            pieces.append(self._replacement)
            pos = base + end
        pieces.append(raw[pos:])
        return b"".join(pieces)
