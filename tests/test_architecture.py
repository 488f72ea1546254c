"""The house: every room imports only the rooms beneath it, no import cycle, small modules.

Walks every `import` in `pipeline/`, including those inside functions, so a cycle cannot hide in a
function body. The order of the rooms is the flow rows -> texts -> vectors -> predictions ->
catalogue -> pages (see ARCHITECTURE.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
# Lowest first. A room may import its own modules and any room before it in this list.
ROOMS = ("core", "ingest", "models", "training", "catalogue", "jobs", "app", "cli")
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every pipeline module `path` imports, at module level or inside a function."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("pipeline"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("pipeline"):
                continue
            found.add(module)
            # `from pipeline.x import y` may name the module pipeline.x.y
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                if (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists():
                    found.add(candidate)
    found.discard(me)
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {m for m in _imports(path) if m in MODULES} for name, path in MODULES.items()}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def test_every_module_lives_in_a_room():
    homeless = [m for m in MODULES if m not in ("pipeline", "pipeline.__main__") and _room(m) is None]
    assert homeless == []


def test_rooms_import_only_the_rooms_beneath_them():
    wrong = []
    for module, imported in GRAPH.items():
        room = _room(module)
        if room is None:
            continue
        for other in imported:
            other_room = _room(other)
            if other_room is not None and ROOMS.index(other_room) > ROOMS.index(room):
                wrong.append(f"{module} imports {other}")
    assert wrong == []


def test_no_import_cycle():
    visiting, done, cycles = set(), set(), []

    def visit(node, stack):
        visiting.add(node)
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if nxt in visiting:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in done:
                visit(nxt, stack)
        stack.pop()
        visiting.discard(node)
        done.add(node)

    for module in sorted(GRAPH):
        if module not in done:
            visit(module, [])
    assert cycles == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_small(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES})"


def test_the_walker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "pipeline" / "app" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from pipeline.cli.main import main\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "pipeline"
    try:
        assert "pipeline.cli.main" in _imports(source)
    finally:
        PACKAGE = saved
