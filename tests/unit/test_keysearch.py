"""The first stage of masking and scanning: every occurrence of every key, nothing twice.

Checked against a naive search, on inputs small enough to be searched in one piece and big enough
to be split across two cores (keys placed across the split point), with keys of any byte.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobsecrets import keysearch
from jobsecrets.keysearch import KeySearch, rare_offset


def naive(keys: list[bytes], data: bytes) -> list[tuple[int, int, int]]:
    """Every occurrence of every key, overlapping ones included, by brute force."""
    found = []
    for index, key in enumerate(keys):
        at = data.find(key)
        while at != -1:
            found.append((index, at, at + len(key)))
            at = data.find(key, at + 1)
    return sorted(found)


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.binary(min_size=1, max_size=9), min_size=1, max_size=20, unique=True),
    data=st.binary(max_size=300),
)
def test_small_inputs_match_a_naive_search(keys: list[bytes], data: bytes) -> None:
    # Sprinkle the keys into the data so that matches (and overlaps) are common.
    rng = random.Random(len(data))
    pieces = [data] + [rng.choice(keys) for _ in range(5)]
    rng.shuffle(pieces)
    text = b"".join(pieces)
    assert sorted(KeySearch(keys).find(text)) == naive(keys, text)


def test_big_input_split_in_halves_loses_and_repeats_nothing() -> None:
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
    found = KeySearch(keys).find(text)
    assert len(found) == len(set(found)), "an occurrence was reported twice"
    assert sorted(found) == naive(keys, text)


def test_overlapping_and_nested_keys_are_all_reported() -> None:
    keys = [b"aaaa", b"aa", b"\x00\x00", b"\x00\xff\x00"]
    text = b"aaaaa\x00\x00\xff\x00\x00"
    assert sorted(KeySearch(keys).find(text)) == naive(keys, text)


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
    # Among windows starting with the same kind, the rarer second byte wins.
    assert rare_offset(b"xxxxAbxxxxABxxxx", 5) == 10
    # A window must fit: the rare byte near the end is not chosen.
    assert rare_offset(b"abcdefgh+", 5) in range(0, 5)


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
