"""Find every occurrence of many short keys in bytes, fast: the first stage of masking and scanning.

Both the redactor (:mod:`jobsecrets.redact`) and the leak scan (:mod:`jobsecrets.scan`) look for
thousands of byte strings at once: every form of every value of a job (1,000 values make ~16,000
forms, ~0.9 MB). An Aho-Corasick automaton over all of them is big, and its speed is the speed of
the memory it touches: ~115 MB/s for the contiguous NFA, and a DFA over them takes seconds and
hundreds of MiB to build. So both search for a short *key* of each form instead (a few bytes of it:
for the redactor, where the form is least like ordinary text, :func:`rare_offset`), with a DFA that
stays small (~16,000 keys of 5 bytes: ~22 MiB, built in ~50 ms, 250-400 MB/s a core), and verify
the whole form in Python where a key is found. Keys of random values almost never occur by
chance, so that check costs nothing on ordinary output.

:class:`KeySearch` is that first stage: overlapping occurrences of every key, with big inputs
searched as two halves on two cores (the Rust search releases the GIL).
"""

from __future__ import annotations

__all__ = ["BusyCores", "KeySearch", "rare_offset", "rare_offsets"]

import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import ahocorasick_rs

# Above this many key bytes the automaton is a contiguous NFA: a DFA takes ~300 bytes of memory
# per key byte and its build time grows with it (the scan's default; the redactor sets its own).
_DFA_MAX_KEY_BYTES = 2_000_000
# From this size on an input is searched as two halves at once, when a core is spare.
_SPLIT_MIN = 256 * 1024

_T = TypeVar("_T")


class _Helpers:
    """Daemon threads that search second halves.

    Not a ``ThreadPoolExecutor``: its workers are not daemons, and an idle one holds up the
    process's end (``_exit.exit_process`` gives non-daemon threads a grace period: 0.25 s added to
    every ``run`` whose child printed a big chunk). A search has no effect outside its result, so
    a daemon cut off at exit loses nothing.
    """

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        for n in range(count):
            threading.Thread(target=self._work, name=f"jobsecrets-half-{n}", daemon=True).start()

    def submit(self, call: Callable[[], _T]) -> Future[_T]:
        """Run ``call`` on a helper thread; its result (or exception) arrives in the future."""
        future: Future[_T] = Future()
        self._jobs.put((future, call))
        return future

    def _work(self) -> None:
        while True:
            future, call = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as error:  # handed to the caller with the result
                future.set_exception(error)


_spare_lock = threading.Lock()
_spare: tuple[threading.Semaphore, _Helpers] | None = None


def _spare_core() -> tuple[threading.Semaphore, _Helpers] | None:
    """The helper threads for second halves and a count of spare cores; None on one CPU."""
    global _spare
    cores = os.cpu_count() or 1
    if cores < 2:
        return None
    with _spare_lock:
        if _spare is None:
            _spare = (threading.Semaphore(cores - 1), _Helpers(cores - 1))
        return _spare


class BusyCores:
    """Spare cores counted busy while a caller's own threads (one per core) search.

    For the scan of a tree: while all its threads search, a half handed to a helper thread only
    adds a thread switch per big input. So it holds ``count`` of the spare cores (as many as it
    can) and gives one back as each thread runs out of work: the threads still busy then split
    their big inputs onto the cores that came free.
    """

    def __init__(self, count: int) -> None:
        spare = _spare_core()
        self._semaphore = spare[0] if spare is not None else None
        self._lock = threading.Lock()
        self._held = 0
        while self._semaphore is not None and self._held < count:
            if not self._semaphore.acquire(blocking=False):
                break
            self._held += 1

    def __enter__(self) -> BusyCores:
        return self

    def __exit__(self, *exc: object) -> None:
        while self._held:
            self.free_one()

    def free_one(self) -> None:
        """A thread has finished: one core is spare again (if one is still held)."""
        with self._lock:
            if not self._held or self._semaphore is None:
                return
            self._held -= 1
        self._semaphore.release()


Match = tuple[int, int, int]


def _rarity(byte: int) -> int:
    """How common a byte is in ordinary CI output, from 1 (rare) to 5 (everywhere)."""
    if 97 <= byte <= 122 or byte in b" \t\r\n":
        return 5  # lower-case words and the space between them
    if 48 <= byte <= 57:
        return 4  # timestamps, counts, versions, ids
    if byte in b".:/-_=,()[]'\"":
        return 3  # paths, URLs, key=value, lists
    if 65 <= byte <= 90:
        return 2  # upper case: capitals, INFO/ERROR
    return 1  # other punctuation, control bytes, non-ASCII


# Each byte as the ASCII digit of its rarity, so that bytes.translate classifies a whole text at once.
_RARITY = bytes(48 + _rarity(byte) for byte in range(256))


def rare_offset(text: bytes, length: int) -> int:
    """Where in ``text`` the window of ``length`` bytes least likely to start in ordinary output is.

    The first byte of the window is of the rarest kind ``text`` has (other punctuation, then upper
    case, then common punctuation, then digits, then lower case), and among those the second byte
    too. A key search over such windows stays near the automaton's start on ordinary text (lower
    case words, timestamps): measured on generated CI logs with 1,000 secrets, 1.5-2x faster than
    over the first bytes of each text. 0 when ``text`` is not longer than ``length``.
    """
    return rare_offsets([text], length)[0]


def rare_offsets(texts: Iterable[bytes], length: int) -> list[int]:
    """:func:`rare_offset` of each of ``texts``, in order.

    One loop with the work written out: ~24,000 calls of :func:`rare_offset` (the forms of 1,000
    secrets) spent a third of their time in the calls themselves.
    """
    offsets: list[int] = []
    append, pairs, rarity = offsets.append, _PAIRS, _RARITY
    for text in texts:
        last = len(text) - length
        at = 0
        if last > 0:
            kinds = text.translate(rarity)
            # The rarest kind of first byte, then the rarest pair it starts: a handful of C-level
            # finds (min() over the bytes compared them one by one as Python ints: 2x slower).
            for first in _KINDS:
                if kinds.find(first, 0, last + 1) >= 0:
                    break
            for pair in pairs[first]:
                at = kinds.find(pair, 0, last + 2)
                if at >= 0:
                    break
        # (Only a window of 1 byte can start at the last byte and find no pair: then 0.)
        append(at if at > 0 else 0)
    return offsets


# Each kind as a one-byte string of its digit, rarest first.
_KINDS = (b"1", b"2", b"3", b"4", b"5")
# For each kind of first byte, the pairs it can start, rarest second first.
_PAIRS = {first: tuple(first + second for second in _KINDS) for first in _KINDS}


class KeySearch:
    """An immutable automaton over a list of keys; reports ``(key index, start, end)``.

    Keys may have any lengths (a form shorter than the usual key length is its own key) and any
    bytes. Every occurrence is reported, overlapping ones included. Nothing here ever prints a
    key: they are pieces of secrets.
    """

    __slots__ = ("_ac", "longest")

    def __init__(self, keys: Sequence[bytes], *, max_dfa_bytes: int = _DFA_MAX_KEY_BYTES) -> None:
        """``keys`` must be non-empty; their indexes are what matches report.

        A key may be given more than once: each index is reported (the automaton has the same
        states as for the distinct keys), so a caller can give one key per item it stands for.

        Up to ``max_dfa_bytes`` bytes of distinct keys the automaton is a DFA, beyond that the
        contiguous NFA (several times faster to build and far smaller, about half as fast to
        search). 0: always the NFA, for keys searched in short texts only.
        """
        #: Length of the longest key (0: no key, nothing is ever found).
        self.longest: int = max(map(len, keys), default=0)
        self._ac: ahocorasick_rs.BytesAhoCorasick | None = None
        if keys:
            total = sum(map(len, keys))
            if total > max_dfa_bytes:
                total = sum(map(len, set(keys)))  # the automaton's size: repeats share states
            self._ac = ahocorasick_rs.BytesAhoCorasick(
                list(keys),
                implementation=ahocorasick_rs.Implementation.DFA
                if total <= max_dfa_bytes
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
            second = pool.submit(lambda: ac.find_matches_as_indexes(view[lead:], overlapping=True))
            first: list[Match] = ac.find_matches_as_indexes(view[:mid], overlapping=True)
            rest = [(k, s + lead, e + lead) for k, s, e in second.result() if e + lead > mid]
        finally:
            spare.release()
        return first + rest if rest else first
