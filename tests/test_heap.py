"""What a long-lived process loaded at start is kept out of the cyclic garbage collector
(orosflow.core.heap): a forked flow run no longer walks, and copies, the ~125 000 objects it
inherits in its first full collection (86-88 ms of CPU, often holding SQLite's write lock).

Each check runs in a fresh Python: freezing is once per process and for good.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, tmp_path: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "OROSFLOW_VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def test_freezing_is_once_per_process_and_keeps_later_objects_collectable(
    tmp_path: Path,
) -> None:
    out = _run(
        """
        import gc
        from orosflow.core import heap
        first = heap.freeze_startup_objects()
        later = [[i] for i in range(5000)]  # made after start: the collector's, as before
        again = heap.freeze_startup_objects()
        print(first, again, gc.get_freeze_count(), any(gc.is_tracked(x) for x in later))
        """,
        tmp_path,
    )
    first, again, count, tracked = out.split()
    assert int(first) > 1000
    assert int(again) == int(first) == int(count)
    assert tracked == "True"


def test_a_run_forked_from_the_fork_server_inherits_the_frozen_objects(tmp_path: Path) -> None:
    # The check runs in the forked run itself; its exit code says what it found.
    out = _run(
        """
        import prefect.flow_engine as engine
        from orosflow.core import flow_processes
        flow_processes.install(preload=["flows.preload"])
        check = "import gc, sys; sys.exit(0 if gc.get_freeze_count() > 50_000 else 3)"
        run = engine.multiprocessing.get_context("spawn").Process(target=exec, args=(check,))
        run.start()
        run.join(60)
        print("EXIT", run.exitcode)
        """,
        tmp_path,
    )
    assert "EXIT 0" in out
