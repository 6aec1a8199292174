"""Line alignment for ``import --write``'s layout restore: correct blocks, bounded work."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobsecrets.importer.command import convert
from jobsecrets.importer.linematch import align

LINES = st.lists(st.sampled_from(["a", "b", "c", "- run: x", ""]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(LINES, LINES)
def test_blocks_cover_both_sides_in_order_and_equal_blocks_are_equal(
    a: list[str], b: list[str]
) -> None:
    blocks = align(a, b)
    i = j = 0
    for block in blocks:
        assert (block.a1, block.b1) == (i, j)
        assert block.a1 <= block.a2 and block.b1 <= block.b2
        if block.same:
            assert a[block.a1 : block.a2] == b[block.b1 : block.b2]
        i, j = block.a2, block.b2
    assert (i, j) == (len(a), len(b))


def test_unique_lines_anchor_and_repeated_ones_between_them_pair_up() -> None:
    a = ["x", "r", "r", "one", "r", "two", "r"]
    b = ["r", "r", "one", "new", "r", "two", "r"]
    same = [(blk.a1, blk.a2) for blk in align(a, b) if blk.same]
    assert (1, 5) in same or (1, 4) in same  # "r r one" stays aligned across the change
    assert (5, 7) in same or any(a1 <= 5 and a2 == 7 for a1, a2 in same)


def _many_steps(count: int) -> str:
    # `on:` indents its dashes, `steps:` does not: the dump moves lines, the restore puts
    # them back; every rewritten step sits between copies of the same `- run:` line.
    steps = "".join(
        f"    - uses: hashicorp/vault-action@v3\n"
        f"      with:\n"
        f"        url: https://vault.example.com\n"
        f"        method: jwt\n"
        f"        role: deployer\n"
        f"        secrets: |\n"
        f"          secret/data/app{i} token | T{i}\n"
        f"    - run: echo hi\n"
        for i in range(count)
    )
    return (
        "name: many\non:\n  schedule:\n    - cron: '0 3 * * *'\njobs:\n  a:\n"
        f"    runs-on: ubuntu-latest\n    steps:\n{steps}"
    )


def test_a_thousand_rewritten_steps_cost_bounded_comparisons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """difflib over the whole file compared every pair of equal lines: minutes for this file.

    Counted as work (the area of every region difflib searches), not as time.
    """
    (tmp_path / "w.yml").write_text(_many_steps(1000))
    monkeypatch.chdir(tmp_path)
    area = 0
    real = difflib.SequenceMatcher.find_longest_match

    def counted(self: Any, alo: int = 0, ahi: Any = None, blo: int = 0, bhi: Any = None) -> Any:
        nonlocal area
        ahi = len(self.a) if ahi is None else ahi
        bhi = len(self.b) if bhi is None else bhi
        area += (ahi - alo) * (bhi - blo)
        return real(self, alo, ahi, blo, bhi)

    monkeypatch.setattr(difflib.SequenceMatcher, "find_longest_match", counted)
    old, new = convert(["w.yml"]).rewritten["w.yml"]
    lines = old.count("\n")
    assert area <= 100 * lines, f"{area} line pairs searched for {lines} lines"
    assert "    - cron: '0 3 * * *'\n" in new, "the other style was not restored"
    assert new.count("    - run: echo hi\n") == 1000
