"""``scan`` against inputs written to hurt it (found by a helper session hunting for them).

Each case was a crash ("internal error", which also hid every other finding of the scan), a
hang, or a missed leak before its fix. Time limits here are hang guards far above the fixed
cost (seconds against minutes), not measurements.

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and never a value it
compared.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import struct
import subprocess
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from jobsecrets.scan import Limits, Matcher, Report
from jobsecrets.scan.scanner import scan_paths
from support.cli import jobsecrets

VALUE = "hostile-scan-value-7a6b5c"
ENV = {"LEAKY": VALUE, "JOBSECRETS_MASK_VARS": "LEAKY"}


def scan(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return jobsecrets(["scan", *args], cwd=cwd, env=ENV, timeout=timeout, memory_limit=2 << 30)


def test_a_tree_in_the_index_does_not_hide_the_files_after_it(tmp_path: Path) -> None:
    """``git cat-file --batch`` sends a tree's body too: left unread, it was taken for the next
    objects' headers, and the leak staged after it went unscanned (exit 10, 0 findings)."""
    git = [
        "git",
        "-c",
        "user.email=a@example.com",
        "-c",
        "user.name=a",
        "-c",
        "init.defaultBranch=main",
    ]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("hi\n")
    subprocess.run([*git, "add", "f"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "i"], cwd=tmp_path, check=True)
    tree = subprocess.run(
        ["git", "write-tree"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(
        ["git", "update-index", "--add", "--cacheinfo", f"100644,{tree},aaa-evil"],
        cwd=tmp_path,
        check=True,
    )
    (tmp_path / "leak.txt").write_text(f"key = {VALUE}\n")
    subprocess.run(["git", "add", "leak.txt"], cwd=tmp_path, check=True)
    result = scan(["--staged", "--format", "json"], tmp_path)
    assert result.returncode == 9, result.stderr[-500:]
    report = json.loads(result.stdout)
    assert [f["file"] for f in report["findings"]] == [":leak.txt"]
    assert ":aaa-evil: not a blob" in result.stderr


def test_a_stream_made_of_findings_is_scanned_in_linear_time(tmp_path: Path) -> None:
    """Each finding's line was counted from the chunk's start: 200,000 findings in 4 MiB took
    minutes per chunk. Line numbers stay right."""
    with gzip.open(tmp_path / "d.gz", "wb") as handle:
        handle.write(f"{VALUE}\n".encode() * 200_000)
    result = scan(["d.gz", "--format", "json"], tmp_path, timeout=60)
    assert result.returncode == 9
    findings = json.loads(result.stdout)["findings"]
    assert [f["line"] for f in findings[:3]] == [1, 2, 3]
    assert findings[-1]["line"] == len(findings)


def _zip_with_name(
    name: bytes,
    data: bytes,
    *,
    zip64_offset: int | None = None,
    method: int = 0,
    declared: bytes | None = None,
) -> bytes:
    """A zip of one member named ``name`` (zipfile refuses to write an empty name) whose
    compressed data is ``data`` (``method`` 0: stored); ``declared`` is what the headers say it
    holds (size and CRC; default: ``data``). With ``zip64_offset``, the directory says the
    member's header is at that offset."""
    content = data if declared is None else declared
    crc, size = zlib.crc32(content), len(content)
    local = struct.pack(
        "<4sHHHHHIIIHH", b"PK\3\4", 46, 0, method, 0, 0, crc, len(data), size, len(name), 0
    )
    extra = b"" if zip64_offset is None else struct.pack("<HHQ", 1, 8, zip64_offset)
    offset = 0 if zip64_offset is None else 0xFFFFFFFF
    central = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\1\2", 46, 46, 0, method, 0, 0, crc, len(data), size,
        len(name), len(extra), 0, 0, 0, 0, offset,
    )  # fmt: skip
    body = local + name + data
    directory = central + name + extra
    end = struct.pack("<4sHHHHIIH", b"PK\5\6", 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def scan_beside_a_leak(
    tmp_path: Path, name: str, content: bytes
) -> subprocess.CompletedProcess[str]:
    """Scan a tree of ``name`` (written to hurt) and a plain leak: the leak must still be
    reported (exit 9), whatever ``name`` does, and nothing be an internal error."""
    (tmp_path / name).write_bytes(content)
    (tmp_path / "leak.txt").write_text(f"{VALUE}\n")
    result = scan(["."], tmp_path)
    assert result.returncode == 9, result.stderr[-500:]
    assert "internal error" not in result.stderr
    assert "leak.txt:1" in result.stdout
    return result


@pytest.mark.parametrize("name", [b"", b"\0x"])
def test_a_zip_member_without_a_name_is_an_error_and_hides_nothing(
    tmp_path: Path, name: bytes
) -> None:
    """zipfile's ``is_dir()`` is an IndexError on an empty name: the scan died as an internal
    error (exit 1), and the leak in the file beside the zip was never reported."""
    scan_beside_a_leak(tmp_path, "e.zip", _zip_with_name(name, VALUE.encode()))


def test_a_zip64_offset_past_any_file_is_damage(tmp_path: Path) -> None:
    """A zip64 header offset of 2**64-1 made seek() raise OverflowError: an internal error."""
    zipped = _zip_with_name(b"a.txt", b"x", zip64_offset=2**64 - 1)
    result = scan_beside_a_leak(tmp_path, "o.zip", zipped)
    assert "o.zip" in result.stderr and "cannot be read" in result.stderr


def test_corrupt_zstd_is_damage(tmp_path: Path) -> None:
    """zstandard's ZstdError was no damage we knew: an internal error."""
    import zstandard

    data = bytearray(zstandard.ZstdCompressor().compress(b"some text " * 1000))
    for i in range(12, len(data) - 4):
        data[i] ^= 0x5A
    result = scan_beside_a_leak(tmp_path, "c.zst", bytes(data))
    assert "c.zst: zstd: cannot be read" in result.stderr


def test_a_file_name_cannot_start_a_line_in_the_log(tmp_path: Path) -> None:
    """A name holding a line break was printed as it was: a file named
    ``x\\n::stop-commands::tok`` put a workflow command of the tree's making in the job's log."""
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "x\n::stop-commands::tok\x1b[2J").write_text(f"{VALUE}\n")
    (tmp_path / "dist" / "y\n::error::fifo").mkdir()
    os.mkfifo(tmp_path / "dist" / "y\n::error::fifo" / "z\n::warning::p")
    summary = tmp_path / "summary.md"
    result = scan(["dist", "--summary", str(summary)], tmp_path)
    assert result.returncode == 9
    for text in (result.stdout, result.stderr, summary.read_text()):
        lines = text.splitlines()
        assert not [line for line in lines if line.startswith("::")], text[-300:]
        assert "\x1b" not in text
    assert "x\\x0a::stop-commands::tok\\x1b[2J:1" in result.stdout


def test_a_huge_gnu_long_name_is_damage_not_memory(tmp_path: Path) -> None:
    """tarfile reads a long-name record whole: 400 MB of name in a 0.4 MB .tgz was 0.8 GB of
    memory (a MemoryError under this test's 1 GiB cap, an internal error). Records over 1 MiB
    are now refused as damage."""
    import tarfile

    size = 400 << 20
    record = tarfile.TarInfo("././@LongLink")
    record.type = tarfile.GNUTYPE_LONGNAME
    record.size = size
    with gzip.open(tmp_path / "long.tgz", "wb", compresslevel=1) as handle:
        handle.write(record.tobuf(format=tarfile.GNU_FORMAT))
        block = b"a" * (1 << 20)
        for _ in range(size >> 20):
            handle.write(block)
        member = tarfile.TarInfo("after.txt")
        data = f"{VALUE}\n".encode()
        member.size = len(data)
        handle.write(member.tobuf(format=tarfile.GNU_FORMAT) + data + b"\0" * (512 - len(data)))
        handle.write(b"\0" * 1024)
    (tmp_path / "leak.txt").write_text(f"{VALUE}\n")
    result = jobsecrets(["scan", "."], cwd=tmp_path, env=ENV, timeout=120, memory_limit=1 << 30)
    assert result.returncode == 9, result.stderr[-500:]
    assert "internal error" not in result.stderr
    assert "long.tgz" in result.stderr and "cannot be read" in result.stderr


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, zipfile.ZIP_DEFLATED])
def test_bzip2_and_lzma_zip_members_are_scanned(tmp_path: Path, method: int) -> None:
    with zipfile.ZipFile(tmp_path / "m.zip", "w", compression=method) as archive:
        archive.writestr("dir/a.txt", b"nothing\n" * 1000 + f"key={VALUE}\n".encode())
        archive.writestr("dir/b.txt", b"clean\n")
    result = scan(["m.zip"], tmp_path)
    assert result.returncode == 9, result.stderr[-500:]
    assert "m.zip!dir/a.txt:1001" in result.stdout


def test_a_bzip2_zip_member_bomb_is_decompressed_in_bounded_pieces(tmp_path: Path) -> None:
    """zipfile's bzip2 reader decompresses each chunk of input whole: 300 bytes of bzip2 in a
    member declaring 100 bytes came out as 100 MB at once (3.2 GB from 2.4 KB in the helper's
    run). Memory is measured (tracemalloc's peak), not time."""
    compressor = bz2.BZ2Compressor(9)
    bomb = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(100)) + compressor.flush()
    zipped = _zip_with_name(b"small.txt", bomb, method=zipfile.ZIP_BZIP2, declared=bytes(100))
    (tmp_path / "b.zip").write_bytes(zipped)
    report = Report()
    tracemalloc.start()
    try:
        scan_paths([str(tmp_path / "b.zip")], Matcher([("LEAKY", VALUE)]), report, limits=Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"peak {peak >> 20} MiB while scanning a 100 MB bomb"
    # The 100 bytes it declares were read (zeros, as declared, CRC and all); the rest is not
    # the member's, as for zipfile.
    assert report.total_findings == 0 and report.files == 1


class _CountingBytes(bytes):
    """Bytes that count how much ``find`` looked through (the work, not the time)."""

    looked = 0

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:  # type: ignore[override]
        found = super().find(sub, start, end)
        stop = len(self) if end is None else end
        self.looked += (found if found >= 0 else stop) - start
        return found


@pytest.mark.parametrize("line_break", [b"", b"\n"])
def test_hex_dump_candidates_on_one_long_line_are_linear(line_break: bytes) -> None:
    """Every "000000 " could start a dump; each looked for its line's end from itself: a line of
    them without a break (a 23 KB .gz of it took 50 s) was quadratic."""
    from jobsecrets.hexdumps import find_dumps

    data = _CountingBytes(b"000000 " * 100_000 + line_break)
    assert list(find_dumps(data)) == []
    assert data.looked <= 2 * len(data), f"looked through {data.looked:,} bytes"


def _zstd_frames() -> bytes:
    import zstandard

    text = b"line one\n" * 20000 + b"the end\n"
    first = zstandard.ZstdCompressor(write_checksum=True).compress(text)
    second = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(range(256)) * 64)
    skippable = b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"hello"
    return first + skippable + second


@pytest.mark.parametrize("keep", [0.5, 0.999, -4, -1])
def test_zstd_cut_short_is_damage_not_clean(tmp_path: Path, keep: float) -> None:
    """zstandard's reader ends quietly inside a frame: a .zst cut short scanned clean, its
    missing part unread and unreported (gzip's cut short is damage, exit 10)."""
    whole = _zstd_frames()
    cut = int(len(whole) * keep) if keep > 0 else len(whole) + int(keep)
    result = scan_beside_a_leak(tmp_path, "c.zst", whole[:cut])
    assert "c.zst: zstd: cannot be read" in result.stderr


def test_whole_zstd_frames_with_a_skippable_one_scan_clean(tmp_path: Path) -> None:
    (tmp_path / "c.zst").write_bytes(_zstd_frames())
    result = scan(["."], tmp_path)
    assert result.returncode == 0, result.stderr[-500:]


def test_the_frame_walk_knows_every_cut_of_a_zstd_stream() -> None:
    import zstandard

    from jobsecrets.scan.zstdframes import FrameWalk

    whole = _zstd_frames() + zstandard.ZstdCompressor(level=19).compress(b"")
    for chunk in (1, 5, 4096):
        walk = FrameWalk()
        for at in range(0, len(whole), chunk):
            walk.feed(whole[at : at + chunk])
        assert walk.complete and walk.frames == 4
    ends = set()
    walk = FrameWalk()
    for at in range(len(whole)):
        walk.feed(whole[at : at + 1])
        if walk.complete:
            ends.add(at + 1)
    # Complete only where a frame ends: after each of the four, never inside one.
    assert len(ends) == 4 and len(whole) in ends
    walk = FrameWalk()
    walk.feed(whole + b"junk")
    assert not walk.complete and "no zstd frame" in walk.problem


def test_a_directory_swapped_for_a_symlink_during_the_walk_is_not_followed(
    tmp_path: Path,
) -> None:
    """A directory listed as one, then swapped for a symlink to elsewhere before the walk went
    into it, was listed through the link: files outside the scanned tree were read."""
    from jobsecrets.scan.walker import walk

    tree, outside = tmp_path / "tree", tmp_path / "outside"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("first\n")
    (tree / "sub" / "b.txt").write_text("inside\n")
    outside.mkdir()
    (outside / "secret.txt").write_text("not ours to read\n")
    report = Report()
    files = walk([str(tree)], report)
    first = next(files)  # a.txt: the walk has listed `sub` as a directory by now
    assert first[0].endswith("a.txt")
    (tree / "sub").rename(tmp_path / "moved")
    (tree / "sub").symlink_to(outside)
    rest = [shown for shown, _path, _st in files]
    assert not any("secret.txt" in shown for shown in rest), "read through the swapped link"
    assert any("changed while the scan ran" in issue.message for issue in report.issues)
