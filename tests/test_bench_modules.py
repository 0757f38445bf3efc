"""Every benchmark script loads and answers ``--help``: ``make bench`` runs them only by hand, so
a name moved between them (``is_flow_run`` to ``proc_tree``) broke ``make bench-sustained`` with
no test noticing."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
MODULES = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem != "__init__")
#: The ones the Makefile runs as ``python -m benchmarks.<name>``.
ENTRY_POINTS = sorted(
    set(re.findall(r"python -m benchmarks\.(\w+)", (BENCHMARKS.parent / "Makefile").read_text()))
)


def test_the_makefile_runs_benchmarks() -> None:
    assert {"run", "before_after", "serve_burst", "sustained"} <= set(ENTRY_POINTS)


@pytest.mark.parametrize("name", MODULES)
def test_each_benchmark_module_imports(name: str) -> None:
    importlib.import_module(f"benchmarks.{name}")


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_each_make_bench_entry_point_answers_help(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCHMARKS.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
