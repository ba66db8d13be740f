"""The package's structure (issue 16): imports flow one way, private names stay private, every package says
what it holds, and the declaration layer (spec/) writes no SQL.

The graph is read with ``ast`` from every import statement in every module, including imports inside
functions: a lazy import is still a dependency. Imports under ``if TYPE_CHECKING:`` are never executed and
name types only, so they are left out of the cycle check (reports.quality annotates with
reports.indicators.Definitions, which imports quality); private names are checked there too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "harmonise"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def absolute(package: str, level: int, module: str | None) -> str:
    """The module ``from <level dots><module> import ...`` names when written in ``package``."""
    if not level:
        return module or ""
    parts = package.split(".")
    return ".".join(parts[:len(parts) - level + 1] + ([module] if module else []))


def type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def walk(node: ast.AST, typing_only: bool) -> Iterator[ast.AST]:
    """Every node under ``node``, with or without the bodies of ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        yield child
        if type_checking(child) and not typing_only:
            for rest in child.orelse:  # type: ignore[attr-defined]
                yield rest
                yield from walk(rest, typing_only)
        else:
            yield from walk(child, typing_only)


def imports(name: str, typing_only: bool = False) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, imported name or None) for every import in module ``name``, relative imports resolved;
    ``typing_only``: also those under ``if TYPE_CHECKING:``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in walk(ast.parse(path.read_text(encoding="utf-8"), str(path)), typing_only):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = absolute(package, node.level, node.module)
            for alias in node.names:
                yield node.lineno, base, alias.name


def edges(name: str, typing_only: bool = False) -> Iterator[tuple[int, str, str | None]]:
    """(line, imported harmonise module, name taken from it) for module ``name``: ``from a import b`` where
    ``a.b`` is a module depends on ``a.b``; otherwise on ``a``."""
    for line, module, attr in imports(name, typing_only):
        if attr is not None and f"{module}.{attr}" in MODULES:
            yield line, f"{module}.{attr}", None
        elif module in MODULES:
            yield line, module, attr


def graph() -> dict[str, set[str]]:
    return {name: {target for _, target, _ in edges(name) if target != name} for name in MODULES}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    assert "harmonise.pipeline" in {target for _, target, _ in edges("harmonise.api")}  # inside functions only
    quality = "harmonise.reports.quality"
    assert "harmonise.reports.indicators" in {target for _, target, _ in edges(quality, typing_only=True)}
    assert "harmonise.reports.indicators" not in graph()[quality]
    assert absolute("harmonise.reports", 1, "quality") == "harmonise.reports.quality"
    assert absolute("harmonise.reports", 2, "spec.expr") == "harmonise.spec.expr"
    assert absolute("harmonise.reports", 1, None) == "harmonise.reports"
    assert absolute("harmonise.reports", 0, "duckdb") == "duckdb"
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_harmonise_modules() -> None:
    assert cycles(graph()) == []


def test_no_module_imports_another_modules_private_name() -> None:
    found = [f"{MODULES[name].relative_to(ROOT)}:{line}: from {target} import {attr}"
             for name in MODULES for line, target, attr in edges(name, typing_only=True)
             if attr and attr.startswith("_") and not attr.startswith("__") and target != name]
    assert found == []


def test_every_package_has_an_init_with_a_one_line_summary() -> None:
    packages = sorted({p.parent for p in PACKAGE.rglob("*.py")})
    missing = [str(p.relative_to(ROOT)) for p in packages if not (p / "__init__.py").is_file()]
    assert missing == []
    for p in packages:
        doc = ast.get_docstring(ast.parse((p / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"{p.relative_to(ROOT)}/__init__.py has no docstring"
        assert doc.splitlines()[0].endswith("."), f"{p.relative_to(ROOT)}/__init__.py: the first line is not a summary"


SQL = re.compile(r"import duckdb|SELECT|select ")


@pytest.mark.parametrize("path", sorted((PACKAGE / "spec").rglob("*.py")), ids=lambda p: p.name)
def test_the_declaration_layer_holds_no_sql(path: Path) -> None:
    found = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
             for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if SQL.search(line)]
    assert found == [], "spec/ only loads and models; SQL belongs in harmonise/compile/"
