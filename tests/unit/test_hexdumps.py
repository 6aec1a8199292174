"""Hex dumps printed by the real tools (xxd, hexdump, od) are masked, and nothing else is touched.

The oracle does not use the module under test: the value is made of letters that never appear in
the dump's other bytes, its structure or its addresses, so "the value leaked" is decided by
looking for any of its bytes in the output: as a character (the ASCII columns, ``od -c``) or as
a byte spelled by a hex group (every group but the line's address). The surrounding bytes are
control and high bytes, which every tool shows as ``.`` or octal.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobsecrets.hexdumps import parse_dump_line
from jobsecrets.redact import MaskList, StreamRedactor
from support.cli import clean_env

#: The value's alphabet: no hex digit, none of od -c's escape letters (a b f n r t v), no P
#: (0x50, an address byte), nothing an ASCII column prints for another byte.
VALUE_LETTERS = b"GHIJKLMNOQRSTUVWXYZghijklmopqsuwxyz-_"
#: Bytes around the value: shown as "." in every ASCII column, as octal or escapes by od -c.
OTHER_BYTES = bytes([*range(0, 0x20), *range(0x80, 0x100)])

TOOLS = [
    "xxd",
    "xxd -g1",
    "xxd -u",
    "xxd -c 32",
    "xxd -c 8 -g4",
    "xxd -g0",  # one group of the whole line (32 digits)
    "xxd -c 32 -g16",
    "xxd -e",
    "hexdump -C",
    "hd",
    "hexdump",
    "od -x",
    "od -t x1",
    "od -t x2",
    "od -t x4",
    "od -A x -t x1z",
    "od -c",
    "od",
    "od -b",
]
#: Tools whose groups are octal: the oracle reads them so.
OCTAL = {"od", "od -b"}


def tool_path(name: str) -> str:
    path = shutil.which(name)
    # .ci/run installs xxd and bsdextrautils (hexdump, hd); od is coreutils.
    assert path is not None, f"{name} is not installed (see .ci/run)"
    return path


def dump(tool: str, data: bytes, tmp_path: Path) -> bytes:
    argv = tool.split()
    argv[0] = tool_path(argv[0])
    target = tmp_path / "data.bin"
    target.write_bytes(data)
    return subprocess.run([*argv, str(target)], check=True, capture_output=True).stdout


def make_value(rnd: random.Random, size: int) -> bytes:
    return bytes(rnd.choice(VALUE_LETTERS) for _ in range(size))


def around(rnd: random.Random, size: int) -> bytes:
    return bytes(rnd.choice(OTHER_BYTES) for _ in range(size))


def visible_value_bytes(output: bytes, value: bytes, *, octal: bool = False) -> set[int]:
    """Bytes of ``value`` the redacted dump still shows, as characters or as hex (octal) groups."""
    letters = set(value)
    shown = {c for c in output if c in letters and c not in b"-_"}
    for line in output.splitlines():
        words = line.split()
        for word in words[1:]:  # the first word is the address
            word = word.strip(b"|><:")
            if octal and re.fullmatch(rb"[0-7]{3}|[0-7]{6}", word):
                number = int(word, 8)
                shown |= set(number.to_bytes(2 if len(word) == 6 else 1, "little")) & letters
            elif len(word) >= 2 and len(word) % 2 == 0 and re.fullmatch(rb"[0-9A-Fa-f]+", word):
                shown |= set(bytes.fromhex(word.decode())) & letters
    return shown


def redact_in_chunks(masks: MaskList, data: bytes, cuts: list[int]) -> bytes:
    redactor = masks.redactor()
    out = []
    last = 0
    for cut in sorted(set(cuts)):
        out.append(redactor.feed(data[last:cut]))
        last = cut
    out.append(redactor.feed(data[last:]))
    out.append(redactor.flush())
    return b"".join(out)


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("size", [3, 21, 50])
def test_a_value_in_a_dump_is_masked_at_every_offset(tool: str, size: int, tmp_path: Path) -> None:
    rnd = random.Random(f"{tool}-{size}")
    for offset in range(0, 34, 3 if size > 3 else 1):
        value = make_value(rnd, size)
        data = around(rnd, offset) + value + around(rnd, 40)
        printed = dump(tool, data, tmp_path)
        masks = MaskList()
        masks.add(value, name="V")
        whole = masks.redact(printed)
        leaked = visible_value_bytes(whole, value, octal=tool in OCTAL)
        count, masked = len(leaked), b"***" in whole
        assert count == 0, f"{tool}: {count} byte(s) of the value visible at offset {offset}"
        assert masked, f"{tool}: nothing masked at offset {offset}"
        # Lines that show none of the value are as the tool printed them.
        first, last = offset // 16, (offset + size - 1) // 16
        for index, (before, after) in enumerate(
            zip(printed.splitlines(), whole.splitlines(), strict=False)
        ):
            if not visible_value_bytes(before, value, octal=tool in OCTAL) and not (
                first <= index <= last
            ):
                same = before == after
                assert same, f"{tool}: line {index} changed"
        # Any split into chunks gives the same output.
        cuts = [rnd.randrange(len(printed)) for _ in range(rnd.randrange(1, 12))]
        same = redact_in_chunks(masks, printed, cuts) == whole
        assert same, f"{tool}: chunked output differs"


@pytest.mark.parametrize("tool", TOOLS)
def test_a_dump_without_the_value_is_unchanged(tool: str, tmp_path: Path) -> None:
    rnd = random.Random(tool)
    value = make_value(rnd, 24)
    masks = MaskList()
    masks.add(value, name="V")
    for data in (
        around(rnd, 100) + make_value(rnd, 24) + around(rnd, 20),  # another value
        around(rnd, 30) + value[:-1],  # all but its last byte, at the end of the dump
        around(rnd, 7) + value[1:] + around(rnd, 9),  # all but its first byte
    ):
        printed = dump(tool, data, tmp_path)
        unchanged = masks.redact(printed) == printed
        assert unchanged, f"{tool}: a dump without the value was changed"
        cuts = [rnd.randrange(len(printed)) for _ in range(6)]
        unchanged = redact_in_chunks(masks, printed, cuts) == printed
        assert unchanged, f"{tool}: a dump without the value was changed (in chunks)"


def test_a_dump_of_the_base64_of_a_value_is_masked(tmp_path: Path) -> None:
    import base64

    value = b"Kq-ZZtop_sekrit-VALUE-" + bytes(range(0x80, 0x90))
    masks = MaskList()
    masks.add(value, name="V")
    printed = dump("xxd", b"token=" + base64.b64encode(value) + b"\n", tmp_path)
    encoded = base64.b64encode(value)
    out = masks.redact(printed)
    masked = b"***" in out
    assert masked
    # No 4-character piece of the base64 is left in the ASCII column.
    column = b"".join(line[51:] for line in out.splitlines())
    pieces = sum(encoded[i : i + 4] in column for i in range(len(encoded) - 3))
    assert pieces == 0


def test_a_prefixed_dump_is_masked(tmp_path: Path) -> None:
    """docker build (BuildKit, plain progress) prefixes every line: '#5 0.123 '."""
    rnd = random.Random(5)
    value = make_value(rnd, 30)
    printed = dump("hexdump -C", around(rnd, 11) + value + around(rnd, 30), tmp_path)
    prefixed = b"".join(b"#5 0.%03d " % i + line for i, line in enumerate(printed.splitlines(True)))
    masks = MaskList()
    masks.add(value, name="V")
    out = masks.redact(prefixed)
    count = len(visible_value_bytes(re.sub(rb"(?m)^#5 0\.\d{3} ", b"", out), value))
    kept = out.startswith(b"#5 0.000 00000000  ")
    assert count == 0 and kept


def test_through_a_pty_line_ends(tmp_path: Path) -> None:
    rnd = random.Random(7)
    value = make_value(rnd, 40)
    printed = dump("xxd", around(rnd, 5) + value + around(rnd, 20), tmp_path)
    masks = MaskList()
    masks.add(value, name="V")
    out = masks.redact(printed.replace(b"\n", b"\r\n"))
    count = len(visible_value_bytes(out, value))
    lines_kept = out.count(b"\r\n") == printed.count(b"\n")
    assert count == 0 and lines_kept


ORDINARY = [
    b"2026-12-02T00:00:00.000000Z INFO started\n",
    b"took 0.000000 s\n",
    b"000000 is the count\n",
    b"00000000: this is not a dump\n",
    b"0000000 deadbeef but then words\n",
    b"commit 0000000000000000000000000000000000000000\n",
    b"   1000000 rows\n",
    b"00000000  41 42  |AB|\n",  # the column does not match the bytes
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_lines_pass_unchanged_and_are_not_held(line: bytes) -> None:
    masks = MaskList()
    masks.add(b"Kq-ZZtop_sekrit", name="V")
    redactor = masks.redactor()
    out = redactor.feed(line)
    assert out + redactor.flush() == line
    # Nothing is held once the line is complete, unless it may be a dump's first line.
    if parse_dump_line(line.rstrip(b"\n")) is None:
        assert out == line


def test_an_unfinished_line_after_a_dump_is_not_held() -> None:
    """A prompt after a dump ('Password: ') must show at once."""
    masks = MaskList()
    masks.add(b"Kq-ZZtop_sekrit", name="V")
    redactor = masks.redactor()
    dump_text = b"00000000: 4142 4344                                ABCD\n"
    out = redactor.feed(dump_text + b"Password: ")
    assert out == dump_text + b"Password: "
    assert redactor.pending == 0


def test_a_dump_line_is_held_only_while_a_value_may_continue() -> None:
    value = b"Kq-ZZtop_sekrit-value"
    masks = MaskList()
    masks.add(value, name="V")
    redactor = StreamRedactor(masks.compiled())
    line0 = b"00000000: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f  ................\n"
    assert redactor.feed(line0) == line0
    # The next line ends in the value's first bytes: it waits for the line after it.
    line1 = b"00000010: 0001 0203 0405 0607 0809 0a0b 0c4b 712d  .............Kq-\n"
    held = redactor.feed(line1) == b""
    assert held, "the line ending in the value's first bytes was passed on"
    line2 = b"00000020: 5a5a 746f 705f 7365 6b72 6974 2d76 616c  ZZtop_sekrit-val\n"
    line3 = b"00000030: 7565 0a                                  ue.\n"
    out = redactor.feed(line2) + redactor.feed(line3) + redactor.flush()
    replacements = out.count(b"***")
    leaked = b"Kq-" in out or b"4b71" in out or b"7565" in out
    assert replacements == 6 and not leaked


def test_every_byte_value_and_random_chunks_hold(tmp_path: Path) -> None:
    value = bytes(range(256))
    masks = MaskList()
    masks.add(value, name="V")
    for tool in ("xxd", "hexdump -C", "od -t x1"):
        printed = dump(tool, b"\xff" * 5 + value + b"\x00" * 9, tmp_path)
        whole = masks.redact(printed)
        hexed = re.sub(rb"\s", b"", whole)
        # No 4-byte run of the value is spelled in hex any more.
        runs = sum(value[i : i + 4].hex().encode() in hexed for i in range(0, 252))
        assert runs == 0, f"{tool}: {runs} runs of the value in hex"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.binary(max_size=40),
    after=st.binary(max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_any_surroundings_and_chunks(before: bytes, after: bytes, cuts: list[int]) -> None:
    """Whatever surrounds the value, its bytes are masked in xxd's layout, in any chunks."""
    value = b"GHz-_kqQWsuyXOMg"
    data = before + value + after
    lines = []
    for start in range(0, len(data), 16):
        piece = data[start : start + 16]
        groups = " ".join(piece[i : i + 2].hex() for i in range(0, len(piece), 2))
        column = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in piece)
        lines.append(f"{start:08x}: {groups:<39}  {column}\n".encode("latin-1"))
    printed = b"".join(lines)
    masks = MaskList()
    masks.add(value, name="V")
    whole = masks.redact(printed)
    same = redact_in_chunks(masks, printed, cuts) == whole
    assert same, "chunked output differs"
    # Every line that held part of the value has a replacement.
    first, last = len(before) // 16, (len(before) + len(value) - 1) // 16
    out_lines = whole.splitlines()
    missing = [index for index in range(first, last + 1) if b"***" not in out_lines[index]]
    assert missing == []


def test_the_redact_filter_masks_a_dump_from_a_real_pipe(tmp_path: Path) -> None:
    """`xxd file | jobsecrets redact`, the value known by name as the filter is given it."""
    rnd = random.Random(11)
    value = make_value(rnd, 33)
    target = tmp_path / "data.bin"
    target.write_bytes(around(rnd, 9) + value + around(rnd, 50))
    env = clean_env()
    env["V"] = value.decode()
    env["JOBSECRETS_MASK_VARS"] = "V"
    xxd = subprocess.Popen([tool_path("xxd"), str(target)], stdout=subprocess.PIPE)
    result = subprocess.run(
        [sys.executable, "-m", "jobsecrets", "redact"],
        stdin=xxd.stdout,
        capture_output=True,
        env=env,
        check=False,
    )
    assert xxd.stdout is not None
    xxd.stdout.close()
    assert xxd.wait() == 0
    assert result.returncode == 0, "jobsecrets redact failed"
    masked = b"***" in result.stdout
    count = len(visible_value_bytes(result.stdout, value))
    assert masked and count == 0, f"{count} byte(s) of the value visible"
    assert os.path.exists(target)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_value_after_64_kib_of_random_bytes_is_masked(tool: str, tmp_path: Path) -> None:
    """Every line of a long dump of any bytes is read as a dump line (an ASCII column that
    starts and ends with '|' in xxd once ended the dump early), so a value at its end is found."""
    rnd = random.Random(f"long-{tool}")
    value = make_value(rnd, 40)
    noise = rnd.randbytes(65536)
    printed = dump(tool, noise + value + around(rnd, 20), tmp_path)
    lines = printed.splitlines()
    unread = [n for n, line in enumerate(lines) if parse_dump_line(line) is None]
    assert unread == []  # xxd -e's short last line too
    masks = MaskList()
    masks.add(value, name="V")
    tail = masks.redact(printed).splitlines()[-8:]
    masked = b"***" in b"\n".join(tail)
    assert masked, f"{tool}: the value at the end of a long dump was not masked"


@pytest.mark.parametrize("tool", TOOLS)
def test_a_value_at_the_end_of_a_dump_is_masked(tool: str, tmp_path: Path) -> None:
    """A file that ends in the value (a key file, with or without its line end): the dump's
    last line is short, and xxd -e right-aligns its last group in it."""
    rnd = random.Random(f"end-{tool}")
    for offset in (0, 3, 9, 16, 22):
        for ending in (b"", b"\n"):
            value = make_value(rnd, 40)
            printed = dump(tool, around(rnd, offset) + value + ending, tmp_path)
            masks = MaskList()
            masks.add(value, name="V")
            out = masks.redact(printed)
            count = len(visible_value_bytes(out, value, octal=tool in OCTAL))
            assert count == 0, f"{tool}: {count} byte(s) of the value visible at offset {offset}"
            cuts = [rnd.randrange(len(printed)) for _ in range(5)]
            same = redact_in_chunks(masks, printed, cuts) == out
            assert same, f"{tool}: chunked output differs"


def test_a_dump_cut_short_by_a_line_it_cannot_read_masks_the_start_it_ends_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dump that ends at a line with an address that cannot be read (a layout not known, here
    xxd -e's short last line with its reader turned off): the value may go on in that line, so
    the start of it the read lines end in is masked, not shown. Ordinary text after a dump
    that ends in the same start changes nothing."""
    from jobsecrets import hexdumps

    monkeypatch.setattr(hexdumps, "_parse_right_aligned", lambda text, origin: None)
    rnd = random.Random(13)
    value = make_value(rnd, 40)
    printed = dump("xxd -e", around(rnd, 5) + value + b"\n", tmp_path)  # short last line
    masks = MaskList()
    masks.add(value, name="V")
    for cuts in ([], [len(printed) - 3], [rnd.randrange(len(printed)) for _ in range(6)]):
        out = redact_in_chunks(masks, printed, cuts)
        before, after = printed.splitlines(), out.splitlines()
        read = len(visible_value_bytes(b"\n".join(after[:-1]), value))
        last_kept = after[-1] == before[-1]  # the line that cannot be read passes as it is
        assert read == 0 and last_kept, f"{read} byte(s) of the value visible in read lines"
    # The same read lines followed by ordinary text (a hex word too: not an address like the
    # dump's), or by the end of the stream: unchanged.
    lines = b"".join(printed.splitlines(keepends=True)[:-1])
    for text in (lines + b"done\n", lines + b"facade rebuilt\n", lines):
        unchanged = redact_in_chunks(masks, text, [len(text) // 2]) == text
        assert unchanged, "a dump ending in the start of a value was changed"


@pytest.mark.parametrize("tool", ["od -c", "od -b", "hexdump -c", "hexdump -b"])
@pytest.mark.parametrize("space_at", [15, 31, 14])
def test_a_space_after_octal_cells_is_a_byte_of_od_c(
    tool: str, space_at: int, tmp_path: Path
) -> None:
    """od -c prints a space as four spaces: after a line of octal cells (control bytes) it
    looks like od -b with trailing spaces. Read as od -b, the line lost the space, so a value
    that holds it was not found in the bytes read."""
    rnd = random.Random(f"space-{tool}-{space_at}")
    letters = make_value(rnd, 20)
    value = bytes(rnd.choice(range(0x10, 0x20)) for _ in range(space_at)) + b" " + letters
    printed = dump(tool, around(rnd, 16) + value + around(rnd, 5), tmp_path)
    masks = MaskList()
    masks.add(value, name="V")
    out = masks.redact(printed)
    count = len(visible_value_bytes(out, letters, octal=tool.endswith("-b")))
    assert count == 0, f"{tool}: {count} byte(s) of the value visible"


def test_find_dumps_in_a_whole_file(tmp_path: Path) -> None:
    """The batch reader (for the leak scan): two dumps between ordinary lines, each decoded to
    the bytes dumped, every shown byte mapped back to the line that prints it."""
    from jobsecrets.hexdumps import find_dumps

    rnd = random.Random(3)
    first, second = rnd.randbytes(100), rnd.randbytes(37)
    text = (
        b"build started 000000 \n"
        + dump("xxd", first, tmp_path)
        + b"then\n"
        + b"".join(b"  " + line + b"\n" for line in dump("od -x", second, tmp_path).splitlines())
        + b"done\n"
    )
    found = list(find_dumps(text))
    assert [d.shown for d in found] == [first, second + b"\0"]  # od pads an odd length
    assert len(found[0].lines) == 7
    for d in found:
        for index in (0, 16, 17, len(d.shown) - 1):
            line_start = d.line_of(index)
            assert text[line_start - 1 : line_start] in (b"\n", b"")
            number = int(
                text[line_start:].split()[0].rstrip(b":"),
                16 if b":" in text[line_start : line_start + 10] else 8,
            )
            assert number <= index < number + 16
    # A caller's own search may hand the places in (a key inside a longer run of zeros too).
    places = [text.index(b"00000000:") + 2]
    assert [d.shown for d in find_dumps(text, places)] == [first]


@pytest.mark.parametrize(
    "hostile",
    [
        b"000000 q " * 7000 + b"\n",  # every other word a possible first address
        (b"000000 q " * 1500 + b"\n") * 5,
        b"00000000: " + b"41 " * 20000 + b"\n",  # a dump line too long to be one
        b"000000 q " * 7000,  # never finished
    ],
    ids=["one-line", "five-lines", "long-line", "unfinished"],
)
def test_output_made_to_look_like_dumps_costs_linear_time(hostile: bytes) -> None:
    """Counted in work, not seconds: the parses tried are bounded per line, whatever the line."""
    from jobsecrets import hexdumps

    calls = 0
    real = hexdumps.parse_dump_line

    def counting(text: bytes) -> hexdumps.DumpLine | None:
        nonlocal calls
        calls += 1
        return real(text)

    masks = MaskList()
    masks.add(b"Kq-ZZtop_sekrit", name="V")
    redactor = masks.redactor()
    hexdumps.parse_dump_line = counting  # type: ignore[assignment]
    try:
        out = b"".join(redactor.feed(hostile[i : i + 997]) for i in range(0, len(hostile), 997))
        out += redactor.flush()
    finally:
        hexdumps.parse_dump_line = real  # type: ignore[assignment]
    assert out == hostile
    assert calls <= 4 * (hostile.count(b"\n") + 1)


PIECES = [
    b"000000 ",
    b"000000:",
    b"00000000: ",
    b"0",
    b"00",
    b" ",
    b"\n",
    b"\r\n",
    b"x",
    b".",
    b"4b71 2d5a 5a74 6f70 5f73 656b 7269 7420  Kq-ZZtop_sekrit \n",
    b"00000010: 4b71 2d5a 5a74 6f70 5f73 656b 7269 7420  Kq-ZZtop_sekrit \n",
    b"00000000: 2020 4b71 2d5a 5a74 6f70 5f73 656b 7269    Kq-ZZtop_sekri\n",
    b"Kq-ZZtop_sekrit",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.sampled_from(PIECES), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=10),
)
def test_the_shared_search_decides_as_the_dump_stage_would(
    parts: list[bytes], cuts: list[int]
) -> None:
    """The redactor skips the dump stage when its own key search finds no first address in a
    chunk; with that shortcut turned off (every chunk through the dump stage) the output is the
    same, whatever the chunks."""
    from jobsecrets import hexdumps

    data = b"".join(parts)
    masks = MaskList()
    masks.add(b"Kq-ZZtop_sekrit", name="V")
    fast = redact_in_chunks(masks, data, cuts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hexdumps.DumpMasker, "idle", property(lambda self: False))
        slow = redact_in_chunks(masks, data, cuts)
    same = fast == slow
    assert same, "the shortcut changed the output"


def test_a_line_shaped_like_the_dump_with_no_hex_address_is_no_dump_line() -> None:
    """Found by the property test above: the layout's shape maps every hex digit to "x", so
    "x00000010:" after "000000000:" had the shape, and reading its address raised ValueError
    out of the redactor (in `run`, the end of all masking)."""
    from jobsecrets import hexdumps

    masks = MaskList()
    masks.add(b"Kq-ZZtop_sekrit", name="V")
    data = (
        b"0"
        + b"00000000: 2020 4b71 2d5a 5a74 6f70 5f73 656b 7269    Kq-ZZtop_sekri\n"
        + b"x"
        + b"00000010: 4b71 2d5a 5a74 6f70 5f73 656b 7269 7420  Kq-ZZtop_sekrit \n"
    )
    for cuts in ([], [1], [60, 90]):
        for shortcut in (True, False):
            with pytest.MonkeyPatch.context() as patch:
                if not shortcut:
                    patch.setattr(hexdumps.DumpMasker, "idle", property(lambda self: False))
                out = redact_in_chunks(masks, data, cuts)
            assert b"Kq-ZZtop_sekrit" not in out
