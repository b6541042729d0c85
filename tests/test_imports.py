"""The core's import graph: no cycle, and each library imported only where the house rules say."""

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"


def modules() -> dict[str, Path]:
    """Every module of service/, by dotted name (a package by its own name)."""
    found = {}
    for path in SERVICE.rglob("*.py"):
        parts = path.relative_to(SERVICE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """What a module imports, TYPE_CHECKING imports included; `from . import x` names x itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            subs = {f"{target}.{alias.name}" for alias in node.names} & set(known)
            found.update(subs if len(subs) == len(node.names) else {target, *subs})
    return found


GRAPH = {name: imports(name, path, modules()) for name, path in modules().items()}


def test_no_module_of_the_service_imports_itself_back():
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for target in GRAPH.get(start, ()):
            if target == goal or (target not in seen and reaches(target, goal, seen | {target})):
                return True
        return False

    assert [name for name in GRAPH if reaches(name, name, {name})] == []


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("flask", "service.http"),
        ("onnxruntime", "service.runtime"),
        ("tensorflow", None),
        ("training", None),
    ],
)
def test_libraries_are_imported_only_where_they_belong(library, allowed):
    importers = {
        name
        for name, targets in GRAPH.items()
        if any(t == library or t.startswith(f"{library}.") for t in targets)
    }
    assert {n for n in importers if not (allowed and n.startswith(allowed))} == set()
