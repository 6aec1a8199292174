"""Which lines of two versions of a file are the same line: patience alignment.

``import --write`` restores the indentation of lines ruamel re-indented but did not change, so
it must know which dumped line is which original line. ``difflib.SequenceMatcher`` (junk
heuristics off, as the restore needs) is quadratic in repeated lines: a workflow of 1,000
vault-action steps, each followed by the same ``- run:`` line, took minutes. Patience alignment
(as ``git diff --patience``) anchors on lines found exactly once on each side, keeps the longest
run of anchors in the same order, and repeats between them; what it cannot align is a changed
region. Only a small changed region is handed to difflib, whose cost is then bounded.
"""

from __future__ import annotations

__all__ = ["Block", "align"]

import bisect
import difflib
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

# difflib's work in a region is at worst about len(a) * len(b) comparisons: at most this.
_DIFFLIB_BUDGET = 40_000


class Block(NamedTuple):
    """``a[a1:a2]`` became ``b[b1:b2]``; ``same`` when the lines are equal one for one."""

    a1: int
    a2: int
    b1: int
    b2: int
    same: bool


def align(a: Sequence[str], b: Sequence[str]) -> list[Block]:
    """Blocks covering both sequences in order: equal runs and changed regions between them."""
    out: list[Block] = []
    # A stack of work items, last first: a region to align, or a block ready to emit.
    stack: list[tuple[bool, Block]] = [(False, Block(0, len(a), 0, len(b), False))]
    while stack:
        ready, block = stack.pop()
        if ready:
            out.append(block)
        else:
            stack.extend(reversed(_split(a, b, block)))
    return _merged(out)


def _split(a: Sequence[str], b: Sequence[str], region: Block) -> list[tuple[bool, Block]]:
    """One region cut at its common ends and at its unique common lines."""
    alo, ahi, blo, bhi, _ = region
    head = 0
    while alo + head < ahi and blo + head < bhi and a[alo + head] == b[blo + head]:
        head += 1
    tail = 0
    while (
        alo + head < ahi - tail
        and blo + head < bhi - tail
        and a[ahi - tail - 1] == b[bhi - tail - 1]
    ):
        tail += 1
    parts: list[tuple[bool, Block]] = []
    if head:
        parts.append((True, Block(alo, alo + head, blo, blo + head, True)))
    mid = Block(alo + head, ahi - tail, blo + head, bhi - tail, False)
    if mid.a1 < mid.a2 or mid.b1 < mid.b2:
        anchors = _anchors(a, b, mid)
        if not anchors:
            parts.extend((True, block) for block in _changed(a, b, mid))
        else:
            i, j = mid.a1, mid.b1
            for ai, bj in anchors:
                parts.append((False, Block(i, ai, j, bj, False)))
                parts.append((True, Block(ai, ai + 1, bj, bj + 1, True)))
                i, j = ai + 1, bj + 1
            parts.append((False, Block(i, mid.a2, j, mid.b2, False)))
    if tail:
        parts.append((True, Block(ahi - tail, ahi, bhi - tail, bhi, True)))
    return parts


def _anchors(a: Sequence[str], b: Sequence[str], region: Block) -> list[tuple[int, int]]:
    """Lines found once on each side of ``region``: the longest run of them in the same order."""
    in_a = Counter(a[region.a1 : region.a2])
    in_b = Counter(b[region.b1 : region.b2])
    where_b = {b[j]: j for j in range(region.b1, region.b2) if in_b[b[j]] == 1}
    pairs = [
        (i, where_b[a[i]])
        for i in range(region.a1, region.a2)
        if in_a[a[i]] == 1 and a[i] in where_b
    ]
    # Longest increasing subsequence of the b positions (patience sorting, n log n).
    tops: list[int] = []  # tops[k]: the smallest b end of an increasing run of length k + 1
    top_index: list[int] = []
    previous: list[int] = []
    for index, (_i, j) in enumerate(pairs):
        k = bisect.bisect_left(tops, j)
        if k == len(tops):
            tops.append(j)
            top_index.append(index)
        else:
            tops[k] = j
            top_index[k] = index
        previous.append(top_index[k - 1] if k else -1)
    chain: list[tuple[int, int]] = []
    index = top_index[-1] if top_index else -1
    while index >= 0:
        chain.append(pairs[index])
        index = previous[index]
    return chain[::-1]


def _changed(a: Sequence[str], b: Sequence[str], region: Block) -> list[Block]:
    """A region with no unique common line: difflib's opcodes when small, else one change."""
    if (region.a2 - region.a1) * (region.b2 - region.b1) > _DIFFLIB_BUDGET:
        return [region]
    matcher = difflib.SequenceMatcher(
        a=a[region.a1 : region.a2], b=b[region.b1 : region.b2], autojunk=False
    )
    return [
        Block(region.a1 + i1, region.a1 + i2, region.b1 + j1, region.b1 + j2, op == "equal")
        for op, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _merged(blocks: list[Block]) -> list[Block]:
    """Neighbouring equal blocks as one; changed ones stay as found (a replace beside an insert
    keeps its line-for-line pairing)."""
    out: list[Block] = []
    for block in blocks:
        if block.a1 == block.a2 and block.b1 == block.b2:
            continue
        if out and out[-1].same and block.same:
            last = out[-1]
            out[-1] = Block(last.a1, block.a2, last.b1, block.b2, True)
        else:
            out.append(block)
    return out
