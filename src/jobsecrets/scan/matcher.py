"""The matcher: every masked form of every value, in one Aho-Corasick automaton.

The forms come from :func:`jobsecrets.redact.labelled_mask_forms`, so whatever the redactor masks
is what the scan looks for, with a label naming the form. One pattern may belong to several
variables (two variables holding the same value): a finding names them all.

Memory is the automaton's (a DFA while the patterns are small enough, else an NFA), whatever the
size of the files scanned. Nothing here exposes a pattern: ``repr`` shows counts.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MIN_LENGTH", "Matcher"]

from collections.abc import Iterable

import ahocorasick_rs

from ..redact import DEFAULT_MIN_LINE_LENGTH, labelled_mask_forms

#: Values and forms shorter than this are not searched for: a 3-byte value such as ``yes`` is in
#: every tree, and a finding must mean a leak. Values left out are reported by name.
DEFAULT_MIN_LENGTH = 8
# Above this many pattern bytes the automaton is an NFA: a DFA takes ~150 bytes per pattern byte.
_DFA_MAX_PATTERN_BYTES = 2_000_000


class Matcher:
    """Finds the forms of a set of named values in bytes; reports pattern ids, never patterns."""

    __slots__ = ("_ac", "_owners", "maxlen", "skipped")

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
        patterns = sorted(owners)
        self._owners: list[tuple[tuple[str, str], ...]] = [tuple(owners[p]) for p in patterns]
        #: Length of the longest pattern (0: nothing to look for).
        self.maxlen: int = max((len(p) for p in patterns), default=0)
        self._ac: ahocorasick_rs.BytesAhoCorasick | None = None
        if patterns:
            total = sum(len(p) for p in patterns)
            # Leftmost-longest: one finding per occurrence, named by its longest form (a value
            # rather than one of its lines).
            self._ac = ahocorasick_rs.BytesAhoCorasick(
                patterns,
                matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
                implementation=ahocorasick_rs.Implementation.DFA
                if total <= _DFA_MAX_PATTERN_BYTES
                else None,
            )

    def __len__(self) -> int:
        return len(self._owners)

    def __repr__(self) -> str:
        return f"<Matcher {len(self._owners)} patterns>"

    def find(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int, int]]:
        """``(pattern id, start, end)`` of every non-overlapping occurrence, in order.

        The search runs without the GIL, so threads scanning different files use every core.
        """
        if self._ac is None:
            return []
        found: list[tuple[int, int, int]] = self._ac.find_matches_as_indexes(data)
        return found

    def owners(self, pattern_id: int) -> tuple[tuple[str, str], ...]:
        """``(variable name, form label)`` pairs the pattern stands for."""
        return self._owners[pattern_id]
