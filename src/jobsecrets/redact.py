"""The mask list and the streaming redactor.

A secret is masked not only as itself but in every form a program is likely to print it in
(:func:`mask_forms`). :class:`MaskList` collects those forms for every value of a job and
announces them to the CI platform (:meth:`MaskList.github_commands`); :class:`StreamRedactor`
replaces them in a byte stream that arrives in arbitrary chunks.

Limits, all on purpose:

* values shorter than :data:`MIN_SECRET_LENGTH` bytes are not masked at all: masking ``"1"``
  would destroy every log without protecting anything (they are reported by name instead);
* lines of a multi-line value shorter than ``min_line_length`` are not masked on their own;
* base64 fragments taken from inside a longer base64 stream (offsets 1 and 2, and the stable
  part at offset 0) are masked only when at least :data:`MIN_BASE64_FRAGMENT` characters long;
* a secret that itself contains the replacement string can be re-formed by the replacement
  and its neighbours; do not choose a replacement that occurs in a secret.

Nothing in this module ever prints, logs or puts a value in an exception message or ``repr``.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MIN_LINE_LENGTH",
    "DEFAULT_REPLACEMENT",
    "MIN_BASE64_FRAGMENT",
    "MIN_SECRET_LENGTH",
    "MaskList",
    "PatternSet",
    "StreamRedactor",
    "labelled_mask_forms",
    "mask_forms",
    "mask_remembered",
]

import base64
import re
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import chain
from operator import itemgetter
from typing import NamedTuple, TypeAlias

from . import maskforms
from .hexdumps import TRIGGER_KEYS, DumpMasker
from .keysearch import KeySearch, rare_offsets

#: Values shorter than this (in bytes) are not masked; :class:`MaskList` reports them by name.
MIN_SECRET_LENGTH = 3
#: Lines of a multi-line value shorter than this are not masked on their own.
DEFAULT_MIN_LINE_LENGTH = 4
#: Base64 fragments cut out of a longer stream must have at least this many characters
#: (36 bits): shorter ones would match unrelated base64 text all the time.
MIN_BASE64_FRAGMENT = maskforms.MIN_BASE64_FRAGMENT
#: What a masked occurrence is replaced with.
DEFAULT_REPLACEMENT = b"***"

Buffer: TypeAlias = bytes | bytearray | memoryview


def _encoded_groups(
    value: bytes, texts: maskforms.Base64Texts | None = None
) -> list[tuple[str, set[bytes]]]:
    """Every encoding of one value, by family (the labels ``jobsecrets scan`` reports): base64
    (also wrapped), hex (and so hex dumps), percent, JSON, shell. ``texts``: the value's
    :func:`jobsecrets.maskforms.base64_texts`, when the caller has them."""
    hexed = value.hex().encode("ascii")
    return [
        ("base64", maskforms.base64_forms(value, texts)),
        # Double encoding (a base64 value stored base64 again, a docker auth inside a config blob).
        ("base64 of base64", maskforms.base64_forms(base64.b64encode(value))),
        ("hex", {hexed, hexed.upper()}),
        ("URL-encoded", maskforms.percent_forms(value)),
        ("JSON-escaped", maskforms.json_forms(value)),
        ("shell-quoted", maskforms.shell_forms(value)),
    ]


def _encoded_forms(value: bytes) -> set[bytes]:
    """Every encoding of one value: the union of :func:`_encoded_groups`."""
    forms: set[bytes] = set()
    for _label, group in _encoded_groups(value):
        forms |= group
    return forms


def mask_forms(value: bytes, *, min_line_length: int = DEFAULT_MIN_LINE_LENGTH) -> set[bytes]:
    """Every byte pattern to mask for one secret ``value``; empty when the value is too short.

    The forms are: the value; for a multi-line value each *distinctive* line
    (:func:`jobsecrets.maskforms.distinctive`), as it is and trimmed, and the value with CRLF
    line ends (a pseudo-terminal turns ``\\n`` into ``\\r\\n``); for a JSON document, each
    distinctive string leaf with all its encodings; base64 (standard and URL-safe, padded and
    unpadded, at any offset of a longer stream), also of the base64 (wrapped base64 is found by
    :class:`PatternSet` from :func:`jobsecrets.maskforms.wrap_sources`); hex in both cases;
    percent-encoding in
    every common dialect; the inside of a JSON string in every common serializer's dialect; the
    value as bash, zsh, dash and busybox re-quote it (xtrace, ``declare -p``, ``printf %q``).
    """
    return _mask_forms(value, min_line_length, None)


def _mask_forms(
    value: bytes, min_line_length: int, groups: list[tuple[str, set[bytes]]] | None
) -> set[bytes]:
    """:func:`mask_forms`, with the value's own :func:`_encoded_groups` when the caller has them."""
    if len(value) < MIN_SECRET_LENGTH:
        return set()
    forms = {value}
    if b"\n" in value or b"\r" in value:
        forms |= maskforms.line_forms(value, min_line_length)
        crlf = value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        forms.add(crlf)
        # What a pty really prints: ONLCR adds a \r before every \n, also one after a \r, so a
        # value stored with CRLF line ends shows as \r\r\n (its short lines are not masked alone).
        forms.add(value.replace(b"\n", b"\r\n"))
    for key, leaf in maskforms.json_leaves(value):
        if leaf != value and maskforms.distinctive_leaf(key, leaf, min_line_length):
            forms.add(leaf)
            forms |= _encoded_forms(leaf)
    for _label, group in groups if groups is not None else _encoded_groups(value):
        forms |= group
    for variant in maskforms.rewritten_forms(value):
        forms.add(variant)
        forms |= maskforms.json_forms(variant)
    if b"\n" in value or b"\r" in value or b"\\" in value:  # (escapes can print line breaks)
        forms = _without_end_breaks(forms)
    # Nearly always all long enough: one C-level min() instead of a comprehension (~3 ms for
    # 1,000 values).
    if min(map(len, forms)) >= MIN_SECRET_LENGTH:
        return forms
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


_BREAKS = (b"\n", b"\r")


def _without_end_breaks(forms: set[bytes]) -> set[bytes]:
    """``forms``, each without the line breaks at either of its ends.

    A file's value ends with a line break (a PEM key, a kubeconfig), which belongs to the line,
    not to the secret: masked with it, the next line of the log was joined to the replacement
    ("lalalala\\n***lalalala" where buildkite's own test case keeps "[REDACTED]\\nlalalala").
    """
    out = set()
    for form in forms:
        if form.endswith(_BREAKS) or form.startswith(_BREAKS):
            inner = form.strip(b"\r\n")
            # Kept whole when too little is left to mask alone ("ab\n"): masked at all, then.
            form = inner if len(inner) >= MIN_SECRET_LENGTH else form
        out.add(form)
    return out


def labelled_mask_forms(
    value: bytes, *, min_line_length: int = DEFAULT_MIN_LINE_LENGTH
) -> list[tuple[bytes, str]]:
    """Every form :func:`mask_forms` returns for ``value``, each with a label naming its encoding.

    For ``jobsecrets scan``, which reports *which* form it found (never the form itself). Built on
    :func:`mask_forms`, so a form added there is searched for at once; until it is given a label
    here it is reported as ``"masked form"``. Longest first, then bytewise, so the order is stable.
    """
    # The value's own encodings once, for the forms and for their labels (computing them twice
    # cost 10-20 ms of a scan's matcher for 1,000 values: 56-65 ms against 44-46 ms).
    encoded = _encoded_groups(value)
    forms = _mask_forms(value, min_line_length, encoded)
    crlf = {value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), value.replace(b"\n", b"\r\n")}
    crlf |= _without_end_breaks(crlf)
    leaves = {leaf for _key, leaf in maskforms.json_leaves(value)}
    # First group that holds a form names it: a value without special characters is its own
    # URL and JSON form, and is reported as the value.
    groups: list[tuple[str, set[bytes]]] = [
        ("value", {value, value.strip(b"\r\n")}),
        ("line of the value", maskforms.line_forms(value, min_line_length)),
        ("value with CRLF line ends", crlf),
        ("field of the JSON value", leaves),
        *encoded,
    ]
    labelled = []
    for form in sorted(forms, key=lambda f: (-len(f), f)):
        label = next((name for name, group in groups if form in group), "masked form")
        labelled.append((form, label))
    return labelled


# Patterns are found by a key of _KEY bytes each (jobsecrets.keysearch), then checked whole. The
# key is the pattern's window least likely to start in ordinary output (keysearch.rare_offset),
# so the search stays near its start state on ordinary text: 1.5-2x faster than keys taken at the
# start of each pattern. For 1,000 secrets (~24,000 patterns with the wrapped-text anchors, ~15,000
# keys) the DFA builds in ~55 ms with ~22 MiB, where an automaton over the whole patterns (~0.9 MB)
# scans ~115 MB/s and its DFA takes seconds. Chance candidates stay rare (on 30 MB of log lines:
# ~3,600 with 5 bytes, ~250 with 6, ~58,000 with 4), and each costs one ``startswith``.
_KEY = 5
# Prefixes of this many bytes tell most chance heads from a pattern's start (_is_proper_prefix).
_LONG_HEAD = 2 * _KEY
# Beyond this many bytes of keys (~1,500 secrets) the key search is the contiguous NFA: the DFA
# takes ~300 bytes per key byte, and `run` with 5,000 secrets must stay well under 150 MiB (with
# the DFA the matcher alone took 150 MiB there; with the NFA 74 MiB, searching about half as fast).
_DFA_MAX_KEY_BYTES = 120_000
# The DFA is built once a stream has searched this many bytes; before, the contiguous NFA over
# the same keys (keysearch.KeySearch, dfa_after). Measured for 1,000 secrets on this repo's
# 2-core VM: the NFA builds in 14-21 ms against 43-67 ms and searches 200-210 MB/s a core
# against 366-381; so the DFA saves ~2.2 ms per MB a core and pays for itself after ~25 MB.
# Most jobs print far less and never build it; a big log builds it early enough to gain.
_DFA_AFTER = 8 << 20


# hold_start looks for the patterns' heads in a chunk's last maxlen bytes with a loop over those
# positions (~0.1 us each) until it has looked at this many, then builds an NFA over the heads
# (~20 ms for 1,000 secrets): big chunks never need it, a stream of small ones (a pty hands out
# 4 KiB) pays for it once the loop has cost as much.
_HEAD_LOOP_BUDGET = 200_000

# Following wrapped texts from their anchors costs one Python step per byte walked. A text of long
# runs (the base64 of a value of zero bytes is "AAAA...") has the same anchor at every 16th
# offset and finds it at every position of a run in the output, each a different alignment: a
# chunk may walk at most this many steps (plus 16 per byte of it), then every run of text bytes
# that holds an anchor found and is not covered yet is masked whole. Ordinary output never
# comes near it (a 16 KB value of zero bytes printed as base64 took seconds before the limit).
_FOLLOW_BUDGET = 1 << 16
# How many line break bytes a walk crosses between two characters of a wrapped text, either way:
# "\n", "\r\n", and "\r\r\n", what a pseudo-terminal (ONLCR) makes of the "\r\n" of a tool
# that writes CRLF (certutil -encode, a PEM file with CRLF line ends printed by cat). Nothing
# wraps base64 with more.
_MAX_BREAKS = 3
# bytes.translate table: line breaks to 1 ("covered"), every other byte to 0.
_BREAKS_COVERED = bytes(1 if b in (10, 13) else 0 for b in range(256))

# A wrapped text whose first line holds fewer than WRAP_ANCHOR of its characters has no anchor
# there: it is found from the next line's anchor and followed back over the line break, so its
# first characters must still be held when a read ends after that break (hold_start). Such a
# first line is the end of a wrapped line of 31 columns or more (the widths masking.md promises):
# at most 30 characters of the next line, 1-3 line break bytes, then a run of 31 base64
# characters. Found with bytes.rstrip (C, ~0.3 us a read); ordinary lines end in a word or
# punctuation, not in 31 base64 characters, so nothing of them is held.
_WRAP_LINE = 2 * maskforms.WRAP_ANCHOR - 1
_WRAP_NEXT = _WRAP_LINE - 1
_WRAP_TAIL = _WRAP_NEXT + _MAX_BREAKS + _WRAP_LINE
_BASE64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"


class _Heads(NamedTuple):
    """The patterns' first ``_KEY`` bytes (their *heads*), for :meth:`PatternSet.hold_start`."""

    #: Every distinct head of a pattern longer than ``_KEY``, in the order of the NFA's keys.
    heads: dict[bytes, None]
    #: ``short[k]``: every proper prefix of ``k`` bytes of any pattern (``k`` < ``_KEY``).
    short: tuple[set[bytes], ...]


class PatternSet:
    """A compiled set of patterns, shared by every :class:`StreamRedactor` using it.

    Immutable but for indexes :meth:`hold_start` builds on first use (built twice at worst if
    two threads race, never wrong).

    Holds the key search that finds every occurrence of every pattern (overlapping ones too,
    so secrets that overlap each other are all found), and the data needed to find how much of
    a stream's end may still become a match.
    """

    __slots__ = (
        "_anchors",
        "_by_head",
        "_first_anchor",
        "_head_loop",
        "_head_search",
        "_heads",
        "_keys",
        "_long_heads",
        "_offsets",
        "_patterns",
        "_sources",
        "_token",
        "_wrap_starts",
        "back_reach",
        "maxlen",
    )

    def __init__(self, patterns: Iterable[bytes], wrapped: Iterable[bytes] = ()) -> None:
        """``patterns`` are found as they are; each text of ``wrapped`` also across line breaks.

        A wrapped text is found by its anchors (its slices of ``WRAP_ANCHOR`` bytes, one every
        ``WRAP_ANCHOR``): a line of at least ``2*WRAP_ANCHOR-1`` of its bytes holds one whole.
        From an anchor the match is followed both ways, over ``\\r`` and ``\\n``, as long as
        the output spells the text, so every line of it is masked whatever the wrap width.
        """
        self._sources: tuple[bytes, ...] = tuple(dict.fromkeys(map(bytes, wrapped)))
        step = maskforms.WRAP_ANCHOR
        # Insertion order, not sorted: nothing on the path of every chunk needs an order, and
        # sorting ~24,000 patterns took ~15 ms of the build. (bytes() of a bytes is itself.)
        unique = dict.fromkeys(map(bytes, patterns))
        unique.pop(b"", None)
        # The anchors after the forms, in order; one that is also a form (rare) keeps the form's
        # place. Which source and offset each anchor stands for is found on first use.
        self._first_anchor = len(unique)
        unique.update(
            dict.fromkeys(
                text[offset : offset + step]
                for text in self._sources
                for offset in range(0, len(text) - step + 1, step)
            )
        )
        self._patterns: tuple[bytes, ...] = tuple(unique)
        #: Length of the longest pattern, 0 when there is none.
        self.maxlen: int = max(map(len, self._patterns), default=0)
        #: How far before an anchor a walk back can reach (each of a text's characters with the
        #: line break bytes before it, see :meth:`_back`); 0 without wrapped texts.
        self.back_reach: int = (1 + _MAX_BREAKS) * max(map(len, self._sources), default=0)
        #: Pattern index (in ``_patterns``) -> (source, offset) of each anchor it is; see
        #: :meth:`_anchor_places`.
        self._anchors: dict[int, list[tuple[int, int]]] | None = None
        #: A run of the bytes wrapped texts are made of, line breaks included (built with
        #: ``_anchors``): no walk from an anchor leaves the run around it.
        self._token: re.Pattern[bytes] | None = None
        #: Where each pattern's key starts in it.
        self._offsets: list[int] = rare_offsets(self._patterns, _KEY)
        # One key per pattern, in pattern order, so a match names its pattern: patterns that
        # share a key share the automaton's states (over ~24,000 keys, ~16,000 of them distinct,
        # the DFA builds ~3 ms slower than over the distinct ones), and no table from keys to
        # their patterns has to be built (~15 ms of Python for 1,000 secrets).
        # After them, the keys of a hex dump's first address (hexdumps.TRIGGER_KEYS): the same
        # pass over the output tells the redactor whether its hex-dump stage has work to do,
        # instead of a second search of every chunk (~25% of the CPU time on log text).
        self._keys = KeySearch(
            [p[at : at + _KEY] for p, at in zip(self._patterns, self._offsets, strict=True)]
            + list(TRIGGER_KEYS),
            max_dfa_bytes=_DFA_MAX_KEY_BYTES,
            dfa_after=_DFA_AFTER,
            double_array=True,
        )
        # What hold_start needs, built the first time it is asked (see _prefix_index).
        self._heads: _Heads | None = None
        self._by_head: dict[bytes, list[bytes]] | None = None
        #: Every pattern's first ``_LONG_HEAD`` bytes (all of it when shorter).
        self._long_heads: set[bytes] | None = None
        self._head_search: KeySearch | None = None
        self._head_loop = 0
        #: The wrapped texts, sorted, for :meth:`_wrapped_start` (built on first use).
        self._wrap_starts: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self._patterns)

    def __repr__(self) -> str:
        # Counts only: the patterns are secrets.
        return f"<PatternSet {len(self._patterns)} patterns>"

    def _anchor_places(self) -> dict[int, list[tuple[int, int]]]:
        """Pattern index -> ``(source, offset)`` of each wrapped-text anchor that pattern is.

        Built the first time a chunk has a match to check (~5 ms for 1,000 secrets): most runs'
        output holds no secret, and the matcher is ready sooner without it.
        """
        if self._anchors is None:
            step = maskforms.WRAP_ANCHOR
            patterns, first = self._patterns, self._first_anchor
            index_of = dict(zip(patterns[first:], range(first, len(patterns)), strict=True))
            every: dict[bytes, int] | None = None
            anchors: dict[int, list[tuple[int, int]]] = {}
            for source, text in enumerate(self._sources):
                for offset in range(0, len(text) - step + 1, step):
                    anchor = text[offset : offset + step]
                    index = index_of.get(anchor)
                    if index is None:
                        # An anchor that is also a form: the form's index, from a table of every
                        # pattern made once (values chosen to make many such anchors must not
                        # make this a search of all patterns per anchor).
                        if every is None:
                            every = dict(zip(patterns, range(len(patterns)), strict=True))
                        index = every[anchor]
                    anchors.setdefault(index, []).append((source, offset))
            alphabet = sorted(set(b"".join(self._sources)) | {10, 13})
            self._token = re.compile(
                b"[" + b"".join(re.escape(bytes([c])) for c in alphabet) + b"]*"
            )
            self._anchors = anchors
        return self._anchors

    def _prefix_index(self) -> _Heads:
        """The heads and short prefixes :meth:`hold_start` checks, built the first time it runs.

        Not with the matcher (~10 ms for 1,000 secrets): the matcher is ready sooner, and a run
        whose child prints nothing never builds them.
        """
        if self._heads is None:
            width = _KEY
            # Sliced by map and itemgetter: no Python step per pattern (2.6 ms against 3.5 for
            # 1,000 secrets' ~24,000 patterns).
            heads = dict.fromkeys(map(itemgetter(slice(width)), self._patterns))
            shortest = min(map(len, self._patterns), default=0)
            if shortest <= width:  # rare: forms of 3-5 bytes, which are no head of a longer one
                heads = dict.fromkeys(p[:width] for p in self._patterns if len(p) > width)
            # Each set from the next longer one: the shorter the prefixes, the fewer distinct.
            short: list[set[bytes]] = [set() for _ in range(width)]
            short[width - 1] = set(map(itemgetter(slice(width - 1)), heads))
            for k in range(width - 2, 0, -1):
                short[k] = set(map(itemgetter(slice(k)), short[k + 1]))
            if shortest <= width:
                for pattern in self._patterns:
                    if len(pattern) <= width:
                        for k in range(1, len(pattern)):
                            short[k].add(pattern[:k])
            self._heads = _Heads(heads, tuple(short))
        return self._heads

    def _is_proper_prefix(self, tail: bytes) -> bool:
        """Whether ``tail`` is a prefix of some pattern, and shorter than that pattern."""
        n = len(tail)
        index = self._prefix_index()
        if n < _KEY:
            return tail in index.short[n]
        if n == _KEY:
            return tail in index.heads
        if n >= _LONG_HEAD:
            # Most heads found at a chunk's end are chance ones (a hex id that starts like a
            # secret's hex form): their next bytes already differ from every pattern's first
            # _LONG_HEAD, a set (~3 ms for 1,000 secrets) that spares the table of patterns by
            # head below (~8 ms) most runs.
            long = self._long_heads
            if long is None:
                long = self._long_heads = set(map(itemgetter(slice(_LONG_HEAD)), self._patterns))
            if tail[:_LONG_HEAD] not in long:
                return False
        by_head = self._by_head
        if by_head is None:
            # Only when a head is found at a chunk's end (a secret cut by a read, or a pattern
            # that starts like ordinary text): most runs never need it.
            by_head = {}
            for pattern in self._patterns:
                if len(pattern) > _KEY:
                    by_head.setdefault(pattern[:_KEY], []).append(pattern)
            self._by_head = by_head
        return any(
            len(pattern) > n and pattern.startswith(tail)
            for pattern in by_head.get(tail[:_KEY], ())
        )

    def _head_starts(self, tail: bytes) -> list[int]:
        """Sorted starts of the heads that lie wholly in ``tail`` (see ``_HEAD_LOOP_BUDGET``)."""
        heads = self._prefix_index().heads
        if self._head_search is None and self._head_loop < _HEAD_LOOP_BUDGET:
            last = len(tail) - _KEY
            self._head_loop += last + 1
            return [at for at in range(last + 1) if tail[at : at + _KEY] in heads]
        if self._head_search is None:
            self._head_search = KeySearch(list(heads), max_dfa_bytes=0, double_array=True)
        return sorted({start for _, start, _ in self._head_search.find(tail)})

    @property
    def wraps(self) -> bool:
        """Whether any text is also found wrapped (then :meth:`hold_start` takes ``before``)."""
        return bool(self._sources)

    def hold_start(self, data: Buffer, before: bytes = b"") -> int:
        """Start of the longest suffix of ``data`` that is a proper prefix of some pattern, or
        the start of a wrapped text cut by a line break before its first anchor.

        Returns ``len(data)`` when no suffix can still grow into a match: everything may be
        emitted. Only this suffix has to be held back, so interactive output is not delayed.
        ``before``: the last bytes of the stream before ``data`` (already emitted), which tell
        whether a line that starts before ``data`` is long enough to be a wrapped line.
        """
        start = self._prefix_start(data)
        if self._sources:
            return min(start, self._wrapped_start(data, before))
        return start

    def _prefix_start(self, data: Buffer) -> int:
        """Start of the longest suffix of ``data`` that is a proper prefix of some pattern."""
        n = len(data)
        lo = max(0, n - self.maxlen + 1)
        if n - lo > _KEY:
            # A suffix longer than _KEY bytes that is a proper prefix of a pattern starts with
            # that pattern's first _KEY bytes: only where one of those starts can it start.
            tail = bytes(data[lo:])
            for start in self._head_starts(tail[:-1]):
                if self._is_proper_prefix(tail[start:]):
                    return lo + start
        for start in range(max(lo, n - _KEY), n):
            if self._is_proper_prefix(bytes(data[start:])):
                return start
        return n

    def _wrapped_start(self, data: Buffer, before: bytes = b"") -> int:
        """Where a wrapped text starts whose first line, at the end of a wrapped line, holds
        fewer characters than an anchor, when ``data`` ends after its line break (and perhaps
        part of its next line, still without a whole anchor); ``len(data)`` when none does.

        Its next line's anchor will find it and follow it back over the line break
        (:meth:`_back`): those first characters must still be there then, or they were emitted
        unmasked while the same output read whole masks them (a writer that prints line by line).
        """
        n = len(data)
        tail = bytes(data[max(0, n - _WRAP_TAIL) :])
        if n < _WRAP_TAIL and before:
            # The line may have started in an earlier read (cut in the middle of a line).
            tail = before[len(tail) - _WRAP_TAIL :] + tail
        line = tail.rstrip(_BASE64_CHARS)  # up to the next line's characters so far
        if len(tail) - len(line) > _WRAP_NEXT:
            return n
        run = line.rstrip(b"\r\n")
        if (
            not 0 < len(line) - len(run) <= _MAX_BREAKS
            or len(run) - len(run.rstrip(_BASE64_CHARS)) < _WRAP_LINE
        ):
            return n
        rest = tail[len(line) :]
        run_at = n - len(tail) + len(run) - _WRAP_LINE
        run = run[-_WRAP_LINE:]
        starts = self._wrap_starts
        if starts is None:
            starts = self._wrap_starts = sorted(self._sources)
        # Longest first: the first text found is the earliest start. A text with more of its
        # characters on the first line has an anchor there, found and held by the walk itself.
        for m in range(maskforms.WRAP_ANCHOR - 1, 0, -1):
            key = run[-m:] + rest
            at = bisect_left(starts, key)
            if at < len(starts) and starts[at].startswith(key):
                # (Never before data: a text's first characters without their line break are
                # a prefix of its first anchor, held by _prefix_start.)
                return max(0, run_at + _WRAP_LINE - m)
        return n

    def _occurrences(
        self, data: bytes | bytearray, triggers: list[int] | None = None
    ) -> list[tuple[int, int, int]]:
        """``(pattern index, start, end)`` of every occurrence in ``data``, sorted by start.

        ``triggers``, when given, receives where a key of a hex dump's first address was found.
        """
        patterns, offsets = self._patterns, self._offsets
        hits = self._keys.find(data)
        count = len(patterns)
        if triggers is not None:
            triggers.extend(at for index, at, _ in hits if index >= count)
        found = [
            (index, start, start + len(patterns[index]))
            for index, at, _ in hits
            if index < count
            and (start := at - offsets[index]) >= 0
            and data.startswith(patterns[index], start)
        ]
        found.sort(key=lambda m: m[1])
        return found

    def _follow(
        self, data: Buffer, start: int, source: int, offset: int, walked: set[tuple[int, int]]
    ) -> tuple[int, int, bool, int]:
        """The extent of wrapped text ``source`` around its anchor at ``data[start:]``.

        Returns ``(lo, hi, open, steps)``: ``open`` when the text runs on to the end of ``data``
        and more of it may still arrive; ``steps``, how many bytes the walk looked at. Adds to
        ``walked`` every ``(data position, text offset)`` of an anchor the walk passed through:
        a walk from there would be this very walk (the same bytes, the same line breaks).
        """
        text = self._sources[source]
        step = maskforms.WRAP_ANCHOR
        n = len(data)
        walked.add((start, offset))
        j, k = start + step, offset + step
        hi = j
        while k < len(text):
            if j >= n:
                lo, back = self._back(data, start, text, offset, walked)
                return lo, hi, True, j - start + back
            byte = data[j]
            if byte == text[k]:
                if k % step == 0:
                    walked.add((j, k))
                j += 1
                k += 1
                hi = j
            elif byte in (10, 13) and j - hi < _MAX_BREAKS:
                j += 1
            else:
                break
        lo, back = self._back(data, start, text, offset, walked)
        return lo, hi, False, j - start + back

    @staticmethod
    def _back(
        data: Buffer, start: int, text: bytes, offset: int, walked: set[tuple[int, int]]
    ) -> tuple[int, int]:
        """Where the text matched from ``start`` back begins, and how many bytes that took."""
        step = maskforms.WRAP_ANCHOR
        j, k = start - 1, offset - 1
        lo = start
        while k >= 0 and j >= 0:
            byte = data[j]
            if byte == text[k]:
                if k % step == 0:
                    walked.add((j, k))
                lo = j
                j -= 1
                k -= 1
            elif byte in (10, 13) and lo - j <= _MAX_BREAKS:
                j -= 1
            else:
                break
        return lo, start - j

    def _follow_wrapped(
        self,
        data: bytes | bytearray,
        matches: list[tuple[int, int, int]],
        found: list[tuple[int, int]],
        extents: list[tuple[int, int]] | None = None,
    ) -> int:
        """Add to ``found`` the extent of every wrapped text around its anchors in ``matches``,
        one span per line; to ``extents`` (when given) each extent whole.

        Returns where a wrapped text that may go on in the next chunk starts (``len(data)``: none).
        Every anchor found is followed, unless an earlier walk passed through it (the same walk)
        or the run of text bytes around it is covered already: a text with long runs has the
        same anchor at many offsets, and the output at many positions, each a walk of its own
        that may reach further than the others (hypothesis found one). Past the step budget
        (``_FOLLOW_BUDGET``) a run still uncovered is masked whole instead of walked.
        """
        n = len(data)
        hold = n
        anchors = self._anchor_places()
        token = self._token
        assert token is not None  # built with the anchors
        walked: dict[int, set[tuple[int, int]]] = {}
        budget = _FOLLOW_BUDGET + 16 * n
        # The run of text bytes around the current anchor ([run_lo, run_hi)), and which of its
        # bytes no extent covers yet (0; line breaks count as covered): when none is left, no
        # walk in the run can add anything.
        run_lo = run_hi = 0
        uncovered = bytearray()
        left = 0
        for index, start, _ in matches:
            places = anchors.get(index)
            if places is None:
                continue
            if start >= run_hi:
                # The previous run ended on a byte that is no text byte: the new one starts after.
                before = token.match(bytes(data[run_hi:start])[::-1])
                run_lo = start - (before.end() if before else 0)
                end = token.match(data, start)
                run_hi = end.end() if end else start
                uncovered = bytearray(bytes(data[run_lo:run_hi]).translate(_BREAKS_COVERED))
                left = uncovered.count(0)
                # Where the run's last text byte ends, and the earliest extent that reaches it.
                text_end = run_hi
                while text_end > run_lo and data[text_end - 1] in (10, 13):
                    text_end -= 1
                tail_lo = n
            for source, offset in places:
                if not left:
                    # Covered: no walk adds anything here. A run that reaches the end of the
                    # data may go on in the next chunk along a walk not taken: its covered end
                    # is held, to be searched again with what follows.
                    if run_hi == n:
                        hold = min(hold, tail_lo)
                    break
                seen = walked.setdefault(source, set())
                if (start, offset) in seen:
                    continue
                if budget > 0:
                    lo, hi, more, steps = self._follow(data, start, source, offset, seen)
                    budget -= steps
                else:
                    # Masked whole: the run's text bytes, line breaks at either end left out.
                    lo, hi = run_lo, run_hi
                    while lo < hi and data[lo] in (10, 13):
                        lo += 1
                    while hi > lo and data[hi - 1] in (10, 13):
                        hi -= 1
                    more = hi == n
                left -= uncovered.count(0, lo - run_lo, hi - run_lo)
                uncovered[lo - run_lo : hi - run_lo] = b"\x01" * (hi - lo)
                if extents is not None:
                    extents.append((lo, hi))
                if hi >= text_end:
                    tail_lo = min(tail_lo, lo)
                if more:
                    hold = min(hold, lo)
                # One replacement per line: the log keeps its shape.
                pos = lo
                for piece in re.split(rb"[\r\n]+", bytes(data[lo:hi])):
                    if piece:
                        found.append((pos, pos + len(piece)))
                    pos += len(piece)
                    while pos < hi and data[pos] in (10, 13):
                        pos += 1
        return hold

    def spans(self, data: Buffer) -> list[tuple[int, int]]:
        """Sorted, disjoint ``[start, end)`` ranges of ``data`` covered by any occurrence."""
        return self.spans_and_hold(data)[0]

    def spans_and_hold(
        self,
        data: Buffer,
        triggers: list[int] | None = None,
        extents: list[tuple[int, int]] | None = None,
    ) -> tuple[list[tuple[int, int]], int]:
        """:meth:`spans`, and where a wrapped text that may go on in the next chunk starts.

        The second value is ``len(data)`` when nothing must be held for that reason.
        Every occurrence of every pattern is found, overlapping ones included, and the union of
        them all is masked, so no fragment of a secret that overlaps another shows.
        ``triggers`` receives where a hex dump may start (see :meth:`_occurrences`), ``extents``
        the whole extent of each wrapped text found (its spans are one per line).
        """
        n = len(data)
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)  # the verification needs startswith
        matches = self._occurrences(data, triggers)
        if not matches:
            return [], n
        found = [(start, end) for _, start, end in matches]
        hold = n
        if self._sources:
            hold = self._follow_wrapped(data, matches, found, extents)
        found.sort()
        merged: list[tuple[int, int]] = []
        for start, end in found:
            # Only overlapping occurrences merge; adjacent ones stay two replacements, exactly
            # as they would when a chunk boundary falls between them.
            if merged and start < merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged, hold


class StreamRedactor:
    """Replaces every occurrence of any pattern in a stream that arrives in chunks.

    :meth:`feed` returns what can be emitted now; it holds back only the longest end of the
    data seen so far that could still become a secret when more arrives (plus any match that
    reaches into it). :meth:`flush` returns the rest at the end of the stream. A secret split
    across any number of chunks is replaced as if it had arrived in one piece; secrets that
    overlap each other are masked as their union, so no fragment of either shows.
    """

    def __init__(
        self,
        patterns: Iterable[bytes] | PatternSet,
        replacement: bytes = DEFAULT_REPLACEMENT,
    ) -> None:
        self._set = patterns if isinstance(patterns, PatternSet) else PatternSet(patterns)
        self.replacement = bytes(replacement)
        self._passthrough = len(self._set) == 0
        self._pending = b""
        # The last _WRAP_LINE bytes before _pending (emitted), when texts are found wrapped:
        # hold_start's "before" (a read may end a line that started in the previous one).
        self._wraps = self._set.wraps
        self._emitted = b""
        # How many first bytes of _pending lie inside a span whose replacement was emitted
        # already (see _feed: a run of overlapping matches is not held whole).
        self._covered = 0
        # First stage: values in hex dumps (xxd, od, hexdump), which no exact pattern finds.
        self._dumps = None if self._passthrough else DumpMasker(self._set, self.replacement)

    def __repr__(self) -> str:
        return f"<StreamRedactor {len(self._set)} patterns, {len(self._pending)} bytes held>"

    @property
    def pending(self) -> int:
        """How many bytes are currently held back."""
        return len(self._pending) + (self._dumps.pending if self._dumps is not None else 0)

    def _render(
        self, data: Buffer, end: int, spans: Sequence[tuple[int, int]], going_on: bool = False
    ) -> bytes:
        """``data[:end]`` with every span starting before ``end`` replaced; with ``going_on``,
        the first span (at 0) goes on with a replacement emitted already and is dropped."""
        if not spans or spans[0][0] >= end:
            return bytes(data[:end])
        pieces: list[Buffer] = []
        pos = 0
        if going_on:
            pos = spans[0][1]
            spans = spans[1:]
        for start, stop in spans:
            if start >= end:
                break
            pieces.append(data[pos:start])
            pieces.append(self.replacement)
            pos = stop
        if pos < end:
            pieces.append(data[pos:end])
        return b"".join(pieces)

    def feed(self, chunk: Buffer) -> bytes:
        """Take the next chunk of the stream; return the redacted bytes safe to emit now."""
        if self._passthrough:
            return chunk if isinstance(chunk, bytes) else bytes(chunk)
        dumps = self._dumps
        if dumps is not None:
            if not isinstance(chunk, bytes):
                chunk = bytes(chunk)
            if not (dumps.idle and chunk and not dumps.may_hold_end(chunk)):
                chunk = dumps.feed(chunk)
                if not chunk:
                    return b""
            else:
                # Nothing held by the dump stage and no first address to wait for at the end:
                # the pattern search tells whether a dump may start in this chunk.
                out = self._feed(chunk, dumps)
                if out is not None:
                    return out
                chunk = dumps.feed(chunk)
                if not chunk:
                    return b""
        out = self._feed(chunk)
        assert out is not None
        return out

    def _feed(self, chunk: Buffer, dumps: DumpMasker | None = None) -> bytes | None:
        """The pattern stage of :meth:`feed`.

        With ``dumps``, ``chunk`` has not been through the hex-dump stage: if the search finds
        where a dump may start in it, nothing is changed and ``None`` is returned (the dump stage
        must see it first); otherwise the dump stage is told the chunk went past it.
        """
        data: Buffer = self._pending + chunk if self._pending else chunk
        n = len(data)
        triggers: list[int] | None = [] if dumps is not None else None
        extents: list[tuple[int, int]] = []
        spans, hold = self._set.spans_and_hold(data, triggers, extents)
        if dumps is not None:
            assert isinstance(chunk, bytes)  # feed makes it so
            old = n - len(chunk)
            # A key wholly in the held part was seen by the dump stage already; one across the
            # boundary is left to the dump stage too.
            if any(
                t < old or dumps.may_start(chunk, t - old)
                for t in triggers or ()
                if t + len(TRIGGER_KEYS[0]) > old
            ):
                return None
            dumps.skip(chunk)
        going_on = self._covered > 0
        if going_on:
            spans = _going_on(spans, self._covered)
        ahead = self._set.hold_start(data, self._emitted)
        keep = cut = min(ahead, hold)
        while True:
            # A match reaching into the held end is kept whole and found again next time, so it
            # is never emitted half-replaced; a wrapped text with it from its first line on:
            # its anchors are there, its last line (a few characters) has none of its own.
            held = cut
            for start, end in spans:
                if end > held:
                    held = min(held, start)
                    break
            for lo, hi in extents:
                if lo < held < hi:
                    held = lo
            if held == cut:
                break
            cut = held
        # No later match can start before the last maxlen-1 bytes, and no walk from a later
        # anchor can reach back further than back_reach.
        margin = max(self._set.maxlen - 1, self._set.back_reach)
        if n - cut > margin:
            # A run of overlapping matches reaching the end (a value with a period shorter than
            # itself, "abab" in "ababab..."; a value of zero bytes and output of "AAAA..."), held
            # whole, grew with every read and was searched again each time: quadratic CPU and
            # unbounded memory. Its replacement is emitted now; kept are only the last `margin`
            # bytes and what hold_start keeps, and a later match or walk that
            # starts in or reaches back into what is left of the run merges with it, as in the
            # output read whole (where such a walk could reach no further back than the run's
            # start either: it is more than `margin` bytes before). A walk that goes on past the
            # run (over a line break) is kept from its start: its anchors must be found again.
            at = bisect_left(spans, (cut,))
            if at < len(spans) and spans[at][0] == cut:
                end = spans[at][1]
                # Not held for an open extent: one walk reaches less than back_reach, so its
                # anchor is kept; a run masked whole (past the walk budget) is found again.
                keep = min(ahead, n - margin, end, *(lo for lo, hi in extents if hi > end))
                if keep > cut:
                    out = self._render(data, cut, spans, going_on)
                    if not (going_on and cut == 0):
                        out += self.replacement
                    if self._wraps:
                        self._remember(data, keep)
                    self._pending = bytes(data[keep:])
                    self._covered = end - keep
                    return out
        # A run going on and held whole again stays inside the replacement emitted.
        self._covered = spans[0][1] if going_on and cut == 0 else 0
        if self._wraps:
            self._remember(data, cut)
        if cut == n and not spans:
            self._pending = b""
            return data if isinstance(data, bytes) else bytes(data)
        out = self._render(data, cut, spans, going_on)
        self._pending = bytes(data[cut:])
        return out

    def _remember(self, data: Buffer, cut: int) -> None:
        """Keep the last ``_WRAP_LINE`` bytes of ``data[:cut]`` (to be emitted) and before."""
        if cut >= _WRAP_LINE:
            self._emitted = bytes(data[cut - _WRAP_LINE : cut])
        elif cut:
            self._emitted = (self._emitted + bytes(data[:cut]))[-_WRAP_LINE:]

    def flush(self) -> bytes:
        """End of stream: return everything still held back, redacted."""
        out = b""
        if self._dumps is not None:
            rest = self._dumps.flush()
            if rest:
                out = self._feed(rest) or b""
        data, self._pending = self._pending, b""
        covered, self._covered = self._covered, 0
        if not data:
            return out
        spans = self._set.spans(data)
        if covered:
            spans = _going_on(spans, covered)
        return out + self._render(data, len(data), spans, covered > 0)


def _going_on(spans: list[tuple[int, int]], covered: int) -> list[tuple[int, int]]:
    """``spans`` of data whose first ``covered`` bytes lie inside a replaced span: that span
    first, with every span that overlaps it merged in (adjacent ones stay apart, as always)."""
    end = covered
    at = 0
    while at < len(spans) and spans[at][0] < end:
        end = max(end, spans[at][1])
        at += 1
    return [(0, end), *spans[at:]]


def _to_bytes(value: bytes | str) -> bytes:
    """The bytes a program sees for ``value``.

    A ``str`` from ``os.environ`` or a file name holds bytes that are not UTF-8 as lone
    surrogates (``surrogateescape``): they go back to the original bytes. Other lone surrogates
    (from JSON ``"\\ud800"``) are kept as their UTF-8-like encoding rather than refused.
    """
    if not isinstance(value, str):
        return bytes(value)
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


class MaskList:
    """Every value a job must not print, with the forms to mask for each.

    Values are added with the name of their variable so that problems (a value too short to
    mask) are reported by name. Nothing here ever exposes a value except :attr:`patterns` and
    :meth:`github_commands`, which exist to hand the values to the redactor and the runner.
    """

    def __init__(
        self,
        *,
        replacement: bytes | str = DEFAULT_REPLACEMENT,
        min_line_length: int = DEFAULT_MIN_LINE_LENGTH,
    ) -> None:
        self.replacement: bytes = (
            replacement.encode("utf-8") if isinstance(replacement, str) else bytes(replacement)
        )
        self.min_line_length = min_line_length
        # Insertion-ordered. Each value's forms are kept as computed, unordered: only the
        # announcements to GitHub need an order (see github_commands), and sorting them for every
        # value cost ~4 ms of the mask list for 1,000 secrets.
        self._values: dict[bytes, None] = {}
        self._forms: list[set[bytes]] = []
        self._wrapped: dict[bytes, None] = {}
        self._short: list[str] = []
        self._warnings: list[str] = []
        self._compiled: PatternSet | None = None

    def __repr__(self) -> str:
        return f"<MaskList {len(self._values)} values, {len(self.patterns)} patterns>"

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: bytes | str, *, name: str | None = None) -> None:
        """Register one secret value (``str`` is taken as UTF-8). ``name`` is used in warnings."""
        raw = _to_bytes(value)
        label = name or "<unnamed>"
        if not raw:
            return  # nothing to leak
        if len(raw) < MIN_SECRET_LENGTH:
            self._short.append(label)
            self._warnings.append(
                f"{label}: value shorter than {MIN_SECRET_LENGTH} bytes is not masked"
            )
            return
        if raw in self._values:
            return
        # The value's base64 texts once, for its forms and for the wrapped texts to follow.
        texts = maskforms.base64_texts(raw)
        forms = _mask_forms(raw, self.min_line_length, _encoded_groups(raw, texts))
        if b"\n" in raw or b"\r" in raw:
            lines = raw.splitlines()
            short_lines = [line for line in lines if 0 < len(line) < self.min_line_length]
            if short_lines and len(lines) > 1:
                self._warnings.append(
                    f"{label}: {len(short_lines)} line(s) shorter than {self.min_line_length} "
                    "bytes are not masked on their own"
                )
        self._values[raw] = None
        self._forms.append(forms)  # the value itself among them
        self._wrapped.update(dict.fromkeys(maskforms.wrap_sources(raw, texts)))
        self._compiled = None

    @property
    def patterns(self) -> frozenset[bytes]:
        """Every byte pattern to replace in output."""
        return frozenset().union(*self._forms)

    @property
    def short_values(self) -> list[str]:
        """Names of the values too short to be masked at all."""
        return list(self._short)

    @property
    def warnings(self) -> list[str]:
        """Human-readable warnings for ``plan``; they name variables, never values."""
        return list(self._warnings)

    def compiled(self) -> PatternSet:
        """The compiled patterns, built once and shared by every redactor."""
        if self._compiled is None:
            self._compiled = PatternSet(chain.from_iterable(self._forms), self._wrapped)
        return self._compiled

    def redactor(self) -> StreamRedactor:
        """A fresh :class:`StreamRedactor` for one output stream."""
        return StreamRedactor(self.compiled(), self.replacement)

    def redact(self, data: bytes) -> bytes:
        """``data`` with every pattern replaced (one complete piece, not a stream)."""
        redactor = self.redactor()
        return redactor.feed(data) + redactor.flush()

    def redact_text(self, text: str) -> str:
        """Like :meth:`redact` for text (error messages, log records)."""
        raw = text.encode("utf-8", "surrogateescape")
        return self.redact(raw).decode("utf-8", "surrogateescape")

    def github_commands(self) -> list[str]:
        """``::add-mask::`` lines (without newline) for every form GitHub can be told about.

        Every form the redactor masks is announced (the runner's own encoders cover only a few
        of them), and the lines of the value's base64 (standard and URL-safe) wrapped at 64 and
        76 columns.
        The runner unescapes ``%25``, ``%0D`` and ``%0A``, so those are escaped (``%`` first).
        Forms that are not UTF-8 cannot be written as a workflow command and are left out;
        their hex, base64 and URL forms are ASCII and always included.
        """
        # Each value before its other forms (GitHub learns the plain value first), those longest
        # first, then bytewise; then the lines of each value's base64 (both alphabets) wrapped
        # at 64 and 76 columns: the redactor follows wrapped text across line breaks, but
        # GitHub's runner masks exact strings only, so it is told each line.
        ordered: dict[bytes, None] = {}
        for value, forms in zip(self._values, self._forms, strict=True):
            ordered[value] = None
            ordered.update(dict.fromkeys(sorted(forms, key=lambda form: (-len(form), form))))
        for value in self._values:
            ordered.update(dict.fromkeys(sorted(maskforms.wrapped_base64_lines(value))))
        commands: list[str] = []
        for form in ordered:
            try:
                text = form.decode("utf-8")
            except UnicodeDecodeError:
                continue
            escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            commands.append(f"::add-mask::{escaped}")
        return commands


_remembered_lock = threading.Lock()
_remembered_masks: tuple[int, MaskList] | None = None


def mask_remembered(text: str, values: Sequence[str], generation: int) -> str:
    """``text`` with every one of ``values`` masked in all its forms, as ``run`` masks output.

    :func:`jobsecrets.unshown.scrub` masks the tool's own messages with it (errors quoting a
    store's words, log records). The mask list is built once per ``generation`` of the values,
    only when something is printed.
    """
    global _remembered_masks
    with _remembered_lock:
        cached = _remembered_masks
        if cached is None or cached[0] != generation:
            masks = MaskList()
            for value in values:
                masks.add(value)
            cached = _remembered_masks = (generation, masks)
    return cached[1].redact_text(text)
