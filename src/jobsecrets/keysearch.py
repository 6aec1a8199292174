"""Find every occurrence of many short keys in bytes, fast: the first stage of masking and scanning.

Both the redactor (:mod:`jobsecrets.redact`) and the leak scan (:mod:`jobsecrets.scan`) look for
thousands of byte strings at once: every form of every value of a job (1,000 values make ~16,000
forms, ~0.9 MB). An Aho-Corasick automaton over all of them is big, and its speed is the speed of
the memory it touches: ~115 MB/s for the contiguous NFA, and a DFA over them takes seconds and
hundreds of MiB to build. So both search for a short *key* of each form instead (its first few
bytes), with a DFA that stays small (~10,000 keys of 6 bytes: ~60,000 states, built in well under
0.1 s, ~250 MB/s a core), and verify the whole form in Python where a key is found. Keys of random
values almost never occur by chance, so that check costs nothing on ordinary output.

:class:`KeySearch` is that first stage: overlapping occurrences of every key, with big inputs
searched as two halves on two cores (the Rust search releases the GIL).
"""

from __future__ import annotations

__all__ = ["KeySearch"]

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import ahocorasick_rs

# Above this many key bytes the automaton is a contiguous NFA: a DFA takes ~150 bytes of memory
# per key byte and its build time grows with it (at 2 MB of keys: ~0.3 GiB).
_DFA_MAX_KEY_BYTES = 2_000_000
# From this size on an input is searched as two halves at once, when a core is spare.
_SPLIT_MIN = 256 * 1024

_spare_lock = threading.Lock()
_spare: threading.Semaphore | None = None
_helper: ThreadPoolExecutor | None = None


def _spare_core() -> tuple[threading.Semaphore, ThreadPoolExecutor] | None:
    """The helper threads for second halves and a count of spare cores; None on one CPU."""
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


Match = tuple[int, int, int]


class KeySearch:
    """An immutable automaton over a list of keys; reports ``(key index, start, end)``.

    Keys may have any lengths (a form shorter than the usual key length is its own key) and any
    bytes. Every occurrence is reported, overlapping ones included. Nothing here ever prints a
    key: they are pieces of secrets.
    """

    __slots__ = ("_ac", "longest")

    def __init__(self, keys: Sequence[bytes]) -> None:
        """``keys`` must be distinct and non-empty; their indexes are what matches report."""
        #: Length of the longest key (0: no key, nothing is ever found).
        self.longest: int = max((len(k) for k in keys), default=0)
        self._ac: ahocorasick_rs.BytesAhoCorasick | None = None
        if keys:
            total = sum(len(k) for k in keys)
            self._ac = ahocorasick_rs.BytesAhoCorasick(
                list(keys),
                implementation=ahocorasick_rs.Implementation.DFA
                if total <= _DFA_MAX_KEY_BYTES
                else ahocorasick_rs.Implementation.ContiguousNFA,
            )

    def __repr__(self) -> str:
        return f"<KeySearch longest key {self.longest}>"

    def find(self, data: bytes | bytearray | memoryview) -> list[Match]:
        """Every occurrence of every key in ``data``, in no particular order."""
        ac = self._ac
        if ac is None:
            return []
        helper = _spare_core() if len(data) >= _SPLIT_MIN else None
        if helper is None or not helper[0].acquire(blocking=False):
            found: list[Match] = ac.find_matches_as_indexes(data, overlapping=True)
            return found
        spare, pool = helper
        try:
            # The second half starts longest - 1 bytes early, so a key across the middle is whole
            # in it; the keys it shares with the first half (ending at or before the middle) are
            # dropped, so nothing is reported twice.
            view = memoryview(data)
            mid = len(data) // 2
            lead = max(0, mid - (self.longest - 1))
            second = pool.submit(ac.find_matches_as_indexes, view[lead:], overlapping=True)
            first: list[Match] = ac.find_matches_as_indexes(view[:mid], overlapping=True)
            rest = [(k, s + lead, e + lead) for k, s, e in second.result() if e + lead > mid]
        finally:
            spare.release()
        return first + rest if rest else first
