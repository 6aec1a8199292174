"""jobsecrets scan's own archive readers: zip members read in place, both inflaters (issue 19).

The scan reads stored and deflated zip members itself (not through zipfile's reader) and
inflates with ISA-L when it is installed: every test here runs with ISA-L and with the standard
zlib fallback, and the findings and errors must be the same. Damaged members must stay errors.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
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


# ---- tar: headers read by the scan, plain members searched together ---------------------------


def tar_bytes(
    members: list[tuple[str, bytes] | tarfile.TarInfo], fmt: int = tarfile.USTAR_FORMAT
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _special(name: str, kind: bytes, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


HALF = len(LEAK) // 2
ACROSS = 512 + (1 << 20) - (512 + 700_416 + 512) - 10 - 12  # the value starts 12 bytes before
TARS: dict[str, bytes] = {
    # Many small members; the value in one, at line 3; its two halves at the end of one member
    # and the start of the next (found in neither: it is in no file).
    "plain": tar_bytes(
        [(f"src/m{i}.py", filler(700 + 37 * i)) for i in range(60)]
        + [("src/leak.py", b"a\nb\n" + LEAK), ("src/x1", b"a" + LEAK[:HALF])]
        + [("src/x2", LEAK[HALF:] + b"z"), ("bin/tool", b"\0\1" + LEAK)]
        + [(f"doc/d{i}.md", filler(300)) for i in range(20)]
    ),
    # Members bigger than a read and than what is held (streamed); in a .tar, the value in
    # across.txt is across the boundary of the first two reads (512 + 1 MiB: see ACROSS).
    "big": tar_bytes(
        [
            ("a.txt", filler(700_000)),
            ("across.txt", filler(ACROSS) + LEAK + filler(100_000)),
            ("held.txt", filler((1 << 20) - 4000) + LEAK + filler(50000)),
            ("huge.log", filler(3 << 20) + LEAK + filler(1000)),
            ("after.txt", b"q\n" + LEAK),
        ]
    ),
    # Links, directories, devices and an old-style directory between files.
    "special": tar_bytes(
        [
            ("a.txt", filler(100) + LEAK),
            _special("d", tarfile.DIRTYPE),
            _special("l", tarfile.SYMTYPE, linkname="a.txt"),
            _special("h", tarfile.LNKTYPE, linkname="a.txt"),
            _special("f", tarfile.FIFOTYPE),
            _special("old/", tarfile.AREGTYPE),
            ("b.txt", LEAK),
        ]
    ),
    # An archive inside: scanned as one, as before.
    "nested": tar_bytes(
        [
            ("a.txt", filler(900)),
            ("in/x.tgz", gzip.compress(tar_bytes([("c.env", LEAK)]))),
            ("in/y.gz", gzip.compress(filler(100) + LEAK)),
            ("z.txt", LEAK),
        ]
    ),
    # pax and GNU long names after plain members: tarfile reads the rest.
    "pax": tar_bytes(
        [("a.txt", LEAK), ("b" * 120 + "/long.txt", b"x\n" + LEAK), ("c.txt", LEAK)],
        tarfile.PAX_FORMAT,
    ),
    "gnu": tar_bytes(
        [("a.txt", LEAK), ("b" * 120 + "/long.txt", b"x\n" + LEAK), ("c.txt", LEAK)],
        tarfile.GNU_FORMAT,
    ),
    "names": tar_bytes([("caf\u00e9/\u00fc.txt", LEAK), ("p" * 90 + "/" + "q" * 60, LEAK)]),
    # Damaged: cut inside a member, garbage after the end, a bad checksum later on.
    "cut": tar_bytes([("a.txt", LEAK), ("b.txt", filler(20_000) + LEAK)])[:9000],
    "after-end": tar_bytes([("a.txt", LEAK)]) + tar_bytes([("b.txt", LEAK)]),
    "bad-header": tar_bytes([("a.txt", LEAK)])[:1024] + b"\x07" * 512 + tar_bytes([("b", LEAK)]),
    "empty": b"",
    "zeros": b"\0" * 10240,
}


def _outcome(report: Report) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    findings = [(f.where[1:], f.offset, f.line, f.form) for f in report.findings]
    issues = [(i.where[1:], i.message, i.error) for i in report.issues]
    return findings, issues, report.bytes_scanned


@pytest.mark.parametrize("name", sorted(TARS))
@pytest.mark.parametrize("wrap", ["tar", "tar.gz"])
def test_tar_scan_is_the_same_as_reading_each_member_with_tarfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, wrap: str
) -> None:
    data = TARS[name]
    (tmp_path / f"t.{wrap}").write_bytes(gzip.compress(data) if wrap == "tar.gz" else data)
    fast = _outcome(run_scan([tmp_path]))
    monkeypatch.setattr(archives, "_scan_tar", archives._scan_tar_members)
    slow = _outcome(run_scan([tmp_path]))
    if name == "cut":
        # The part of a cut member that is there is searched now (tarfile's reader raised
        # before its bytes were counted, and before its findings were reported).
        assert fast[2] > slow[2]
        fast = (fast[0], fast[1], slow[2])
    assert slow == fast


def test_tar_members_are_named_with_offsets_and_lines(tmp_path: Path) -> None:
    (tmp_path / "p.tar").write_bytes(TARS["plain"])
    (tmp_path / "b.tar").write_bytes(TARS["big"])
    (tmp_path / "s.tar").write_bytes(TARS["special"])
    report = run_scan([tmp_path])
    assert report.errors == []
    assert [(f.where[0][-5:], *f.where[1:], f.offset, f.line) for f in report.findings] == [
        ("b.tar", "across.txt", ACROSS + 10, filler(ACROSS).count(b"\n") + 1),
        ("b.tar", "after.txt", 12, 2),
        ("b.tar", "held.txt", (1 << 20) - 4000 + 10, filler((1 << 20) - 4000).count(b"\n") + 1),
        ("b.tar", "huge.log", (3 << 20) + 10, filler(3 << 20).count(b"\n") + 1),
        ("p.tar", "bin/tool", 12, None),  # binary: an offset, no line
        ("p.tar", "src/leak.py", 14, 3),
        ("s.tar", "a.txt", 110, filler(100).count(b"\n") + 1),
        ("s.tar", "b.txt", 10, 1),
    ]


@pytest.mark.parametrize("name", ["pax", "gnu", "names", "nested"])
def test_tar_members_of_every_kind_are_found(tmp_path: Path, name: str) -> None:
    (tmp_path / "t.tar").write_bytes(TARS[name])
    report = run_scan([tmp_path])
    expected = {
        "pax": ["a.txt", "b" * 120 + "/long.txt", "c.txt"],
        "gnu": ["a.txt", "b" * 120 + "/long.txt", "c.txt"],
        "names": ["caf\u00e9/\u00fc.txt", "p" * 90 + "/" + "q" * 60],
        "nested": ["in/x.tgz", "in/y.gz", "z.txt"],
    }[name]
    assert [f.where[1] for f in report.findings] == expected
    assert report.errors == []


def test_damaged_tars_are_errors_or_end_where_tarfile_ends(tmp_path: Path) -> None:
    for name in ("cut", "empty", "zeros", "after-end", "bad-header"):
        (tmp_path / f"{name}.tar").write_bytes(TARS[name])
    report = run_scan([tmp_path])
    assert sorted(Path(e.where[0]).name for e in report.errors) == [
        "cut.tar"  # the only damaged one: empty is clean, and the rest end at their end marker
    ]
    assert [(Path(f.where[0]).name, f.where[1]) for f in report.findings] == [
        ("after-end.tar", "a.txt"),
        ("bad-header.tar", "a.txt"),
        ("cut.tar", "a.txt"),
    ]


def test_tar_members_past_the_limit_or_the_budget(tmp_path: Path) -> None:
    (tmp_path / "many.tar").write_bytes(tar_bytes([(f"f{i}", b"x") for i in range(50)]))
    report = run_scan([tmp_path], max_members=20)
    assert [e.message for e in report.errors] == ["tar: more than 20 members"]
    (tmp_path / "many.tar").unlink()
    member = b"\0" * (1 << 20)
    (tmp_path / "bomb.tgz").write_bytes(
        gzip.compress(tar_bytes([(f"z{i}", member) for i in range(40)]))
    )
    report = run_scan([tmp_path], min_bomb=16 << 20, ratio=1)
    assert ["bomb" in e.message for e in report.errors] == [True]


def test_members_before_damage_or_a_bomb_are_still_reported(tmp_path: Path) -> None:
    data = tar_bytes([("a.txt", LEAK), ("b.txt", filler(3 << 20))])
    whole = gzip.compress(data)
    (tmp_path / "cut.tgz").write_bytes(whole[: len(whole) // 2])
    report = run_scan([tmp_path])
    assert [f.where[1:] for f in report.findings] == [("a.txt",)]
    # The gzip stream ends inside the tar: reported for the tar, as tarfile's reader did.
    assert [e.message for e in report.errors] == ["tar: cannot be read (EOFError): not scanned"]
    (tmp_path / "cut.tgz").unlink()
    # The budget runs out within the first read of the tar stream: a.txt is not searched yet.
    zeros = [(f"z{i}", b"\0" * 100_000) for i in range(40)]
    (tmp_path / "bomb.tgz").write_bytes(gzip.compress(tar_bytes([("a.txt", LEAK), *zeros])))
    report = run_scan([tmp_path], min_bomb=1536 << 10, ratio=1)
    assert [f.where[1:] for f in report.findings] == [("a.txt",)]
    assert ["bomb" in e.message for e in report.errors] == [True]


# ---- zip: plain members searched together ---------------------------------------------------


ZIPS: dict[str, bytes] = {
    "many": zip_bytes(
        {
            **{f"pkg/m{i}.py": filler(500 + 41 * i) for i in range(80)},
            "pkg/leak.py": b"a\nb\n" + LEAK,
            "pkg/x1": b"a" + LEAK[:HALF],  # the value's halves in two members: in neither
            "pkg/x2": LEAK[HALF:] + b"z",
            "pkg/bin": b"\0\1" + LEAK,
            "pkg/data.gz": gzip.compress(b"x\n" + LEAK),
            "pkg/inner.whl": zip_bytes({"i/conf.txt": LEAK}),
            "pkg/last.txt": filler(2000) + LEAK,
        }
    ),
    "stored": zip_bytes({f"s{i}": filler(3000) + LEAK for i in range(5)}, zipfile.ZIP_STORED),
    "bzip2": zip_bytes({"b.txt": LEAK, "c.txt": filler(100)}, zipfile.ZIP_BZIP2),
    "crc": _damage(zip_bytes({"conf.txt": LEAK, "b.txt": LEAK}), "crc"),
    "big": zip_bytes({"a.txt": LEAK, "big.bin": filler(1 << 20) + LEAK, "z.txt": LEAK}),
}


@pytest.mark.parametrize("name", sorted(ZIPS))
def test_zip_scan_is_the_same_as_reading_each_member_with_zipfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    (tmp_path / "a.zip").write_bytes(ZIPS[name])
    # Nested in a tar.gz too: a zip that is not a file on disk is spooled to a temporary file.
    (tmp_path / "b.tgz").write_bytes(gzip.compress(tar_bytes([("in.zip", ZIPS[name])])))
    fast = _outcome(run_scan([tmp_path]))
    assert fast[0]  # every one of these has a finding
    monkeypatch.setattr(archives, "_open_member", lambda archive, _source, info: archive.open(info))
    assert _outcome(run_scan([tmp_path])) == fast


def test_zip_members_searched_together_are_named_with_offsets_and_lines(tmp_path: Path) -> None:
    (tmp_path / "a.whl").write_bytes(ZIPS["many"])
    report = run_scan([tmp_path])
    assert report.errors == []
    assert [(f.where[1:], f.offset, f.line) for f in report.findings] == [
        (("pkg/bin",), 12, None),
        (("pkg/data.gz",), 12, 2),
        (("pkg/inner.whl", "i/conf.txt"), 10, 1),
        (("pkg/last.txt",), 2010, filler(2000).count(b"\n") + 1),
        (("pkg/leak.py",), 14, 3),
    ]


# ---- small files: searched together by each thread -------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_small_files_searched_together_are_reported_one_by_one(
    tmp_path: Path, workers: int
) -> None:
    sizes = {}
    for i in range(300):  # more than one batch per thread
        data = filler(3000 + 17 * i)
        if i == 150:
            data = b"a\nb\n" + LEAK + data
        elif i == 151:
            data = data[:500] + LEAK[:HALF]  # and the rest at the start of the next file
        elif i == 152:
            data = LEAK[HALF:] + data
        (tmp_path / f"f{i:03}.txt").write_bytes(data)
        sizes[i] = len(data)
    (tmp_path / "z.bin").write_bytes(b"\0" * 10 + LEAK)
    report = Report()
    matcher = Matcher(VALUES)
    scan_paths([str(tmp_path)], matcher, report, limits=Limits(), workers=workers)
    report.sorted()
    assert [(Path(f.where[0]).name, f.offset, f.line) for f in report.findings] == [
        ("f150.txt", 14, 3),
        ("z.bin", 20, None),
    ]
    total = sum(sizes.values()) + 10 + len(LEAK)
    assert (report.files, report.bytes_read, report.bytes_scanned) == (301, total, total)
