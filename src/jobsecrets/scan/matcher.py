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

from collections.abc import Iterable

from ..hexdumps import TRIGGER_KEYS
from ..keysearch import KeySearch
from ..redact import DEFAULT_MIN_LINE_LENGTH, labelled_mask_forms

#: Values and forms shorter than this are not searched for: a 3-byte value such as ``yes`` is in
#: every tree, and a finding must mean a leak. Values left out are reported by name.
DEFAULT_MIN_LENGTH = 8
#: Length of the keys the automaton searches for (64 bits of a random value: no chance hits).
KEY = 8
_SPACE = frozenset(b"\r\n\t ")
_BREAK = frozenset(b"\r\n")


class Matcher:
    """Finds the forms of a set of named values in bytes; reports form ids, never forms."""

    __slots__ = ("_forms", "_keys", "_owners", "_search", "dump_keys_from", "maxlen", "skipped")

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
        #: Key ids from this one on are a hex dump's first address (hexdumps.TRIGGER_KEYS), not
        #: forms: where one is found, the dump is decoded and its bytes searched too.
        self.dump_keys_from: int = len(ordered)
        # The double array where daachorse is installed: on a build tree's minified and
        # binary files the DFA over ~20,000 keys missed the cache at nearly every byte.
        self._search = KeySearch(ordered + list(TRIGGER_KEYS), double_array=True)

    def __len__(self) -> int:
        return len(self._forms)

    def __repr__(self) -> str:
        return f"<Matcher {len(self._forms)} forms, {len(self._keys)} keys>"

    def candidates(self, data: bytes) -> list[tuple[int, int, int]]:
        """``(key id, start, end)`` of every key occurrence, overlapping ones included.

        The search runs without the GIL, so threads scanning different files use every core, and
        one big input is searched as two halves when a core is spare (:mod:`jobsecrets.keysearch`).
        """
        return self._search.find(data)

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
