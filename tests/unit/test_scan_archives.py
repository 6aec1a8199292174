"""jobsecrets scan's own archive readers: zip members read in place, both inflaters (issue 19).

The scan reads stored and deflated zip members itself (not through zipfile's reader) and
inflates with ISA-L when it is installed: every test here runs with ISA-L and with the standard
zlib fallback, and the findings and errors must be the same. Damaged members must stay errors.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobsecrets.scan import Limits, Matcher, Report, archives
from jobsecrets.scan.content import CHUNK
from jobsecrets.scan.scanner import scan_paths

SECRET = "tok-4c3b2a19f8e7d6c5-zipr"
VALUES = [("API_TOKEN", SECRET)]
LEAK = b"config = '" + SECRET.encode() + b"'\n"


@pytest.fixture(params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with ISA-L (a dev dependency: it must be there) and with the stdlib fallback."""
    if request.param == "isal":
        from isal import isal_zlib

        assert archives._ZLIB is isal_zlib  # the fast path is the one installed
    else:
        monkeypatch.setattr(archives, "_ZLIB", zlib)
        monkeypatch.setattr(archives, "_GZIP_FILE", gzip.GzipFile)
    yield request.param


def run_scan(paths: list[Path], **limits: int) -> Report:
    report = Report()
    scan_paths([str(p) for p in paths], Matcher(VALUES), report, limits=Limits(**limits))
    report.sorted()
    return report


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def filler(n: int) -> bytes:
    """Text that compresses a little (not a run of one byte) and holds no piece of SECRET."""
    line = b"".join(b"word%d " % i for i in range(12)) + b"\n"
    return (line * (n // len(line) + 1))[:n]


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_members_are_found_where_they_are(tmp_path: Path, inflater: str, method: int) -> None:
    big = filler(CHUNK + 5000)  # a member read in several calls, the value in its second chunk
    members = {
        "a/empty.txt": b"",
        "a/clean.txt": filler(3000),
        "a/small.txt": b"x\ny\n" + LEAK,
        "a/big.txt": big[: CHUNK + 100] + LEAK + big[CHUNK + 100 :],
        "a/inner.tar.gz": gzip.compress(LEAK),
    }
    (tmp_path / "app.whl").write_bytes(zip_bytes(members, method))
    report = run_scan([tmp_path])
    assert report.errors == []
    got = sorted((f.where[1:], f.offset, f.line) for f in report.findings)
    lines_before_big = big[: CHUNK + 100].count(b"\n")
    assert got == [
        (("a/big.txt",), CHUNK + 100 + 10, lines_before_big + 1),
        (("a/inner.tar.gz",), 10, 1),
        (("a/small.txt",), 14, 3),
    ]
    assert report.bytes_scanned == sum(len(d) for d in members.values()) - len(
        members["a/inner.tar.gz"]
    ) + len(LEAK)


def _damage(data: bytes, what: str) -> bytes:
    out = bytearray(data)
    local = out.index(b"PK\x03\x04")
    central = out.rindex(b"PK\x01\x02")
    if what == "crc":  # the CRC in both headers: the data no longer matches it
        for at in (local + 14, central + 16):
            out[at] ^= 0xFF
    elif what == "name":  # the local header names another file than the directory
        name_at = local + 30
        out[name_at] = ord("z")
    elif what == "deflate":  # the deflate stream itself is broken
        start = local + 30 + struct.unpack_from("<HH", out, local + 26)[0]
        start += struct.unpack_from("<HH", out, local + 26)[1]
        out[start : start + 8] = b"\xff" * 8
    elif what == "size":  # the directory declares more bytes than the member has
        size = struct.unpack_from("<I", out, central + 24)[0]
        struct.pack_into("<I", out, central + 24, size + 1000)
        struct.pack_into("<I", out, local + 22, size + 1000)
    return bytes(out)


@pytest.mark.parametrize(
    ("what", "method"),
    [
        *((what, zipfile.ZIP_STORED) for what in ("crc", "name", "size")),
        *((what, zipfile.ZIP_DEFLATED) for what in ("crc", "name", "size", "deflate")),
    ],
)
def test_damaged_zip_members_are_errors(
    tmp_path: Path, inflater: str, what: str, method: int
) -> None:
    data = zip_bytes({"conf.txt": LEAK + filler(20_000)}, method)
    (tmp_path / "bad.zip").write_bytes(_damage(data, what))
    report = run_scan([tmp_path])
    assert [e.where[-1] for e in report.errors] == ["conf.txt"], [e.message for e in report.errors]
    assert "cannot be read" in report.errors[0].message


def test_gzip_inflated_by_either_library_gives_the_same_findings(
    tmp_path: Path, inflater: str
) -> None:
    body = filler(3 * CHUNK) + LEAK
    (tmp_path / "log.gz").write_bytes(gzip.compress(body) + gzip.compress(LEAK))  # two members
    whole = gzip.compress(body)
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    report = run_scan([tmp_path])
    assert [(f.where, f.offset) for f in report.findings] == [
        ((str(tmp_path / "log.gz"),), 3 * CHUNK + 10),
        ((str(tmp_path / "log.gz"),), len(body) + 10),
    ]
    assert [(e.where, "cannot be read" in e.message) for e in report.errors] == [
        ((str(tmp_path / "cut.gz"),), True)
    ]


def test_zip_bomb_members_stop_at_the_budget(tmp_path: Path, inflater: str) -> None:
    """A member that inflates past its declared size is cut there; the budget still holds."""
    zeros = b"\0" * (40 << 20)
    (tmp_path / "bomb.zip").write_bytes(zip_bytes({f"{i}.bin": zeros for i in range(3)}))
    report = run_scan([tmp_path], min_bomb=64 << 20, ratio=10)
    assert ["bomb" in e.message for e in report.errors] == [True]
