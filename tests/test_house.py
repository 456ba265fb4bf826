"""The house keeps its shape: drivers <- recorder <- tools, and no import circle anywhere,
function-local imports included (a circle hidden inside a function is still a circle)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOORS = ("drivers", "recorder", "tools")     # each may import only from its own floor and below


def modules() -> dict[str, Path]:
    found = {}
    for floor in FLOORS:
        for path in sorted((ROOT / floor).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module ``name`` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)   # a submodule imported by name
    resolved = set()
    for target in targets:
        while target and target not in known:      # `import a.b.c` names a.b.c, a function of a.b...
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            resolved.add(target)
    return resolved


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return result


def test_no_import_circle_even_inside_functions():
    assert circles(graph()) == []


def test_imports_run_one_way_drivers_recorder_tools():
    upward = [(name, target) for name, targets in graph().items() for target in targets
              if FLOORS.index(target.split(".")[0]) > FLOORS.index(name.split(".")[0])]
    assert upward == []


def test_the_checks_would_see_a_circle_and_an_arrow_up():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    found = modules()
    assert "recorder.evidence.spool" in imports_of("tools.vault.ingest", found["tools.vault.ingest"], set(found)) \
        or "recorder.evidence.format" in imports_of("tools.vault.ingest", found["tools.vault.ingest"], set(found))
