"""Where zstd frames end: a walk of the frame format beside the decompressor.

The ``zstandard`` package's stream reader ends quietly when its input stops inside a frame, so
a ``.zst`` file cut short scanned clean, its missing part unread and unreported (gzip's reader
raises EOFError: damage, exit 10). :class:`FrameWalk` reads the same bytes as they pass and
knows, at the end of the input, whether the last frame was whole. It reads headers only (the
format of RFC 8878, section 3.1): block contents are skipped by their declared sizes, so it
costs next to nothing beside the decompression.
"""

from __future__ import annotations

__all__ = ["FrameWalk", "WalkedReader"]

from collections.abc import Callable
from typing import Any

_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK, _SKIPPABLE = 0xFFFFFFF0, 0x184D2A50
_DICT_ID_SIZES = (0, 1, 2, 4)
_CONTENT_SIZE_SIZES = (0, 2, 4, 8)  # flag 0 with Single_Segment_flag set: 1 byte
_RLE, _RESERVED = 1, 3


class FrameWalk:
    """Fed the compressed bytes in order; says whether they end between whole frames."""

    def __init__(self) -> None:
        self.frames = 0
        self.problem = ""
        self._buffer = bytearray()
        self._want = 4
        self._step: Callable[[bytes], None] = self._magic
        self._skip = 0
        self._checksum = False

    @property
    def complete(self) -> bool:
        """True when at least one frame was read and the input so far ends after a whole one."""
        return (
            not self.problem
            and self.frames > 0
            and self._step == self._magic
            and not self._buffer
            and not self._skip
        )

    def feed(self, data: bytes) -> None:
        """Walk over ``data``, the next bytes of the compressed input."""
        view = memoryview(data)
        at, end = 0, len(view)
        while at < end and not self.problem:
            if self._skip:
                step = min(self._skip, end - at)
                self._skip -= step
                at += step
                continue
            take = min(self._want - len(self._buffer), end - at)
            self._buffer += view[at : at + take]
            at += take
            if len(self._buffer) == self._want:
                got = bytes(self._buffer)
                self._buffer.clear()
                self._step(got)

    def _expect(self, size: int, step: Callable[[bytes], None]) -> None:
        self._want, self._step = size, step

    def _magic(self, got: bytes) -> None:
        magic = int.from_bytes(got, "little")
        if magic == _MAGIC:
            self._expect(1, self._descriptor)
        elif magic & _SKIPPABLE_MASK == _SKIPPABLE:
            self._expect(4, self._skippable)
        else:
            self.problem = "data after the last frame that is no zstd frame"

    def _skippable(self, got: bytes) -> None:
        self._skip = int.from_bytes(got, "little")
        self.frames += 1
        self._expect(4, self._magic)

    def _descriptor(self, got: bytes) -> None:
        descriptor = got[0]
        single_segment = bool(descriptor & 0x20)
        if descriptor & 0x08:
            self.problem = "a frame header with its reserved bit set"
            return
        self._checksum = bool(descriptor & 0x04)
        content_size = _CONTENT_SIZE_SIZES[descriptor >> 6] or (1 if single_segment else 0)
        rest = (0 if single_segment else 1) + _DICT_ID_SIZES[descriptor & 0x03] + content_size
        if rest:
            self._expect(rest, self._header_rest)
        else:
            self._expect(3, self._block)

    def _header_rest(self, _got: bytes) -> None:
        self._expect(3, self._block)

    def _block(self, got: bytes) -> None:
        header = int.from_bytes(got, "little")
        kind = (header >> 1) & 0x03
        if kind == _RESERVED:
            self.problem = "a block of the reserved type"
            return
        self._skip = 1 if kind == _RLE else header >> 3
        if not header & 0x01:  # not the last block
            self._expect(3, self._block)
        elif self._checksum:
            self._expect(4, self._frame_end)
        else:
            self._frame_end(b"")

    def _frame_end(self, _got: bytes) -> None:
        self.frames += 1
        self._expect(4, self._magic)


class WalkedReader:
    """A binary stream that shows every byte read from it to a :class:`FrameWalk`."""

    def __init__(self, raw: Any, walk: FrameWalk) -> None:
        self._raw = raw
        self.walk = walk
        self.at_end = False

    def read(self, n: int = -1) -> bytes:
        """Read from the wrapped stream, walking what passes."""
        data: bytes = self._raw.read(n)
        if data:
            self.walk.feed(data)
        elif n != 0:
            self.at_end = True
        return data

    def drain(self, chunk: int = 1 << 16) -> None:
        """Read (and walk) what the decompressor left unread, to the end of the input."""
        while not self.at_end:
            self.read(chunk)

    def close(self) -> None:
        """Close the wrapped stream."""
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()
