"""Looking inside archives and compressed data, nested, with bounded depth and expansion.

Formats are recognised by their first bytes, not by file name: a ``.jar``/``.whl``/``.apk`` is a
zip, a Docker layer is a tar, ``.tgz`` is gzip then tar. Supported: zip (stored and deflated,
bzip2, lzma members, whatever :mod:`zipfile` reads), tar (ustar/GNU/pax), gzip, bzip2, xz, and
zstd when a library exists (Python 3.14's :mod:`compression.zstd`, else the ``zstandard`` package:
``pip install 'jobsecrets[zstd]'``; without one a zstd file is an error, never silently skipped).

Hostile input is an error for that file, never a hang or an exhausted disk:

* nesting deeper than :attr:`Limits.max_depth` layers is not opened;
* every byte produced by decompression or read out of an archive counts against the top-level
  file's budget: ``max(min_bomb, ratio * its size)``, at most ``max_total``. A zip bomb stops there
  (a zip's declared sizes are checked before anything is inflated);
* damaged data, encrypted zip members and unsupported compression are errors (the file could
  hold a value we cannot see).

Zip needs to seek: a zip file on disk is read in place (up to 4 MiB, into memory at once); a zip
inside something else is copied to a private temporary file first (counted against the budget).

Most members of archives are small text files: tar headers are read here and zip members of up
to 1 MiB are read whole, and plain members are searched about 1 MiB at a time
(:class:`MemberBatch`); a member a key is found in is scanned again by itself, so what is
reported is what scanning each member alone reports.

Inflating is most of the cost of an archive of text: gzip streams and deflated zip members are
inflated with ISA-L (the ``isal`` package, ~4x the standard :mod:`zlib` here) when it is
installed, else with :mod:`zlib`; the results are the same bytes.
"""

from __future__ import annotations

__all__ = [
    "ExpansionLimit",
    "Limits",
    "MemberBatch",
    "ScanContext",
    "limited",
    "scan_object",
    "sniff",
]

import bisect
import bz2
import contextlib
import gzip
import io
import lzma
import os
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from .content import CHUNK, scan_stream
from .matcher import Matcher
from .report import Report
from .zstdframes import FrameWalk, WalkedReader

_HEAD = 512


@dataclass(frozen=True)
class Limits:
    """How far the scan goes into archives."""

    #: Archive or compression layers opened inside one another (``.tar.gz`` is 2).
    max_depth: int = 6
    #: Expansion allowed per file on disk, as a multiple of its size...
    ratio: int = 200
    #: ...but never less than this (small archives of text compress very well)...
    min_bomb: int = 256 << 20
    #: ...and never more than this.
    max_total: int = 32 << 30
    #: Members of one archive.
    max_members: int = 200_000


class ExpansionLimit(Exception):
    """More bytes came out of a file than its budget allows: a decompression bomb."""


@dataclass
class ScanContext:
    """What one top-level file's scan shares: matcher, report, limits and the expansion budget."""

    matcher: Matcher
    report: Report
    limits: Limits
    budget: int = 0
    expanded: int = 0

    def start(self, size: int) -> None:
        """A new top-level file of ``size`` bytes: reset the budget."""
        lim = self.limits
        self.budget = min(lim.max_total, max(lim.min_bomb, lim.ratio * size))
        self.expanded = 0

    def spend(self, n: int) -> None:
        """Count ``n`` bytes produced by an archive layer; raise past the budget."""
        self.expanded += n
        if self.expanded > self.budget:
            raise ExpansionLimit(
                f"expands to more than {self.budget:,} bytes: a decompression bomb? "
                "(not scanned further)"
            )


class _Counted:
    """A read-only stream whose bytes count against the budget."""

    def __init__(self, raw: Any, ctx: ScanContext) -> None:
        self._raw = raw
        self._ctx = ctx

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._raw.read(CHUNK if n is None or n < 0 else n)
        self._ctx.spend(len(data))
        return data


class _Prefixed:
    """``head`` followed by the rest of ``raw``: a non-seekable stream after it was sniffed."""

    def __init__(self, head: bytes, raw: Any) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data = self._head + self._raw.read()
                self._head = b""
                return bytes(data)
            out, self._head = self._head[:n], self._head[n:]
            return out
        rest: bytes = self._raw.read(n)
        return rest

    def readable(self) -> bool:
        return True

    def remaining(self) -> bytes:
        """What is left of ``head`` (read ahead from ``raw``, not given out yet)."""
        return self._head

    def readinto(self, buffer: Any) -> int:
        """What ISA-L's gzip reader calls: fill ``buffer`` with the next bytes."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def _zstd_reader(raw: Any) -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+

        return zstd.ZstdFile(raw)
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise _Unsupported(
            "zstd: no library to read it (Python 3.14+, or pip install 'jobsecrets[zstd]')"
        ) from None
    source = WalkedReader(raw, FrameWalk())
    return _ZstdErrorsAsOSError(
        # Any object with read() will do (zstandard's stub asks for IO[bytes]).
        zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True),  # type: ignore[arg-type]
        zstandard,
        source,
    )


class _ZstdErrorsAsOSError:
    """zstandard's reader, its ZstdError (corrupt data) raised as the OSError damage is, and
    its quiet end inside a frame (a file cut short) raised as EOFError, as gzip's reader does."""

    def __init__(self, reader: Any, module: Any, source: WalkedReader) -> None:
        self._reader = reader
        self._error = module.ZstdError
        self._source = source

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._reader.read(n)
        except self._error as error:
            raise OSError(f"zstd: {error}") from None
        if not data and n != 0:
            self._source.drain()
            walk = self._source.walk
            if not walk.complete:
                raise EOFError(f"zstd: {walk.problem or 'the file ends inside a frame'}")
        return data

    def close(self) -> None:
        self._reader.close()


class _Unsupported(Exception):
    """A format we recognise but cannot open here."""


def _inflaters() -> tuple[Any, type[Any], tuple[type[BaseException], ...]]:
    """The zlib module, the gzip reader and the extra errors of the fastest inflater installed.

    ISA-L (``isal``: the ``fast`` extra, on the platforms it has wheels for) inflates ~4x faster
    than zlib and, like zlib, releases the GIL while it does; the standard library is the
    fallback.
    """
    try:
        from isal import igzip, isal_zlib
    except ImportError:
        return zlib, gzip.GzipFile, ()
    # The stub calls it an instance; it is isal's exception class (igzip_lib.IsalError).
    error: type[BaseException] = isal_zlib.error  # type: ignore[assignment]
    return isal_zlib, igzip.GzipFile, (error,)


_ZLIB, _GZIP_FILE, _INFLATE_ERRORS = _inflaters()

_COMPRESSED: dict[str, Callable[[Any], Any]] = {
    "gzip": lambda raw: _GZIP_FILE(fileobj=raw, mode="rb"),
    "bzip2": lambda raw: bz2.BZ2File(raw),
    "xz": lambda raw: lzma.LZMAFile(raw),  # noqa: SIM115 (closed by scan_object)
    "zstd": _zstd_reader,
}


_BZ2_MAGICS = (b"1AY&SY", b"\x17rE8P\x90")


def sniff(head: bytes) -> str | None:
    """The container format ``head`` (the first 512 bytes) starts, or None for plain data."""
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    # "BZh", the block size digit, then a block or end-of-stream magic (pi or sqrt(pi)).
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] in _BZ2_MAGICS:
        return "bzip2"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def _read_head(stream: Any) -> bytes:
    head = b""
    while len(head) < _HEAD:
        more = stream.read(_HEAD - len(head))
        if not more:
            break
        head += more
    return head


_DAMAGED: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    ValueError,
    # zipfile on crafted headers: an offset past 2**63 (seek), a name it indexes when empty.
    OverflowError,
    IndexError,
    *_INFLATE_ERRORS,
)


def scan_object(
    stream: Any,
    where: tuple[str, ...],
    ctx: ScanContext,
    depth: int = 0,
    *,
    seekable: BinaryIO | None = None,
) -> None:
    """Scan one stream: as an archive or compressed data when it is one, else as bytes.

    ``seekable`` is the same data as an open file that can seek (a file on disk), for zip.
    Problems become issues in the report for ``where``; nothing is raised but
    :class:`ExpansionLimit`, which ends the whole top-level file.
    """
    head = _read_head(stream)
    kind = sniff(head)
    if kind is None:
        n = scan_stream(
            stream.read, ctx.matcher, where, ctx.report, first=head, lines_from=seekable
        )
        ctx.report.count(scanned=n)
        return
    if depth >= ctx.limits.max_depth:
        ctx.report.add_issue(
            where, f"{kind} nested more than {ctx.limits.max_depth} layers deep: not opened"
        )
        return
    try:
        if kind == "zip":
            _scan_zip(head, stream, where, ctx, depth, seekable)
        elif kind == "tar":
            _scan_tar(_Prefixed(head, stream), where, ctx, depth)
        else:
            opened = _COMPRESSED[kind](_Prefixed(head, stream))
            try:
                scan_object(_Counted(opened, ctx), where, ctx, depth + 1)
            finally:
                opened.close()
    except ExpansionLimit:
        raise
    except _Unsupported as error:
        ctx.report.add_issue(where, str(error))
    except _DAMAGED as error:
        ctx.report.add_issue(where, f"{kind}: cannot be read ({type(error).__name__}): not scanned")


def _scan_tar(stream: Any, where: tuple[str, ...], ctx: ScanContext, depth: int) -> None:
    """Scan a tar stream: plain members searched many at once, the rest one by one.

    Most members of a source tarball are small text files. Opening each through :mod:`tarfile`
    costs ~70 us of Python, and searching each alone one more call; so the headers are read here
    (:class:`_TarWalk`) and the data of plain members that sit side by side in the buffer is
    searched in one call. A key found inside a member sends that member alone through
    :func:`~jobsecrets.scan.content.scan_stream`, so findings, lines and forms are exactly those
    of a member scanned by itself; keys across two members belong to neither. Members that are
    archives themselves, or too big to hold, are scanned as a stream as before. At the first
    header that is not a plain ustar/GNU one (pax, GNU long names, sparse files...) the rest of
    the stream goes to :mod:`tarfile`.
    """
    walk = _TarWalk(stream, where, ctx, depth)
    rest = walk.run()
    if rest is not None:
        _scan_tar_members(rest, where, ctx, depth, walk.count)


# tarfile reads a GNU long name or a pax header whole, in one read of the size its header claims:
# a 10 MB .tgz claiming a 10 GB long name was 10 GB of memory. Real ones are a few KiB.
_MAX_TAR_META = 1 << 20
_TAR_META_TYPES = frozenset(
    {
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    }
)


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo whose long-name and pax records are refused above :data:`_MAX_TAR_META`."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _TAR_META_TYPES and self.size > _MAX_TAR_META:
            raise tarfile.HeaderError(
                f"a long-name or pax record of {self.size:,} bytes (at most {_MAX_TAR_META:,})"
            )
        processed: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return processed


def _scan_tar_members(
    stream: Any, where: tuple[str, ...], ctx: ScanContext, depth: int, count: int = 0
) -> None:
    # "r|": a stream, members in order, no seeking; compression is ours to undo (already done).
    # 64 KiB reads: the default (10 KiB) costs a Python call per 10 KiB; a bigger buffer is
    # copied whole at every header read (tarfile._Stream slices it).
    with tarfile.open(
        fileobj=stream, mode="r|", bufsize=1 << 16, tarinfo=_BoundedTarInfo
    ) as archive:
        for member in archive:
            count += 1
            if count > ctx.limits.max_members:
                ctx.report.add_issue(where, f"tar: more than {ctx.limits.max_members} members")
                return
            if not member.isfile():
                continue  # links, directories, devices: metadata only
            handle = archive.extractfile(member)
            if handle is None:
                continue
            scan_object(_Counted(handle, ctx), (*where, member.name), ctx, depth + 1)


_BLOCK = tarfile.BLOCKSIZE
# Bytes read from a tar stream at a time, and gathered from zip members or small files, before
# they are searched in one call: big enough that a call per piece vanishes, small enough that
# memory stays a few MiB per thread.
_BATCH = 1 << 20
# Tar and zip members up to this size are held whole in memory; bigger ones are streamed.
_HELD = 1 << 20
# Types whose data follows the header (regular files), and those that have none in tarfile's
# reading (hard and symbolic links, devices, directories, FIFOs: their size field is ignored).
_TAR_DATA = frozenset(b"0\x007")
_TAR_NO_DATA = frozenset(b"123456")


_UNSIGNED = struct.Struct("148B8x356B")
_SIGNED = struct.Struct("148b8x356b")


def _tar_checksums(block: bytes) -> tuple[int, int]:
    """The header checksum both ways tarfile accepts (bytes summed unsigned, and signed)."""
    return 256 + sum(_UNSIGNED.unpack_from(block)), 256 + sum(_SIGNED.unpack_from(block))


def _tar_number(field: bytes) -> int:
    """A numeric header field as tarfile reads it: octal up to a NUL, or GNU base-256."""
    if field[0] in (0o200, 0o377):
        n = int.from_bytes(field[1:], "big")
        return n - 256 ** (len(field) - 1) if field[0] == 0o377 else n
    return int(field.split(b"\0", 1)[0].decode("ascii").strip() or "0", 8)


class _TarWalk:
    """Reads tar headers itself and searches runs of plain members in one call (see _scan_tar)."""

    def __init__(self, stream: Any, where: tuple[str, ...], ctx: ScanContext, depth: int) -> None:
        self._stream = stream
        self._where = where
        self._ctx = ctx
        self._depth = depth
        self._buf = bytearray()
        self._start = 0  # stream offset of _buf[0]
        self._eof = False
        #: Members (headers) seen, for the limit on members.
        self.count = 0
        # Plain members in the buffer not searched yet: (header offset, data start, data end).
        self._batch: list[tuple[int, int, int]] = []

    def _fill(self, end: int, keep: int) -> bool:
        """Make the buffer reach stream offset ``end``; False when the stream ends before it.

        Before it reads more, the plain members it holds are searched and everything before
        ``keep`` is let go: the buffer holds one read and at most one member more.
        """
        while self._start + len(self._buf) < end and not self._eof:
            self._flush()
            self._drop(keep)
            more = self._stream.read(max(_BATCH, end - self._start - len(self._buf)))
            if not more:
                self._eof = True
            self._buf += more
        return self._start + len(self._buf) >= end

    def _drop(self, upto: int) -> None:
        """Forget the buffer before stream offset ``upto`` (nothing there is needed any more)."""
        # Not past what was read: the bytes up to ``upto`` are still to come from the stream.
        cut = min(upto - self._start, len(self._buf))
        if cut > 0:
            del self._buf[:cut]
            self._start += cut

    def _name(self, header_at: int) -> str:
        at = header_at - self._start
        block = bytes(self._buf[at : at + _BLOCK])
        return tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape").name

    def run(self) -> Any:
        """Scan every member; returns the rest of the stream for tarfile, or None when done."""
        try:
            return self._run()
        except Exception:
            # A damaged stream or the expansion budget: the members read before it are still
            # searched and reported, as when each was scanned as soon as it was read.
            self._flush()
            raise

    def _run(self) -> Any:
        pos = 0
        limit = self._ctx.limits.max_members
        while True:
            self._fill(pos + _BLOCK, pos)
            at = pos - self._start
            block = bytes(self._buf[at : at + _BLOCK])
            kind = self._header(block)
            if kind is None:
                # Not a header we read ourselves. At the start tarfile says what is wrong (an
                # empty or damaged file); later, the end of the archive as tarfile sees it (a
                # zero block, the end of the stream, a bad checksum), or a header of a kind
                # tarfile reads (pax, GNU long names, sparse): it takes the rest from there.
                if pos > 0 and not self._later(block):
                    self._flush()
                    return None
                self._flush()
                rest = bytes(self._buf[at:])
                self._buf = bytearray()
                return _Prefixed(rest, self._stream)
            self.count += 1
            if self.count > limit:
                self._flush()
                self._ctx.report.add_issue(self._where, f"tar: more than {limit} members")
                return None
            data_at = pos + _BLOCK
            if kind < 0:  # no data
                pos = data_at
                continue
            size = kind
            pos = data_at + -(-size // _BLOCK) * _BLOCK
            if size == 0:
                continue
            if size <= _HELD and self._fill(data_at + size, data_at - _BLOCK):
                i = data_at - self._start
                if sniff(bytes(self._buf[i : i + min(size, _HEAD)])) is None:
                    self._ctx.spend(size)  # what a member's reader would have counted
                    self._batch.append((data_at - _BLOCK, data_at, data_at + size))
                    continue
            self._stream_member(data_at - _BLOCK, data_at, size)

    def _header(self, block: bytes) -> int | None:
        """Data size of a plain file's header, -1 for a member without data, None: not ours."""
        if len(block) != _BLOCK or block.count(0) == _BLOCK:
            return None
        try:
            if _tar_number(block[148:156]) not in _tar_checksums(block):
                return None
            kind = block[156]
            if kind in _TAR_NO_DATA:
                return -1
            if kind not in _TAR_DATA:
                return None
            if kind == 0 and block[:100].split(b"\0", 1)[0].endswith(b"/"):
                return -1  # an old-style directory (tarfile reads it as one)
            size: int = _tar_number(block[124:136])
        except (tarfile.HeaderError, ValueError):
            return None
        return size if size >= 0 else None

    @staticmethod
    def _later(block: bytes) -> bool:
        """Whether tarfile would go on reading at this header (not: end of archive as it sees it)."""
        if len(block) != _BLOCK or block.count(0) == _BLOCK:
            return False
        try:
            return _tar_number(block[148:156]) in _tar_checksums(block)
        except (tarfile.HeaderError, ValueError):
            return False

    def _stream_member(self, header_at: int, data_at: int, size: int) -> None:
        """A member too big to hold or an archive itself: scanned as a stream, as tarfile did."""
        self._flush()
        name = self._name(header_at)
        self._drop(data_at)
        rest = _Prefixed(bytes(self._buf), self._stream)
        self._buf = bytearray()
        member = _Limited(rest, size)
        scan_object(_Counted(member, self._ctx), (*self._where, name), self._ctx, self._depth + 1)
        while member.left > 0:  # what the member's scan did not read (a damaged archive...)
            if not member.read(min(member.left, CHUNK)):
                raise tarfile.ReadError("unexpected end of data")
        self._buf = bytearray(rest.remaining())
        self._start = data_at + size

    def _flush(self) -> None:
        """Search the plain members in the buffer in one call (see :func:`_search_members`)."""
        batch = self._batch
        if not batch:
            return
        self._batch = []
        first, last = batch[0][1], batch[-1][2]
        # One copy (a view into the bytearray would stop it from being resized while it lives).
        data = memoryview(self._buf)[first - self._start : last - self._start].tobytes()
        spans = [(start - first, end - first) for _, start, end in batch]
        where = self._where
        _search_members(
            self._ctx.matcher,
            self._ctx.report,
            data,
            spans,
            lambda i: (*where, self._name(batch[i][0])),
        )


def _search_members(
    matcher: Matcher,
    report: Report,
    data: bytes,
    spans: list[tuple[int, int]],
    where: Callable[[int], tuple[str, ...]],
) -> None:
    """Search plain members (``data[start:end]`` for each span, in order) with one call.

    A key found inside a member sends that member alone through
    :func:`~jobsecrets.scan.content.scan_stream`: findings, lines, forms and binary detection are
    those of the member scanned by itself. A key across two members belongs to neither. Keys of
    random values almost never occur by chance, so on clean data this is one search and no more.
    """
    hits: set[int] = set()
    starts = [start for start, _ in spans]
    for _key, at, end in matcher.candidates(data):
        i = bisect.bisect_right(starts, at) - 1
        if i >= 0 and end <= spans[i][1]:
            hits.add(i)
    scanned = 0
    for i, (start, end) in enumerate(spans):
        if i in hits:
            member = data[start:end]
            scanned += scan_stream(lambda _n: b"", matcher, where(i), report, first=member)
        else:
            scanned += end - start
    report.count(scanned=scanned)


class MemberBatch:
    """Plain data (zip members, small files) gathered to be searched in one call.

    Each piece is reported as if it had been scanned alone (see :func:`_search_members`).
    """

    def __init__(self, matcher: Matcher, report: Report) -> None:
        self._matcher = matcher
        self._report = report
        self._parts: list[bytes] = []
        self._wheres: list[tuple[str, ...]] = []
        self._size = 0

    def add(self, where: tuple[str, ...], data: bytes) -> None:
        """Gather one piece, reported at ``where``; search what was gathered once it is big enough."""
        self._parts.append(data)
        self._wheres.append(where)
        self._size += len(data)
        if self._size >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Search what was gathered."""
        parts, wheres = self._parts, self._wheres
        if not parts:
            return
        self._parts, self._wheres, self._size = [], [], 0
        spans = []
        at = 0
        for part in parts:
            spans.append((at, at + len(part)))
            at += len(part)
        _search_members(self._matcher, self._report, b"".join(parts), spans, wheres.__getitem__)


def _spool(stream: Any, ctx: ScanContext) -> IO[bytes]:
    """Copy a nested zip to a private temporary file (it must seek); counted in the budget."""
    spool = tempfile.TemporaryFile(prefix="jobsecrets-scan-")  # noqa: SIM115  (closed by caller)
    try:
        while True:
            data = stream.read(CHUNK)
            if not data:
                break
            spool.write(data)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def _scan_zip(
    head: bytes,
    stream: Any,
    where: tuple[str, ...],
    ctx: ScanContext,
    depth: int,
    seekable: BinaryIO | None,
) -> None:
    with contextlib.ExitStack() as stack:
        if seekable is not None:
            seekable.seek(0)
            source: IO[bytes] = seekable
            if seekable.seek(0, os.SEEK_END) <= CHUNK:
                # A small zip (most wheels) read at once: a member costs no system call.
                seekable.seek(0)
                source = io.BytesIO(seekable.read(CHUNK + 1))
            seekable.seek(0)
        else:
            source = stack.enter_context(_spool(_Prefixed(head, stream), ctx))
        archive = stack.enter_context(zipfile.ZipFile(source))
        infos = archive.infolist()
        if len(infos) > ctx.limits.max_members:
            ctx.report.add_issue(where, f"zip: more than {ctx.limits.max_members} members")
            return
        declared = sum(info.file_size for info in infos)
        if ctx.expanded + declared > ctx.budget:
            raise ExpansionLimit(
                f"zip declares {declared:,} bytes, more than its budget of {ctx.budget:,}: "
                "a decompression bomb? (not scanned)"
            )
        together = MemberBatch(ctx.matcher, ctx.report)
        try:
            for info in infos:
                # Not info.is_dir(): an IndexError on an empty name (a crafted zip), which
                # ended the whole scan and hid every other finding.
                if info.filename.endswith("/"):
                    continue
                member_where = (*where, info.filename)
                if info.flag_bits & 0x1:
                    ctx.report.add_issue(member_where, "zip: encrypted member: not scanned")
                    continue
                try:
                    handle = _open_member(archive, source, info)
                    if isinstance(handle, _Member) and info.file_size <= _HELD:
                        # Small and plain (most members): searched with its neighbours.
                        data = handle.read_all()
                        if sniff(data[:_HEAD]) is None:
                            ctx.spend(len(data))  # what a member's reader would have counted
                            together.add(member_where, data)
                            continue
                        handle = io.BytesIO(data)
                    with handle:
                        scan_object(_Counted(handle, ctx), member_where, ctx, depth + 1)
                except ExpansionLimit:
                    raise
                except _DAMAGED as error:
                    ctx.report.add_issue(
                        member_where, f"zip: cannot be read ({type(error).__name__}): not scanned"
                    )
        finally:
            # Also before a bomb or an error ends the file: what was read is reported.
            together.flush()


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
# Compressed bytes read at a time from a zip member: output per call stays below CHUNK anyway.
_RAW_READ = 1 << 20


def _open_member(archive: zipfile.ZipFile, source: IO[bytes], info: zipfile.ZipInfo) -> Any:
    """A reader of one member: stored, deflated, bzip2 and LZMA ones straight from ``source``,
    others (zipfile then says what fails) by zipfile.

    zipfile's reader inflates with the standard zlib and costs several Python calls per member
    and per read; most members of a wheel or a jar are small and deflated. Its bzip2 and LZMA
    readers decompress each chunk of input whole, without a bound: 2.4 KB of bzip2 in a zip
    member declaring 100 bytes came out as 3.2 GB at once, a memory bomb no budget could stop.
    """
    if info.compress_type not in _MEMBER_METHODS or info.flag_bits & (
        0x1 | 0x20 | 0x40  # encrypted, patched data, strong encryption: zipfile says what fails
    ):
        return archive.open(info)
    return _Member(source, info)


_MEMBER_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)


class _BoundedDecompressor:
    """bz2's or lzma's decompressor behind zlib's interface as :class:`_Member` uses it: output
    bounded per call, input it has not used yet kept (``unconsumed_tail`` is always empty: these
    decompressors keep it themselves, and ask for more with ``needs_input``)."""

    unconsumed_tail = b""

    def __init__(self, decompressor: Any) -> None:
        self._d = decompressor

    @property
    def eof(self) -> bool:
        """The stream has ended."""
        return bool(self._d.eof)

    def wants_input(self) -> bool:
        """More compressed bytes are needed before more output can come."""
        return bool(self._d.needs_input)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        """At most ``max_length`` bytes of output."""
        out: bytes = self._d.decompress(data, max_length)
        return out


def _lzma_member(raw: Any) -> _BoundedDecompressor:
    """Zip's LZMA: a 4-byte header (version, size of the properties), the 5 properties, then
    raw LZMA1 data (APPNOTE 5.8.8); the properties decoded as the LZMA SDK does."""
    header = raw.read(4)
    if len(header) != 4:
        raise zipfile.BadZipFile("truncated LZMA header")
    props = raw.read(int.from_bytes(header[2:4], "little"))
    if len(props) != 5 or props[0] >= 9 * 5 * 5:
        raise zipfile.BadZipFile("bad LZMA properties")
    pb, rest = divmod(props[0], 45)
    lp, lc = divmod(rest, 9)
    lzma1 = {
        "id": lzma.FILTER_LZMA1,
        "dict_size": int.from_bytes(props[1:5], "little"),
        "lc": lc,
        "lp": lp,
        "pb": pb,
    }
    return _BoundedDecompressor(lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1]))


class _Member:
    """A stored or deflated zip member, read, inflated and CRC-checked as zipfile would."""

    def __init__(self, source: IO[bytes], info: zipfile.ZipInfo) -> None:
        source.seek(info.header_offset)
        header = source.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size:
            raise zipfile.BadZipFile("truncated local file header")
        magic, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        if magic != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad magic number for file header")
        name = source.read(name_length)
        # The same check as zipfile's: data under another name than the directory's is damage.
        decoded = name.decode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace")
        if decoded != info.orig_filename:
            raise zipfile.BadZipFile("file name in directory and in header differ")
        source.seek(extra_length, 1)
        self._raw = _Limited(source, info.compress_size)
        self._inflate: Any = None
        if info.compress_type == zipfile.ZIP_DEFLATED:
            self._inflate = _ZLIB.decompressobj(-15)
        elif info.compress_type == zipfile.ZIP_BZIP2:
            self._inflate = _BoundedDecompressor(bz2.BZ2Decompressor())
        elif info.compress_type == zipfile.ZIP_LZMA:
            self._inflate = _lzma_member(self._raw)
        self._left = info.file_size
        self._crc = 0
        self._expected_crc = info.CRC

    def __enter__(self) -> _Member:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def read_all(self) -> bytes:
        """The whole member (its declared size: the caller keeps that small)."""
        parts = []
        while self._left > 0:
            parts.append(self.read(self._left))
        return b"".join(parts)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (never more than the member's declared size in all)."""
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        inflate = self._inflate
        if inflate is None:
            data: bytes = self._raw.read(want)
            ended = not data
        else:
            data = b""
            while not data and not inflate.eof:
                if isinstance(inflate, _BoundedDecompressor) and not inflate.wants_input():
                    pending = b""  # it still holds input: no more until it asks
                else:
                    pending = inflate.unconsumed_tail or self._raw.read(_RAW_READ)
                    if not pending and isinstance(inflate, _BoundedDecompressor):
                        break  # truncated: the CRC or size check below says so
                # With no input left this still returns what the inflater holds back.
                data = inflate.decompress(pending, want)
                if not data and not pending:
                    break
            ended = inflate.eof
        self._left -= len(data)
        self._crc = _ZLIB.crc32(data, self._crc)
        if (ended or self._left == 0) and self._crc != self._expected_crc:
            # Also when the deflate stream ends early or goes on past the declared size.
            raise zipfile.BadZipFile(f"bad CRC-32 for file {self._expected_crc:#x}")
        if not data and self._left > 0:
            raise EOFError("zip member ended before its declared size")
        return data


class _Limited:
    def __init__(self, raw: Any, n: int) -> None:
        self._raw = raw
        self.left = n

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = self.left if n is None or n < 0 else min(n, self.left)
        data: bytes = self._raw.read(want)
        self.left -= len(data)
        return data


def limited(raw: Any, n: int) -> _Limited:
    """A reader giving at most ``n`` bytes of ``raw``; ``.left`` is what it did not give."""
    return _Limited(raw, n)
