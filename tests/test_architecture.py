"""The package's shape: layers from plumbing up to the entry points, no import going upwards
and no import cycle (the layout docs/DEVELOPING.md describes)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

# Bottom to top; a module may import its own layer and the ones below, never above.
LAYERS = [
    ("den.errors", "den.utils"),
    ("den.config",),
    ("den.data", "den.models"),
    ("den.engine",),
    ("den.reports",),  # torch-free: reads what runs wrote
    ("den.strategies", "den.loggers"),
    ("den.run",),
    (
        "den.train",
        "den.compare",
        "den.pareto",
        "den.choose",
        "den.bench",
        "den.bench_threads",
        "den.dashboard",
    ),
]


def layer_of(module: str) -> int:
    if module == "den":  # the package itself holds only its version
        return 0
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/DEVELOPING.md")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """den modules ``path`` imports when it runs (not those under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    modules = {module_name(p) for p in (REPO_ROOT / "den").rglob("*.py")}
    return {m for m in found if m in modules}


def package_imports() -> dict[str, set[str]]:
    return {
        module_name(p): runtime_imports(p) - {module_name(p)}
        for p in sorted((REPO_ROOT / "den").rglob("*.py"))
        if module_name(p) != "den"
    }


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{mod} (layer {layer_of(mod)}) imports {dep} (layer {layer_of(dep)})"
        for mod, deps in package_imports().items()
        for dep in sorted(deps)
        if layer_of(dep) > layer_of(mod)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = package_imports()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path, node, dep]
            if dep not in state and (cycle := visit(dep, [*path, node])):
                return cycle
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, " -> ".join(cycle)


def test_the_check_sees_imports_and_skips_type_checking_blocks(tmp_path):
    """The two tests above would pass vacuously if nothing were read."""
    imports = package_imports()
    assert "den.config.registry" in imports["den.config.validate"]
    split = REPO_ROOT / "den" / "strategies" / "den" / "split.py"
    assert "den.strategies.den.strategy" in split.read_text()  # under TYPE_CHECKING there
    assert "den.strategies.den.strategy" not in runtime_imports(split)
