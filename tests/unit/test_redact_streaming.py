"""The stream masks what the output read whole masks, however the reads fall.

Found by a hostile tester: wrapped base64 printed line by line, and output that goes on
repeating a value.

PYTEST_DONT_REWRITE: plain asserts here, so a failing one prints its message and no value it
compared (pytest's rewriting shows the operands even of ``out == whole``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobsecrets import redact
from jobsecrets.redact import MaskList, PatternSet, StreamRedactor


def _hashed(seed: int, size: int) -> bytes:
    """A random-looking value, the same on every run (random bytes: no runs of one character)."""
    blocks = (hashlib.sha256(b"%d/%d/%d" % (seed, size, i)).digest() for i in range(8))
    return b"".join(blocks)[:size]


def _stream(redactor: StreamRedactor, pieces: Iterable[bytes]) -> bytes:
    """Feed ``pieces`` one read each; return the whole output."""
    out = [redactor.feed(piece) for piece in pieces]
    out.append(redactor.flush())
    return b"".join(out)


def _cut(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (positions outside it ignored)."""
    pieces, pos = [], 0
    for cut in sorted(set(cuts)):
        if pos < cut < len(data):
            pieces.append(data[pos:cut])
            pos = cut
    pieces.append(data[pos:])
    return pieces


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    # From 25 bytes: at offsets 1 and 2 the text of a 24-byte value is 31 characters, under
    # maskforms.WRAP_MIN (not followed wrapped).
    size=st.integers(25, 150),
    before=st.integers(0, 90),
    width=st.sampled_from([60, 64, 76]),
    end=st.sampled_from([b"\n", b"\r\n", b"\r\r\n"]),
    urlsafe=st.booleans(),
    cuts=st.lists(st.integers(0, 700), max_size=6),
)
def test_wrapped_base64_streamed_is_masked_as_read_whole(
    seed: int, size: int, before: int, width: int, end: bytes, urlsafe: bool, cuts: list[int]
) -> None:
    """A value inside an encoded document (``before`` bytes first: each of the 3 offsets, every
    column), wrapped at 60, 64 or 76 columns, in either alphabet, lines ending in \\n, \\r\\n
    or \\r\\r\\n: read whole, no piece of the value's text shows; line by line and cut
    anywhere, the output is the output read whole. A first line holding only the first
    characters of the value's text was emitted before the next line's anchor found it (~18% of
    line-by-line prints); URL-safe text was followed only where it had no "-" or "_"."""
    value = _hashed(seed, size)
    masks = MaskList()
    masks.add(value, name="V")
    document = _hashed(seed + 1, before) + value + b"\n-- rest of the file --\n"
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode(document)
    # The value's characters in it: those wholly inside its bits (from ceil(8k/6), k = offset).
    k = before % 3
    text = encode(bytes(k) + value)[(8 * k + 5) // 6 : (8 * k + 8 * size) // 6]
    lines = [encoded[i : i + width] + end for i in range(0, len(encoded), width)]
    data = b"config:" + end + b"".join(lines) + b"end" + end
    whole = masks.redact(data)
    joined = whole.replace(b"\r", b"").replace(b"\n", b"")
    shown = any(text[i : i + 12] in joined for i in range(len(text) - 11))
    assert not shown, "read whole, a piece of the value's wrapped base64 showed"
    by_line = _stream(masks.redactor(), [b"config:" + end, *lines, b"end" + end])
    assert by_line == whole, "printed line by line, the output differs from the whole"
    cut = _stream(masks.redactor(), _cut(data, cuts))
    assert cut == whole, "cut into reads, the output differs from the whole"


def test_first_characters_of_a_wrapped_value_are_held_with_their_line_break() -> None:
    """The tester's case: the value's text starts 8 characters before a line's end."""
    value = b"Tr0ub4dor-and-3-more-words-that-make-a-long-made-up-password-xyz"
    masks = MaskList()
    masks.add(value, name="SEC")
    header = b"header-bytes-of-a-config-file-padded-to-51-bytes--:"
    lines = base64.encodebytes(header + value + b"\n-- rest --\n").splitlines(keepends=True)
    first = base64.b64encode(value)[:8]
    assert lines[0].endswith(first + b"\n"), "the case is not the tester's"
    out = _stream(masks.redactor(), lines)
    shown = first in out
    assert not shown, "the first characters of the value's base64 were emitted"
    assert out == masks.redact(b"".join(lines)), "line by line, the output differs"


def _reference(data: bytes, patterns: Iterable[bytes], replacement: bytes = b"***") -> bytes:
    """The obvious, slow redaction: the union of all (overlapping) occurrences, each run one
    replacement (adjacent ones two)."""
    covered: list[list[int]] = []
    for start, end in sorted(
        (at, at + len(p))
        for p in set(patterns)
        for at in range(len(data))
        if data.startswith(p, at)
    ):
        if covered and start < covered[-1][1]:
            covered[-1][1] = max(covered[-1][1], end)
        else:
            covered.append([start, end])
    out, pos = [], 0
    for start, end in covered:
        out += [data[pos:start], replacement]
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def _count_searched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of what the redactor searches, one entry per search, as it searches."""
    searched: list[int] = []
    spans_and_hold = PatternSet.spans_and_hold

    def counted(self: PatternSet, data: bytes, *args: object) -> object:
        searched.append(len(data))
        return spans_and_hold(self, data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PatternSet, "spans_and_hold", counted)
    return searched


def test_output_that_goes_on_repeating_a_value_is_searched_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value with a period shorter than itself, and output that goes on repeating it: the
    run of overlapping matches reached every read's end and was held whole, searched again
    with each read (4 MB in 64 KiB reads: 152 s, quadratic) and kept in memory."""
    searched = _count_searched(monkeypatch)
    for value, unit in ((b"aaaa", b"a"), (b"ab12ab12", b"ab12"), (b"xyzxyzxyzxyz", b"xyz")):
        masks = MaskList()
        masks.add(value, name="SEC")
        chunk = unit * (2048 // len(unit))
        redactor = masks.redactor()
        held = 0
        out = []
        searched.clear()
        for _ in range(30):
            out.append(redactor.feed(chunk))
            held = max(held, redactor.pending)
        out += [redactor.feed(b"\nend\n"), redactor.flush()]
        total = 30 * len(chunk) + 5
        assert sum(searched) < 2 * total, "the run was searched again with every read"
        assert held < 2 * masks.compiled().maxlen, "the run was held whole"
        assert b"".join(out) == b"***\nend\n", "the run was not masked as one replacement"


@settings(max_examples=300, deadline=None)
@given(
    patterns=st.lists(st.text(alphabet="ab", min_size=1, max_size=6), min_size=1, max_size=4),
    unit=st.text(alphabet="abc", min_size=1, max_size=5),
    repeat=st.integers(1, 120),
    cuts=st.lists(st.integers(0, 600), max_size=40),
)
def test_property_runs_of_overlapping_matches_cut_anywhere(
    patterns: list[str], unit: str, repeat: int, cuts: list[int]
) -> None:
    """Long runs of overlapping matches, cut into many reads: the same output as the obvious
    redaction (a run that reaches a read's end is replaced before it ends, and what follows in
    the next reads and overlaps it is swallowed, never a second replacement)."""
    raw = [p.encode() for p in patterns]
    data = (unit * repeat).encode() + b"c" + (unit * (repeat // 2)).encode()
    out = _stream(StreamRedactor(raw), _cut(data, cuts))
    assert out == _reference(data, raw), "streamed output differs from the reference"


def test_output_that_goes_on_with_a_wrapped_text_with_runs_is_searched_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value of zero bytes (its base64 "AAAA...", followed wrapped) and output that goes on
    printing "A": the run reached every read's end and was held whole, searched again with each
    read (60 reads of 2 KiB: ~33 s, quadratic), because walks from later anchors may reach back."""
    searched = _count_searched(monkeypatch)
    for value in (bytes(24), bytes(8) + b"\x03" + bytes(40)):
        masks = MaskList()
        masks.add(value, name="SEC")
        text = base64.b64encode(value)
        pieces = [b"log: " + text] + [b"A" * 2048] * 30 + [b"\nend\n"]
        redactor = masks.redactor()
        held = 0
        out = []
        searched.clear()
        for piece in pieces:
            out.append(redactor.feed(piece))
            held = max(held, redactor.pending)
        out.append(redactor.flush())
        total = sum(map(len, pieces))
        assert sum(searched) < 2 * total, "the run was searched again with every read"
        assert held < 4 * masks.compiled().maxlen, "the run was held whole"
        whole = masks.redact(b"".join(pieces))
        assert b"".join(out) == whole, "streamed, the output differs from the whole"
        assert whole == b"log: ***\nend\n", "the run was not masked as one replacement"


@settings(max_examples=300, deadline=None)
@given(
    value=st.tuples(st.integers(24, 60), st.integers(0, 59), st.integers(0, 255)).map(
        lambda t: bytes(t[1] % t[0]) + bytes([t[2]]) + bytes(t[0] - 1 - t[1] % t[0])
    ),
    parts=st.lists(
        st.one_of(
            st.integers(1, 300).map(lambda k: b"A" * k),
            # No base64 characters but the runs' "A", no line break after one: masking.md's
            # limit (bytes before a find that spell the text, passed on by an earlier read) is
            # not what is checked here.
            st.sampled_from([b" \n", b" \r\n", b" \r\r\n", b" ", b".", b"#:"]),
            st.just(b"<value>"),
            st.just(b"<wrapped>"),
        ),
        max_size=14,
    ),
    cuts=st.lists(st.integers(0, 2000), max_size=30),
)
def test_property_runs_of_a_wrapped_text_with_runs_cut_anywhere(
    value: bytes, parts: list[bytes], cuts: list[int]
) -> None:
    """A value mostly of zero bytes (its base64 text made of runs of "A", followed wrapped),
    printed plain and wrapped amid runs of "A", cut into many reads: the same output as read
    whole (a run that reaches a read's end is replaced before it ends, also with wrapped texts
    around). Without the walk budget, whose share grows with the bytes of a read (past it a
    run is masked whole, so where it runs out depends on the reads, as it always did)."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(redact, "_FOLLOW_BUDGET", 1 << 40)
    try:
        _check_runs_of_a_wrapped_text(value, parts, cuts)
    finally:
        monkeypatch.undo()


def _check_runs_of_a_wrapped_text(value: bytes, parts: list[bytes], cuts: list[int]) -> None:
    """The body of the property test above."""
    masks = MaskList()
    masks.add(value, name="V")
    text = base64.b64encode(value)
    wrapped = b"\n".join(text[i : i + 31] for i in range(0, len(text), 31))
    data = b"".join(
        text if part == b"<value>" else wrapped if part == b"<wrapped>" else part for part in parts
    )
    whole = masks.redact(data)
    out = _stream(masks.redactor(), _cut(data, cuts))
    assert out == whole, "cut into reads, the output differs from the whole"


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r\r\n"])
def test_first_characters_of_a_wrapped_value_are_masked_over_every_line_end(end: bytes) -> None:
    """The walk from an anchor crossed 3 line break bytes forwards and only 2 back: a wrapped
    value whose first line holds only its first characters, lines ending in \\r\\r\\n (a pty's
    view of CRLF), showed those characters, read whole or line by line."""
    value = b"Tr0ub4dor-and-3-more-words-that-make-a-long-made-up-password-xyz"
    masks = MaskList()
    masks.add(value, name="SEC")
    header = b"header-bytes-of-a-config-file-padded-to-51-bytes--:"
    encoded = base64.encodebytes(header + value + b"\n-- rest --\n")
    lines = [line + end for line in encoded.splitlines()]
    first = base64.b64encode(value)[:8]
    assert lines[0].endswith(first + end), "the case is not the tester's"
    whole = masks.redact(b"".join(lines))
    shown = first in whole
    assert not shown, "the first characters of the value's base64 were emitted"
    assert _stream(masks.redactor(), lines) == whole, "line by line, the output differs"


def test_what_is_held_for_the_start_of_a_wrapped_value_is_what_masking_md_says() -> None:
    """docs/masking.md, "What is held back from live output": the last 1-15 base64 characters
    of a line of 31 or more, with its line break and up to 30 characters of the next line, when
    they start a value's wrapped base64; shown with the next write that does not go on with it,
    or at the end."""
    value = _hashed(7, 64)
    masks = MaskList()
    masks.add(value, name="V")
    text = base64.b64encode(value)
    assert not text.startswith(b"Q"), "the case needs a text that does not start with Q"
    head = b"Q" * 32  # base64 characters that start no text of the value
    for end in (b"\n", b"\r\n", b"\r\r\n"):
        for m in (1, 8, 15):
            line = head + text[:m] + end
            redactor = masks.redactor()
            shown = redactor.feed(line)
            held = shown == head and redactor.pending == m + len(end)
            assert held, "the start of the text and its line break were not held as described"
            # Up to 30 characters of the next line that go on with the text: still held.
            more = redactor.feed(text[m : m + 30])
            assert more == b"" and redactor.pending == m + len(end) + 30, "released too early"
            # The next line's 31st character: the text is found and masked, line by line.
            rest = redactor.feed(text[m + 30 :] + b"\nend\n") + redactor.flush()
            out = shown + more + rest
            assert out == head + b"***" + end + b"***\nend\n", "the wrapped value was not masked"
            # A next write that does not go on with the text: shown unchanged with it.
            redactor = masks.redactor()
            out = redactor.feed(line) + redactor.feed(b"ordinary output\n")
            assert out == line + b"ordinary output\n", "the held bytes were not released"
            # The end of the output: shown.
            redactor = masks.redactor()
            out = redactor.feed(line) + redactor.flush()
            assert out == line, "the held bytes were not shown at the end"
    # Not held: a line of 30 characters, and a line whose last characters start no text.
    for line in (head[:22] + text[:8] + b"\n", head + b"Qx4Z9" + b"\n"):
        redactor = masks.redactor()
        out = redactor.feed(line)
        assert out == line and redactor.pending == 0, "a line was held that is not described"
