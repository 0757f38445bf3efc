"""The layout shows the architecture: each layer of ``orosflow/`` imports only the layers below
it (routing/ and models/ at the ground), and no two modules import each other in a circle.

Scans the source (every import, at the top or inside a function), so a new upward import
fails here before it blurs the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Lowest first; a module may import its own layer and those before it.
LAYERS = [
    ("models", "routing"),
    ("orosflow.core",),
    ("orosflow.identity",),
    ("orosflow.handover",),
    ("flows",),
    ("orosflow.views",),
    ("orosflow.portal",),
    ("orosflow.cli",),
]


def _layer(module: str) -> int | None:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def _modules() -> dict[str, Path]:
    out = {}
    for package in ("orosflow", "flows", "models", "routing"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of import nodes under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            out |= {id(n) for n in ast.walk(node)}
    return out


def _imports(name: str, path: Path) -> set[str]:
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def test_each_layer_imports_only_the_layers_below() -> None:
    modules = _modules()
    upward = []
    for name, path in modules.items():
        own = _layer(name)
        if own is None:
            continue
        for imported in _imports(name, path):
            if imported not in modules:
                continue
            rank = _layer(imported)
            if rank is not None and rank > own:
                upward.append(f"{name} -> {imported}")
    assert upward == [], "upward imports: " + ", ".join(sorted(upward))


def test_no_import_cycles_between_modules() -> None:
    modules = _modules()
    graph = {
        name: {m for m in _imports(name, path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a cycle of meaning.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
