"""One owner for every state change: only the lifecycle's transition table assigns a status.

Scans the source of every module (no import), so a new ``report.status = ...`` anywhere else,
or an ``update(...).values(status=...)``, fails here before it can bypass the table's checks
and its audit event.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWNER = ROOT / "orosflow" / "handover" / "lifecycle" / "states.py"
PACKAGES = ("orosflow", "flows", "models", "routing")


def _status_writes(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            targets = [node.target]
        for target in targets:
            elts = target.elts if isinstance(target, ast.Tuple) else [target]
            lines += [
                t.lineno
                for t in elts
                if isinstance(t, ast.Attribute)
                and t.attr == "status"
                # an object's own field (an HTTP status on an exception) is not a report's
                and not (isinstance(t.value, ast.Name) and t.value.id == "self")
            ]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "values" and any(k.arg == "status" for k in node.keywords):
                lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "setattr" and len(node.args) > 1:
                arg = node.args[1]
                if isinstance(arg, ast.Constant) and arg.value == "status":
                    lines.append(node.lineno)
    return lines


def test_only_the_transition_table_assigns_a_status() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == OWNER or "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            offenders += [f"{path.relative_to(ROOT)}:{n}" for n in _status_writes(tree)]
    assert offenders == [], "status assigned outside lifecycle/states.py: " + ", ".join(offenders)


def test_the_scan_finds_a_status_assignment() -> None:
    """The scan itself works: each way of writing a status is caught."""
    for source in (
        "report.status = 'closed'",
        "old, h.status = h.status, 'failed'",
        "session.exec(update(Report).values(status='erased'))",
        "setattr(report, 'status', 'routed')",
    ):
        assert _status_writes(ast.parse(source)), source
    assert not _status_writes(ast.parse("status = report.status"))
