"""Find every occurrence of many short keys in bytes, fast: the first stage of masking and scanning.

Both the redactor (:mod:`jobsecrets.redact`) and the leak scan (:mod:`jobsecrets.scan`) look for
thousands of byte strings at once: every form of every value of a job (1,000 values make ~16,000
forms, ~0.9 MB). An Aho-Corasick automaton over all of them is big, and its speed is the speed of
the memory it touches: ~115 MB/s for the contiguous NFA, and a DFA over them takes seconds and
hundreds of MiB to build. So both search for a short *key* of each form instead (a few bytes of it:
for the redactor, where the form is least like ordinary text, :func:`rare_offset`), with an
automaton that stays small (~16,000 keys of 5 bytes: a DFA of ~22 MiB built in ~50 ms, or a double
array of ~8 MiB built in ~10 ms), and verify the whole form in Python where a key is found. Keys
of random values almost never occur by chance, so that check costs nothing on ordinary output.

The automaton of both is daachorse's double array where that package is installed (built in a
fifth of the DFA's time and searching faster, see :class:`KeySearch`); without it, the DFA for the
scan, and for the redactor the contiguous NFA until the output proves big, then the DFA.

:class:`KeySearch` is that first stage: overlapping occurrences of every key, with big inputs
searched as two halves on two cores (both libraries release the GIL while they search).
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

try:
    from daachorse import DoubleArrayAhoCorasick
except ImportError:  # no wheel for this platform (Linux on ARM): ahocorasick_rs alone
    DoubleArrayAhoCorasick = None  # type: ignore[assignment,misc]

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


# Bytes in groups, from the rarest in ordinary CI output to the most common; every byte not listed
# (control bytes, non-ASCII, which secrets hardly have) comes before them all. From English letter
# frequencies and what CI output adds to them (ISO timestamps, log levels, hex ids, paths, diffs,
# JSON), checked against the byte counts of three corpora: bench/redact_scale.py's log,
# tests/support/ci_logs' log and this repository's `git log -p`. Finer than the five kinds of
# earlier rounds (other punctuation, upper case, common punctuation, digits, lower case), in which
# a hex value's key could start on a 0 as well as a 9: with these groups the keys of 1,000 secrets
# start on bytes that make up ~12% of those logs instead of ~36%, and the search over them is
# 1.3-1.8x faster (docs/benchmarks.md, "Masking at scale").
_GROUPS = (
    b"^&?%!~$<\\*#;>",  # punctuation logs seldom print
    b"QXJYKHVGMPLCFUBW",  # upper case but for log levels and timestamps
    b"}{@|`+",  # JSON, mail addresses, markdown, diffs
    b"DOINRASETZ",  # INFO, ERROR, WARN, DEBUG; ISO timestamps' T and Z
    b"'[]()_,",  # quotes, lists, calls
    b"6789",  # the digits timestamps (0-2, 0-5) and counts (Benford's law) favour least
    b'/-"=:.',  # paths, URLs, key=value, times
    b"qzjxwvkgybmufhp",  # the rarer half of English's letters
    b"345",
    b"012",
    b"dclionarste\t\r\n ",  # words and the space between them
)
# Each byte as a one-byte string of its group's rank (1 rarest: the bytes not listed), so that
# bytes.translate classifies a whole text at once.
_RARITY = bytes(
    next((rank for rank, group in enumerate(_GROUPS, 2) if byte in group), 1) for byte in range(256)
)
# Each rank as a one-byte string, rarest first.
_KINDS = tuple(bytes([rank]) for rank in range(1, len(_GROUPS) + 2))
# For each rank of first byte, the pairs it can start, rarest second first.
_PAIRS = {first: tuple(first + second for second in _KINDS) for first in _KINDS}
# Ranks of first byte after which the rarest pair is looked for (see rare_offsets): the common
# punctuation, digits and lower case, where a hex or lower-case value's key starts.
_COMMON = frozenset(_KINDS[_GROUPS.index(b"'[]()_,") + 1 :])


def rare_offset(text: bytes, length: int) -> int:
    """Where in ``text`` the window of ``length`` bytes least likely to start in ordinary output is.

    The first byte of the window is of the rarest group ``text`` has (``_GROUPS``: punctuation logs
    seldom print, upper case but for log levels and timestamps, ..., lower case), and when that
    group is a common one (punctuation of paths, digits, lower case), the second byte is the
    rarest among those too. A key search over such windows stays near the automaton's start on
    ordinary text (lower case words, timestamps): measured on generated CI logs with 1,000
    secrets, 1.5-2x faster than over the first bytes of each text with five kinds of byte, and
    1.3-1.8x faster again with these eleven groups. 0 when ``text`` is not longer than ``length``.
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
            # The rarest group of first byte, then the rarest pair it starts: a handful of C-level
            # finds (min() over the bytes compared them one by one as Python ints: 2x slower;
            # ranking every byte on its own and finding the rarest took 2-3x as long as this).
            for first in _KINDS:
                at = kinds.find(first, 0, last + 1)
                if at >= 0:
                    break
            # After a rare first byte the second matters little: the pair step only for the
            # common groups (hex and lower-case values). For 1,000 secrets that halves the time
            # here for the same search speed.
            if first in _COMMON:
                for pair in pairs[first]:
                    at = kinds.find(pair, 0, last + 2)
                    if at >= 0:
                        break
        # (Only a window of 1 byte can start at the last byte and find no pair: then 0.)
        append(at if at > 0 else 0)
    return offsets


class KeySearch:
    """An immutable automaton over a list of keys; reports ``(key index, start, end)``.

    Keys may have any lengths (a form shorter than the usual key length is its own key) and any
    bytes. Every occurrence is reported, overlapping ones included. Nothing here ever prints a
    key: they are pieces of secrets.
    """

    __slots__ = ("_ac", "_da", "_dfa", "_dfa_after", "_dfa_lock", "_pending", "longest")

    def __init__(
        self,
        keys: Sequence[bytes],
        *,
        max_dfa_bytes: int = _DFA_MAX_KEY_BYTES,
        dfa_after: int = 0,
        double_array: bool = False,
    ) -> None:
        """``keys`` must be non-empty; their indexes are what matches report.

        A key may be given more than once: each index is reported (the automaton has the same
        states as for the distinct keys), so a caller can give one key per item it stands for.

        Up to ``max_dfa_bytes`` bytes of distinct keys the automaton is a DFA, beyond that the
        contiguous NFA (several times faster to build and far smaller, about half as fast to
        search). 0: always the NFA, for keys searched in short texts only.

        ``dfa_after``: when the DFA is due, search with the contiguous NFA first and build the
        DFA only once this many bytes have been searched (0: the DFA at once). The NFA is ready
        in a third of the time (for 1,000 secrets ~15 ms against ~50 ms) and searches about half
        as fast, so an output smaller than a few MB (most jobs) never pays for the DFA, and a
        big one pays for it once, when it saves more than it costs.

        ``double_array``: search with daachorse's double-array automaton where that package is
        installed (it has wheels for Linux and Windows on x86-64 and for macOS), ignoring the
        two options above. For the redactor's keys (1,000 secrets, ~16,000 keys chosen by
        :func:`rare_offsets`) it builds in ~8-11 ms, where the DFA takes 43-67 ms, and searches
        faster than the DFA (~600 against ~410 MB/s a core on generated CI logs): its prefilter
        skips the bytes no key starts with, which rare keys make most bytes of ordinary text.
        Keys not chosen that way lose that edge on text (16,000 keys of 8 random bytes on the
        same log: ~285 against the DFA's ~360 MB/s) but not on binary data, where a DFA that big
        misses the cache at nearly every byte (~190 against ~22 MB/s): the leak scan, whose keys
        are each form's first bytes and whose inputs are build trees, scans bench/scan_throughput's
        tree in 0.30 s against 0.48 s, and builds its matcher in 0.22 s against 0.44 s.
        """
        #: Length of the longest key (0: no key, nothing is ever found).
        self.longest: int = max(map(len, keys), default=0)
        self._ac: ahocorasick_rs.BytesAhoCorasick | None = None
        # The keys still waiting for their DFA, and how many more bytes are searched before.
        self._pending: list[bytes] | None = None
        self._dfa_after = 0
        self._dfa_lock = threading.Lock()
        self._dfa = False
        self._da: DoubleArrayAhoCorasick | None = None
        if keys and double_array and DoubleArrayAhoCorasick is not None:
            try:
                self._da = DoubleArrayAhoCorasick(list(keys))
            except Exception:  # its limits are not ours: ahocorasick_rs then
                # (daachorse raises for what it cannot build, e.g. a double array past its
                # 32-bit state ids; the keys are the same either way, and never printed).
                self._da = None
        if keys and self._da is None:
            total = sum(map(len, keys))
            if total > max_dfa_bytes:
                total = sum(map(len, set(keys)))  # the automaton's size: repeats share states
            dfa = total <= max_dfa_bytes
            if dfa and dfa_after > 0:
                self._pending = list(keys)
                self._dfa_after = dfa_after
                dfa = False
            self._dfa = dfa
            self._ac = ahocorasick_rs.BytesAhoCorasick(
                self._pending or list(keys),
                implementation=ahocorasick_rs.Implementation.DFA
                if dfa
                else ahocorasick_rs.Implementation.ContiguousNFA,
            )

    @property
    def engine(self) -> str:
        """Which automaton searches now: "double array", "DFA", "NFA" or "NFA, DFA pending"."""
        if self._da is not None:
            return "double array"
        if self._dfa:
            return "DFA"
        return "NFA, DFA pending" if self._pending is not None else "NFA"

    @property
    def is_dfa(self) -> bool:
        """Whether the search is a DFA now (False while a deferred DFA is still pending)."""
        return self._dfa

    def _count(self, size: int) -> None:
        """Count ``size`` bytes searched; build the pending DFA once enough have been."""
        self._dfa_after -= size
        if self._dfa_after > 0:
            return
        with self._dfa_lock:
            keys = self._pending
            if keys is None:  # another thread built it
                return
            self._ac = ahocorasick_rs.BytesAhoCorasick(
                keys, implementation=ahocorasick_rs.Implementation.DFA
            )
            self._dfa = True
            self._pending = None
            self._dfa_after = 0

    def __repr__(self) -> str:
        return f"<KeySearch longest key {self.longest}>"

    def find(self, data: bytes | bytearray | memoryview) -> list[Match]:
        """Every occurrence of every key in ``data``, in no particular order."""
        if self._da is not None:
            return self._find_double_array(self._da, data)
        if self._pending is not None:
            self._count(len(data))
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

    def _find_double_array(
        self, da: DoubleArrayAhoCorasick, data: bytes | bytearray | memoryview
    ) -> list[Match]:
        """:meth:`find` with daachorse (it takes ``bytes`` only, reports ``(start, end, key)``)."""
        helper = _spare_core() if len(data) >= _SPLIT_MIN else None
        if helper is None or not helper[0].acquire(blocking=False):
            whole = data if type(data) is bytes else bytes(data)
            return [(key, start, end) for start, end, key in da.find_overlapping(whole)]
        spare, pool = helper
        try:
            # As in find: the second half starts longest - 1 bytes early, its keys that end at
            # or before the middle are the first half's. Both halves are copies (a slice of bytes
            # is one too): ~0.1 ms a MiB, against ~1.7 ms a MiB of searching.
            mid = len(data) // 2
            lead = max(0, mid - (self.longest - 1))
            tail = bytes(data[lead:])
            second = pool.submit(lambda: da.find_overlapping(tail))
            first = da.find_overlapping(bytes(data[:mid]))
            found = [(key, start, end) for start, end, key in first]
            found += [(k, s + lead, e + lead) for s, e, k in second.result() if e + lead > mid]
        finally:
            spare.release()
        return found
