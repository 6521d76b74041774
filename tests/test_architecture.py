"""The package's shape (docs/architecture.md): layers whose imports only point down, no import cycles, no module
over 600 lines, and the library never imports ``benchmarks/``. Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "promptlearn"
#: The layers, lowest first (docs/architecture.md). A module may import its own layer and the ones below.
LAYERS = ["core", "io", "models", "scorer", "tuning", "pipeline", "estimators", "applications", "onnx", "integrations",
          "cli"]
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The promptlearn modules ``name`` imports (anywhere in the file), and ``benchmarks`` if it imports that."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "benchmarks":
                found.add("benchmarks")
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int | None:
    """A module's layer index (None: the package root and ``__main__``, which sit above every layer)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_is_in_a_layer():
    loose = [name for name in MODULES if _layer(name) is None and name not in ("promptlearn", "promptlearn.__main__")]
    assert not loose, f"modules outside the layer folders {LAYERS}: {loose}"


def test_imports_only_point_down():
    upward = [f"{name} -> {target}" for name, targets in GRAPH.items() for target in sorted(targets)
              if target not in ("benchmarks", "promptlearn") and _layer(name) is not None
              and _layer(target) is not None and _layer(target) > _layer(name)]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_the_library_never_imports_benchmarks():
    assert not [name for name, targets in GRAPH.items() if "benchmarks" in targets]


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in GRAPH[module]:
            if target not in MODULES:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_limit(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(PACKAGE.parent)} has {lines} lines (limit {MAX_LINES})"
