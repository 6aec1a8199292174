"""The matcher: every masked form of every value, found through short keys and then verified.

The forms come from :func:`jobsecrets.redact.labelled_mask_forms`, so whatever the redactor masks
is what the scan looks for, with a label naming the form. One form may belong to several
variables (two variables holding the same value): a finding names them all.

How it is fast: an Aho-Corasick automaton over all forms (1,000 values make ~14,000 forms of 40
bytes and more) is big, and its speed is the speed of the memory it touches. So the automaton
holds only :data:`KEY` bytes of each form, at offset 0 and at offset :data:`KEY` (a form broken
over two lines in its first :data:`KEY` bytes is still found by its second key). A key is only a
candidate: :meth:`Matcher.verify` checks the whole form there, as it is, or (in text) with line
breaks and indentation inside it. Keys of random values almost never occur by chance, so the
Python check costs nothing on clean data, and memory is the small automaton's.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MIN_LENGTH", "KEY", "Matcher"]

import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import ahocorasick_rs

from ..redact import DEFAULT_MIN_LINE_LENGTH, labelled_mask_forms

#: Values and forms shorter than this are not searched for: a 3-byte value such as ``yes`` is in
#: every tree, and a finding must mean a leak. Values left out are reported by name.
DEFAULT_MIN_LENGTH = 8
#: Length of the keys the automaton searches for (64 bits of a random value: no chance hits).
KEY = 8
# Above this many key bytes the automaton is an NFA: a DFA takes ~150 bytes per pattern byte.
_DFA_MAX_KEY_BYTES = 2_000_000
_SPACE = frozenset(b"\r\n\t ")
# A chunk at least this big is searched as two halves at once when a core is spare (the search
# releases the GIL): one big file (a Docker image, a bundle) then uses two cores, not one.
_SPLIT_MIN = 1 << 20
_spare_lock = threading.Lock()
_spare: threading.Semaphore | None = None
_helper: ThreadPoolExecutor | None = None


def _spare_core() -> tuple[threading.Semaphore, ThreadPoolExecutor] | None:
    """The helper threads for second halves and the count of spare cores; None on one CPU."""
    global _spare, _helper
    cores = os.cpu_count() or 1
    if cores < 2:
        return None
    with _spare_lock:
        if _spare is None or _helper is None:
            _spare = threading.Semaphore(cores - 1)
            _helper = ThreadPoolExecutor(
                max_workers=cores - 1, thread_name_prefix="jobsecrets-half"
            )
        return _spare, _helper


_BREAK = frozenset(b"\r\n")


class Matcher:
    """Finds the forms of a set of named values in bytes; reports form ids, never forms."""

    __slots__ = ("_ac", "_forms", "_keys", "_owners", "maxlen", "skipped")

    def __init__(
        self,
        values: Iterable[tuple[str, str | bytes]],
        *,
        min_length: int = DEFAULT_MIN_LENGTH,
        min_line_length: int = DEFAULT_MIN_LINE_LENGTH,
    ) -> None:
        owners: dict[bytes, dict[tuple[str, str], None]] = {}
        #: Names of the values not searched for (shorter than ``min_length``), in order.
        self.skipped: list[str] = []
        for name, value in values:
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            if not raw:
                continue
            if len(raw) < min_length:
                if name not in self.skipped:
                    self.skipped.append(name)
                continue
            for form, label in labelled_mask_forms(raw, min_line_length=min_line_length):
                if len(form) >= min_length:
                    owners.setdefault(form, {})[(name, label)] = None
        self._forms: list[bytes] = sorted(owners)
        self._owners: list[tuple[tuple[str, str], ...]] = [tuple(owners[f]) for f in self._forms]
        #: Length of the longest form (0: nothing to look for).
        self.maxlen: int = max((len(f) for f in self._forms), default=0)
        keys: dict[bytes, list[tuple[int, int]]] = {}
        for form_id, form in enumerate(self._forms):
            # A form shorter than KEY (only with --min-length below it) is its own key.
            keys.setdefault(form[:KEY], []).append((form_id, 0))
            if len(form) >= 2 * KEY:
                keys.setdefault(form[KEY : 2 * KEY], []).append((form_id, KEY))
        ordered = sorted(keys)
        # For each key: the forms it starts (offset 0) or continues (offset KEY), longest first.
        self._keys: list[list[tuple[int, int]]] = [
            sorted(keys[k], key=lambda e: -len(self._forms[e[0]])) for k in ordered
        ]
        self._ac: ahocorasick_rs.BytesAhoCorasick | None = None
        if ordered:
            self._ac = ahocorasick_rs.BytesAhoCorasick(
                ordered,
                implementation=ahocorasick_rs.Implementation.DFA
                if len(ordered) * KEY <= _DFA_MAX_KEY_BYTES
                else None,
            )

    def __len__(self) -> int:
        return len(self._forms)

    def __repr__(self) -> str:
        return f"<Matcher {len(self._forms)} forms, {len(self._keys)} keys>"

    def candidates(self, data: bytes) -> list[tuple[int, int, int]]:
        """``(key id, start, end)`` of every key occurrence, overlapping ones included.

        The search runs without the GIL, so threads scanning different files use every core.
        """
        if self._ac is None:
            return []
        helper = _spare_core() if len(data) >= _SPLIT_MIN else None
        if helper is None or not helper[0].acquire(blocking=False):
            found: list[tuple[int, int, int]] = self._ac.find_matches_as_indexes(
                data, overlapping=True
            )
            return found
        spare, pool = helper
        try:
            # The second half starts KEY - 1 bytes early, so a key across the middle is whole in
            # it; keys it shares with the first half (ending at or before the middle) are dropped.
            mid = len(data) // 2
            lead = mid - (KEY - 1)
            second = pool.submit(self._ac.find_matches_as_indexes, data[lead:], overlapping=True)
            first: list[tuple[int, int, int]] = self._ac.find_matches_as_indexes(
                data[:mid], overlapping=True
            )
            rest = [(k, s + lead, e + lead) for k, s, e in second.result() if e + lead > mid]
        finally:
            spare.release()
        return first + rest

    def verify(
        self, data: bytes, key_id: int, at: int, *, wrapped: bool
    ) -> list[tuple[int, int, int, bool]]:
        """``(form id, start, end, wrapped)`` of the forms whose key is at ``data[at:]``.

        A form matches as it is, or, with ``wrapped``, with spaces, tabs and line breaks inside it
        provided at least one line break is among them (words on one line never join).
        """
        found = []
        for form_id, offset in self._keys[key_id]:
            form = self._forms[form_id]
            start = at - offset
            if start >= 0 and data.startswith(form, start):
                found.append((form_id, start, start + len(form), False))
            elif wrapped:
                span = _wrapped_match(data, form, at, offset)
                if span is not None:
                    found.append((form_id, span[0], span[1], True))
        return found

    def owners(self, form_id: int) -> tuple[tuple[str, str], ...]:
        """``(variable name, form label)`` pairs the form stands for."""
        return self._owners[form_id]


def _wrapped_match(data: bytes, form: bytes, at: int, offset: int) -> tuple[int, int] | None:
    """``[start, end)`` of ``form`` around its key at ``data[at:]``, whitespace skipped.

    The key itself is contiguous; the bytes of the form before it are matched backwards, those
    after it forwards, skipping spaces, tabs and line breaks that the form does not have there.
    At most ``len(form)`` bytes are skipped, and at least one of them must be a line break.
    """
    budget = len(form)
    broke = False
    i = at - 1
    for j in range(offset - 1, -1, -1):
        want = form[j]
        while i >= 0 and data[i] != want and data[i] in _SPACE and budget > 0:
            broke = broke or data[i] in _BREAK
            budget -= 1
            i -= 1
        if i < 0 or data[i] != want:
            return None
        i -= 1
    start = i + 1
    key_length = min(KEY, len(form) - offset)
    i = at + key_length
    n = len(data)
    for j in range(offset + key_length, len(form)):
        want = form[j]
        while i < n and data[i] != want and data[i] in _SPACE and budget > 0:
            broke = broke or data[i] in _BREAK
            budget -= 1
            i += 1
        if i >= n or data[i] != want:
            return None
        i += 1
    return (start, i) if broke else None
