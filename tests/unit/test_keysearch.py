"""The first stage of masking and scanning: every occurrence of every key, nothing twice.

Checked against a naive search, on inputs small enough to be searched in one piece and big enough
to be split across two cores (keys placed across the split point), with keys of any byte, for
every automaton KeySearch can use: the DFA, the contiguous NFA, the NFA that becomes a DFA after
some bytes, and daachorse's double array.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobsecrets import keysearch
from jobsecrets.keysearch import KeySearch, rare_offset

#: KeySearch's options for each automaton it can search with.
ENGINES = {
    "dfa": {},
    "nfa": {"max_dfa_bytes": 0},
    "nfa-then-dfa": {"dfa_after": 200},
    "double-array": {"double_array": True},
}
engines = pytest.mark.parametrize("options", list(ENGINES.values()), ids=list(ENGINES))


def naive(keys: list[bytes], data: bytes) -> list[tuple[int, int, int]]:
    """Every occurrence of every key, overlapping ones included, by brute force."""
    found = []
    for index, key in enumerate(keys):
        at = data.find(key)
        while at != -1:
            found.append((index, at, at + len(key)))
            at = data.find(key, at + 1)
    return sorted(found)


@engines
@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.binary(min_size=1, max_size=9), min_size=1, max_size=20, unique=True),
    data=st.binary(max_size=300),
)
def test_small_inputs_match_a_naive_search(
    options: dict[str, int], keys: list[bytes], data: bytes
) -> None:
    # Sprinkle the keys into the data so that matches (and overlaps) are common.
    rng = random.Random(len(data))
    pieces = [data] + [rng.choice(keys) for _ in range(5)]
    rng.shuffle(pieces)
    text = b"".join(pieces)
    search = KeySearch(keys, **options)
    # Twice: the NFA that becomes a DFA may switch between the two (after 200 bytes).
    assert sorted(search.find(text)) == naive(keys, text)
    assert sorted(search.find(text)) == naive(keys, text)


@engines
def test_bytearray_and_memoryview_inputs_are_searched_too(options: dict[str, int]) -> None:
    keys = [b"needle", b"dle\x00"]
    text = b"hay needle\x00 hay" * 3
    search = KeySearch(keys, **options)
    for data in (bytearray(text), memoryview(text), memoryview(bytearray(text))[2:]):
        assert sorted(search.find(data)) == naive(keys, bytes(data))


@engines
def test_a_key_given_twice_reports_each_index(options: dict[str, int]) -> None:
    keys = [b"abc", b"xabc", b"abc", b"bc", b"abc"]
    found = sorted(KeySearch(keys, **options).find(b"--xabc--"))
    assert found == [(0, 3, 6), (1, 2, 6), (2, 3, 6), (3, 4, 6), (4, 3, 6)]


def test_the_nfa_becomes_a_dfa_after_the_bytes_it_was_given() -> None:
    search = KeySearch([b"needle"], dfa_after=1000)
    assert not search.is_dfa
    assert search.engine == "NFA, DFA pending"
    assert search.find(b"x" * 600 + b"needle") == [(0, 600, 606)]
    assert not search.is_dfa, "600 of 1,000 bytes: still the NFA"
    assert search.find(b"needle" + b"x" * 600) == [(0, 0, 6)]
    assert search.is_dfa
    assert search.find(b"a needle") == [(0, 2, 8)]
    assert search.engine == "DFA"
    # Beyond max_dfa_bytes there is no DFA to wait for.
    big = KeySearch([b"needle"], max_dfa_bytes=3, dfa_after=10)
    big.find(b"x" * 100)
    assert not big.is_dfa
    assert big.engine == "NFA"


def test_the_double_array_is_used_where_daachorse_is_installed() -> None:
    """pyproject.toml installs daachorse on x86-64 and macOS; there the redactor must use it."""
    import platform
    import sys

    if platform.machine() in ("x86_64", "AMD64") or sys.platform == "darwin":
        assert keysearch.DoubleArrayAhoCorasick is not None, "daachorse is not installed"
    search = KeySearch([b"needle"], double_array=True)
    installed = keysearch.DoubleArrayAhoCorasick is not None
    assert search.engine == ("double array" if installed else "DFA")
    # Both users of it: the redactor and the leak scan.
    from jobsecrets.redact import MaskList
    from jobsecrets.scan.matcher import Matcher

    masks = MaskList()
    masks.add("a-value-to-mask")
    assert masks.compiled()._keys.engine == search.engine
    assert Matcher([("V", "a-value-to-find")])._search.engine == search.engine


def test_without_daachorse_the_double_array_option_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keysearch, "DoubleArrayAhoCorasick", None)
    search = KeySearch([b"needle", b"dle"], double_array=True)
    assert search.engine == "DFA"
    assert sorted(search.find(b"a needle")) == [(0, 2, 8), (1, 5, 8)]


@engines
def test_big_input_split_in_halves_loses_and_repeats_nothing(options: dict[str, int]) -> None:
    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(rng.randint(2, 12))) for _ in range(300)]
    keys = list(dict.fromkeys(keys))
    data = bytearray(rng.randbytes(keysearch._SPLIT_MIN * 2 + 1001))
    mid = len(data) // 2
    # A key straddling the middle at every offset it can, and others everywhere.
    for shift in range(1, 12):
        key = keys[shift]
        data[mid - shift : mid - shift + len(key)] = key
    for _ in range(2000):
        key = rng.choice(keys)
        at = rng.randrange(len(data) - len(key))
        data[at : at + len(key)] = key
    text = bytes(data)
    search = KeySearch(keys, **options)
    for _ in range(2):  # the NFA that becomes a DFA: before and after
        found = search.find(text)
        assert len(found) == len(set(found)), "an occurrence was reported twice"
        assert sorted(found) == naive(keys, text)
    found = search.find(data)  # a bytearray, split the same way
    assert sorted(found) == naive(keys, text)


@engines
def test_overlapping_and_nested_keys_are_all_reported(options: dict[str, int]) -> None:
    keys = [b"aaaa", b"aa", b"\x00\x00", b"\x00\xff\x00"]
    text = b"aaaaa\x00\x00\xff\x00\x00"
    assert sorted(KeySearch(keys, **options).find(text)) == naive(keys, text)


def test_no_keys_find_nothing() -> None:
    search = KeySearch([])
    assert search.find(b"anything" * 100_000) == []
    assert search.longest == 0


def test_repr_shows_no_key() -> None:
    key = b"s3cr3t-key-material"
    assert key.decode() not in repr(KeySearch([key]))


@settings(max_examples=300, deadline=None)
@given(text=st.binary(max_size=80), length=st.integers(min_value=1, max_value=8))
def test_rare_offset_is_a_whole_window_of_the_text(text: bytes, length: int) -> None:
    at = rare_offset(text, length)
    if len(text) <= length:
        assert at == 0
    else:
        assert 0 <= at <= len(text) - length


def test_rare_offset_prefers_bytes_ordinary_text_lacks() -> None:
    # Lower case is everywhere in logs, upper case less, other punctuation least.
    assert rare_offset(b"abcdefgh+ijklmnop", 5) == 8
    assert rare_offset(b"abcdefghXYzzzzzz", 5) == 8
    # Within upper case, the letters of log levels and timestamps (INFO, ERROR, ...Z) come last.
    assert rare_offset(b"xxxxAbxxxxABxxxx", 5) == 11
    assert rare_offset(b"xxxxTxxxxxQxxxxx", 5) == 10
    # A hex value's key starts on a high digit, not on the 0-5 of every timestamp.
    assert rare_offset(b"0123456789abcdef", 5) == 6
    assert rare_offset(b"00112233ab9ccdde", 5) == 10
    # Among windows starting with a common group (digits, lower case), the rarer second byte wins.
    assert rare_offset(b"eeee1eeeee12eeee", 5) == 10
    # A window must fit: the rare byte near the end is not chosen.
    assert rare_offset(b"abcdefgh+", 5) in range(0, 5)


def test_the_groups_of_bytes_rank_each_byte_once() -> None:
    """Every byte has one rank; the ones not listed (control bytes, non-ASCII) are the rarest."""
    listed = b"".join(keysearch._GROUPS)
    assert len(set(listed)) == len(listed)
    assert set(keysearch._RARITY) == set(range(1, len(keysearch._GROUPS) + 2))
    assert keysearch._RARITY[0] == keysearch._RARITY[0xE2] == 1
    for rank, group in enumerate(keysearch._GROUPS, 2):
        assert {keysearch._RARITY[byte] for byte in group} == {rank}


def test_keys_of_many_secrets_start_on_what_logs_print_least() -> None:
    """The point of the ranking: over a log's bytes, the keys' first bytes are a small share.

    Secrets of the usual shapes (tokens, hex keys, passwords) against a CI log of pip, npm,
    pytest, docker and kubectl output: with the five kinds of byte of earlier rounds the keys
    started on 24% of this log's bytes, now on 12%; the search's speed follows that share.
    """
    import base64
    import string
    from collections import Counter

    from jobsecrets.redact import MaskList
    from support.ci_logs import ci_log

    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + "!@#$%^&()-_=+[]{}:;,.?/"
    values = [base64.urlsafe_b64encode(rng.randbytes(24)) for _ in range(100)]
    values += [rng.randbytes(20).hex().encode() for _ in range(100)]
    values += ["".join(rng.choice(alphabet) for _ in range(20)).encode() for _ in range(100)]
    masks = MaskList()
    for n, value in enumerate(values):
        masks.add(value, name=f"S{n}")
    patterns = sorted(masks.patterns)
    firsts = {p[at] for p, at in zip(patterns, keysearch.rare_offsets(patterns, 5), strict=True)}
    counts = Counter(ci_log(400_000))
    share = sum(counts[byte] for byte in firsts) / sum(counts.values())
    assert share < 0.16, f"keys start on {share:.0%} of the log's bytes"


def test_the_helpers_for_second_halves_never_hold_up_the_exit() -> None:
    """After a search split across cores, no thread is left that the process would wait for."""
    import threading

    data = b"x" * (keysearch._SPLIT_MIN * 2)
    KeySearch([b"needle"]).find(data)
    waited_for = [
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.name.startswith("jobsecrets")
    ]
    assert waited_for == []


def test_an_error_in_the_second_half_reaches_the_caller() -> None:
    helpers = keysearch._Helpers(1)
    with pytest.raises(ZeroDivisionError):
        helpers.submit(lambda: 1 // 0).result(timeout=10)
    assert helpers.submit(lambda: 42).result(timeout=10) == 42


def test_busy_cores_keep_big_inputs_whole_until_a_core_is_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a caller's threads hold the spare cores, no half goes to a helper; then it does."""
    assert (keysearch.os.cpu_count() or 1) >= 2  # the machines this project runs on have 2+
    spare = keysearch._spare_core()
    assert spare is not None
    halves: list[int] = []
    submit = spare[1].submit
    monkeypatch.setattr(spare[1], "submit", lambda call: (halves.append(1), submit(call))[1])
    search = KeySearch([b"needle"])
    data = b"x" * (1 << 20) + b"needle" + b"y" * (1 << 20)
    with keysearch.BusyCores(64) as busy:  # as many as there are
        assert search.find(data) == [(0, 1 << 20, (1 << 20) + 6)]
        assert halves == []
        busy.free_one()
        busy.free_one()  # more often than it holds: no error, nothing released twice
        assert search.find(data) == [(0, 1 << 20, (1 << 20) + 6)]
        assert halves == [1]
    # Everything held was given back: the next caller can hold the spare cores again.
    with keysearch.BusyCores(64) as again:
        assert again._held == (keysearch.os.cpu_count() or 1) - 1


def test_the_redactor_masks_the_same_with_either_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """The redactor's automaton is the double array where daachorse is installed, else
    ahocorasick_rs (an NFA that becomes a DFA): the same output either way, before and after."""
    from jobsecrets import redact
    from jobsecrets.redact import MaskList

    rng = random.Random(11)
    values = [rng.randbytes(rng.randint(8, 40)) for _ in range(30)] + [b"p@ss w0rd'\"!"]
    log = bytearray(rng.randbytes(300_000))
    for value in values:
        for form in sorted(redact.mask_forms(value))[:6]:
            at = rng.randrange(len(log) - len(form))
            log[at : at + len(form)] = form
    text = bytes(log)
    # Fed in pieces of 64 KiB, more than the NFA's allowance: the DFA takes over midway.
    monkeypatch.setattr(redact, "_DFA_AFTER", 100_000)

    def redacted() -> tuple[str, list[bytes]]:
        masks = MaskList()
        for value in values:
            masks.add(value)
        redactor = masks.redactor()
        pieces = [redactor.feed(text[i : i + 65536]) for i in range(0, len(text), 65536)]
        return masks.compiled()._keys.engine, [*pieces, redactor.flush()]

    def digest(pieces: list[bytes]) -> str:
        # Compared as digests: a failure must not print the values or the log around them.
        return hashlib.sha256(b"".join(pieces)).hexdigest()

    installed = keysearch.DoubleArrayAhoCorasick is not None
    engine, with_default = redacted()
    assert engine == ("double array" if installed else "DFA")
    monkeypatch.setattr(keysearch, "DoubleArrayAhoCorasick", None)
    engine, with_rs = redacted()
    assert engine == "DFA", "the NFA was not replaced by the DFA after 100,000 bytes"
    assert digest(with_rs) == digest(with_default), "the two libraries masked differently"
    assert digest(with_rs) != digest([text]), "nothing was masked: the test proves nothing"


def test_keys_daachorse_refuses_go_to_ahocorasick_rs(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing:
        def __init__(self, patterns: list[bytes]) -> None:
            raise ValueError("automaton too large")

    monkeypatch.setattr(keysearch, "DoubleArrayAhoCorasick", Refusing)
    search = KeySearch([b"needle", b"dle"], double_array=True)
    assert search.engine == "DFA"
    assert sorted(search.find(b"a needle")) == [(0, 2, 8), (1, 5, 8)]
