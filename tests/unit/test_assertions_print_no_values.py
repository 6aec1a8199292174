"""Test modules that compare secret values keep them out of failure output.

pytest's assertion rewriting prints the operands of a failing comparison, even one written as
``(value in log) is False``: a module that asserts on a value that way must be a plain-assert
module (``PYTEST_DONT_REWRITE`` in its docstring), where a failure prints only its message.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _boolean_membership_asserts(tree: ast.Module) -> int:
    """How many ``assert (a in b) is True/False`` (or ``not in``) the module has."""
    count = 0
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.Assert) else None
        if not isinstance(test, ast.Compare) or not isinstance(test.ops[0], ast.Is | ast.IsNot):
            continue
        left = test.left
        if isinstance(left, ast.Compare) and isinstance(left.ops[0], ast.In | ast.NotIn):
            count += 1
    return count


def test_modules_asserting_on_values_do_not_rewrite_their_asserts() -> None:
    offenders = []
    checked = 0
    for path in sorted(TESTS.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if _boolean_membership_asserts(tree):
            checked += 1
            if "PYTEST_DONT_REWRITE" not in (ast.get_docstring(tree) or ""):
                offenders.append(str(path.relative_to(TESTS)))
    assert offenders == [], "add PYTEST_DONT_REWRITE to their docstrings"
    assert checked >= 5, "the check found no module to check: its pattern is stale"


def test_the_check_sees_the_idiom() -> None:
    seen = ast.parse(
        "def t():\n    assert (v in log) is False\n    assert (v not in log) is True\n"
    )
    assert _boolean_membership_asserts(seen) == 2
    assert _boolean_membership_asserts(ast.parse("assert v in log\n")) == 0
