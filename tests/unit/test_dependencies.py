"""Dependencies point one way: no import cycle, and every import goes to the same layer or below.

Imports are read from the source (``ast``), including those inside functions; only ``if
TYPE_CHECKING:`` blocks are exempt (they never run). The layers are the ones drawn in
``docs/architecture.md``: a module that imports one above it is the first step of a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "jobsecrets"

# Layer of each module, by longest matching prefix (docs/architecture.md draws the same table).
LAYERS: dict[str, int] = {
    # L0: leaves, knowing nothing of the rest
    "jobsecrets": 0,
    "jobsecrets._version": 0,
    "jobsecrets._signals": 0,
    "jobsecrets.errors": 0,
    "jobsecrets.refs": 0,
    "jobsecrets.names": 0,
    "jobsecrets.durations": 0,
    "jobsecrets.digits": 0,
    "jobsecrets.addresses": 0,
    "jobsecrets.redirects": 0,
    "jobsecrets.fields": 0,
    "jobsecrets.fieldsets": 0,
    "jobsecrets.formats": 0,
    "jobsecrets.timeutil": 0,
    "jobsecrets.redact": 0,
    "jobsecrets.unshown": 0,
    "jobsecrets.maskforms": 0,
    "jobsecrets.keysearch": 0,
    "jobsecrets.hexdumps": 0,
    "jobsecrets.recorded": 0,
    "jobsecrets._exit": 0,
    "jobsecrets._collect": 0,
    "jobsecrets.failures": 0,
    "jobsecrets.safe_files": 0,
    "jobsecrets.env_limits": 0,
    "jobsecrets.jsonsafe": 0,
    "jobsecrets.missing_modules": 0,
    # L1: the backend interface and its registry
    "jobsecrets.backends": 1,
    "jobsecrets.backends.base": 1,
    "jobsecrets.backends.registry": 1,
    "jobsecrets.backends.retry": 1,
    # L2: the spec as data, the policy rules, resolved variables
    "jobsecrets.spec": 2,
    "jobsecrets.policy": 2,
    "jobsecrets.resolved": 2,
    # L3: CI systems; L4: the CI identity; L5: the concrete backends
    "jobsecrets.platforms": 3,
    "jobsecrets.identity": 4,
    "jobsecrets.backends.vault": 5,
    "jobsecrets.backends.aws": 5,
    "jobsecrets.backends.github": 5,
    # L6: what has a lifetime
    "jobsecrets.lifecycle": 6,
    # L7: resolution and audit; L8: a command's session; L9: the run/export pipeline
    "jobsecrets.resolver": 7,
    "jobsecrets.option_lookup": 7,
    "jobsecrets.audit": 7,
    "jobsecrets.session": 8,
    "jobsecrets.pipeline": 9,
    # L10: the commands and the child runner; L11: the CLI; L12: what tests of users import
    "jobsecrets.runner": 10,
    "jobsecrets.commands": 10,
    "jobsecrets.scan": 10,
    "jobsecrets.importer": 10,
    "jobsecrets.cli": 11,
    "jobsecrets._entry": 11,
    "jobsecrets.__main__": 11,
    "jobsecrets.testing": 12,
}


def layer(module: str) -> int:
    if module == PACKAGE:
        return LAYERS[PACKAGE]
    parts = module.split(".")
    # Down to the first level under the package: an unknown module never falls back to L0.
    for end in range(len(parts), 1, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"{module} has no layer: add it to LAYERS and docs/architecture.md")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(module: str) -> bool:
    return (SRC / module.replace(".", "/") / "__init__.py").exists()


def exists(module: str) -> bool:
    return is_package(module) or (SRC / (module.replace(".", "/") + ".py")).exists()


class _Imports(ast.NodeVisitor):
    """Every ``jobsecrets`` module a module imports, outside ``if TYPE_CHECKING:`` blocks."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.package = module if is_package(module) else module.rpartition(".")[0]
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
        if name == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                self.found.add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target.split(".")[0] != PACKAGE:
            return
        self.found.add(target)
        for alias in node.names:
            # `from . import x` / `from .pkg import submodule` import a module, not a name.
            if exists(f"{target}.{alias.name}"):
                self.found.add(f"{target}.{alias.name}")


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        module = module_name(path)
        visitor = _Imports(module)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        # (Importing a.b.c also runs a/__init__ first; a package importing its own modules is the
        # ordinary pattern, so only explicit imports are edges.)
        edges[module] = {m for m in visitor.found if m != module}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_import_goes_to_the_same_layer_or_below() -> None:
    upward = [
        f"{module} (L{layer(module)}) imports {target} (L{layer(target)})"
        for module, targets in graph().items()
        for target in sorted(targets)
        if layer(target) > layer(module)
    ]
    assert upward == []


@pytest.mark.parametrize(
    "source",
    [
        "from .b import x\n",  # a plain upward import
        "def f():\n    from .b import x\n",  # inside a function: counts too
    ],
)
def test_the_checker_sees_an_upward_import(source: str, tmp_path: Path) -> None:
    """The walker finds imports inside functions and relative ones (so the tests above can fail)."""
    visitor = _Imports("jobsecrets.resolver")
    visitor.visit(ast.parse(source.replace(".b", ".cli")))
    assert "jobsecrets.cli" in visitor.found
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_type_checking_imports_are_exempt() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .cli import main\n"
    visitor = _Imports("jobsecrets.resolver")
    visitor.visit(ast.parse(source))
    assert visitor.found == set()
