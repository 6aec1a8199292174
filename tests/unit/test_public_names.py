"""The package's public names are written once each in three places that must agree.

``jobsecrets/__init__.py`` lists them in ``__all__`` (sorted), maps each to the module defining it
(``_LAZY``, loaded on first use) and imports them under ``TYPE_CHECKING`` for type checkers. This
test ties the three together and resolves every name; ``jobsecrets.testing`` follows the same rule.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "jobsecrets"


def _declared(path: Path) -> tuple[list[str], set[str], set[str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    lazy: set[str] = set()
    typed: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target == "__all__":
                names = list(ast.literal_eval(node.value))
            elif target == "_LAZY":
                lazy = set(ast.literal_eval(node.value))
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    typed |= {alias.asname or alias.name for alias in statement.names}
    return names, lazy, typed


@pytest.mark.parametrize("package", ["jobsecrets", "jobsecrets.testing"])
def test_all_lazy_and_type_checking_names_agree(package: str) -> None:
    path = SRC / Path(*package.split(".")[1:]) / "__init__.py"
    names, lazy, typed = _declared(path)
    assert names == sorted(names), "__all__ is not sorted"
    eager = {"__version__"}
    assert set(names) - eager == lazy, "__all__ and _LAZY differ"
    assert lazy == typed, "_LAZY and the TYPE_CHECKING imports differ"
    module = importlib.import_module(package)
    for name in names:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
