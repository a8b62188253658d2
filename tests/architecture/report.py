"""Figures of the package's shape, for notes and reviews: ``python -m tests.architecture.report``.

Prints the largest class, the longest function, the functions over a cyclomatic complexity of
15 (as ruff's C901 counts them), the import cycles between xsweep's modules (imports inside
functions included: they are cycles all the same) and the private names one module imports from
another. In CI, ``lint-imports`` (contracts in pyproject.toml) and ``ruff`` (C901) keep the
last three at zero.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "xsweep"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {
        module_name(path): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a relative import ``from <level dots><target> import ...``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def runtime_nodes(tree: ast.Module):
    """Every node, except those under ``if TYPE_CHECKING:`` (annotations, never run)."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def imports(
    trees: dict[str, ast.Module], type_checking: bool = False
) -> list[tuple[str, str, str | None]]:
    """Every ``(importer, imported module, imported name or None)`` inside the package.

    Imports under ``if TYPE_CHECKING:`` are left out unless ``type_checking``.
    """
    found = []
    for module, tree in trees.items():
        is_package = (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists()
        for node in ast.walk(tree) if type_checking else runtime_nodes(tree):
            if isinstance(node, ast.ImportFrom):
                target = resolve(module, is_package, node.level, node.module)
                if not target.startswith("xsweep"):
                    continue
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    if submodule in trees:
                        found.append((module, submodule, None))
                    else:
                        found.append((module, target, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("xsweep"):
                        found.append((module, alias.name, None))
    return found


def cycles(trees: dict[str, ast.Module]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {name: set() for name in trees}
    for importer, imported, _ in imports(trees):
        if imported in graph and imported != importer:
            # A package's __init__ re-exporting its modules is not a dependency of them on it.
            if importer.startswith(imported + "."):
                continue
            graph[importer].add(imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in graph:
        if node not in index:
            visit(node)
    return groups


def private_imports(trees: dict[str, ast.Module], type_checking: bool = False) -> list[str]:
    """``"<importer> imports <_name> from <module>"`` for each private name imported across."""
    return sorted(
        f"{importer} imports {name} from {imported}"
        for importer, imported, name in imports(trees, type_checking)
        if name and name.startswith("_") and not name.startswith("__")
        and importer != imported
    )


def largest_class(trees: dict[str, ast.Module]) -> tuple[str, int]:
    sizes = {
        f"{module}.{node.name}": node.end_lineno - node.lineno + 1
        for module, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    name = max(sizes, key=sizes.get)
    return name, sizes[name]


def longest_function(trees: dict[str, ast.Module]) -> tuple[str, int]:
    sizes = {
        f"{module}.{node.name}": node.end_lineno - node.lineno + 1
        for module, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    name = max(sizes, key=sizes.get)
    return name, sizes[name]


def complex_functions(bound: int = 15) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "C901", "--output-format", "json",
         "--config", f"lint.mccabe.max-complexity={bound}", "--no-cache", str(PACKAGE)],
        capture_output=True, text=True,
    )
    return sorted(
        f"{Path(item['filename']).relative_to(PACKAGE.parent)}: {item['message']}"
        for item in json.loads(out.stdout or "[]")
    )


def main() -> None:
    trees = modules()
    lines = sum(len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py"))
    print(f"modules: {len(trees)}, lines: {lines}")
    name, size = largest_class(trees)
    print(f"largest class: {name} ({size} lines)")
    name, size = longest_function(trees)
    print(f"longest function: {name} ({size} lines)")
    over = complex_functions()
    print(f"functions over complexity 15: {len(over)}")
    for item in over:
        print("   ", item)
    groups = cycles(trees)
    print(f"import cycles: {len(groups)}")
    for group in groups:
        print("   ", " <-> ".join(group))
    private = private_imports(trees)
    print(f"private names imported across modules: {len(private)}")
    for item in private:
        print("   ", item)


if __name__ == "__main__":
    main()
