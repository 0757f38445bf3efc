"""The fork server of ``core.flow_processes``: Prefect's engine still takes its process class
where the patch puts ours, and after ``install()`` a flow-run process is a fork of the
preloaded server, not a new Python. (The whole path, runner → forked run → mail, is in
tests/test_runner_cli.py.)"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_prefect_starts_flow_runs_through_the_module_the_patch_replaces() -> None:
    # On a Prefect upgrade that starts runs some other way, the patch would silently do
    # nothing and every run would be a new Python again: fail here instead.
    import prefect.flow_engine as engine

    source = inspect.getsource(engine.run_flow_in_subprocess)
    assert 'multiprocessing.get_context("spawn")' in source


def test_installed_engine_forks_runs_from_the_preloaded_server() -> None:
    # In a process of its own: install() changes Prefect's engine module for good.
    script = textwrap.dedent(
        """
        import os, sys, time
        import psutil
        import prefect.flow_engine as engine
        from orosflow.core import flow_processes

        assert not flow_processes.installed()
        flow_processes.install(preload=["json"])
        assert flow_processes.installed()
        proc = engine.multiprocessing.get_context("spawn").Process(target=time.sleep, args=(3,))
        proc.start()
        child = psutil.Process(proc.pid)
        server = psutil.Process(child.ppid())
        print("PARENT-IS-SELF", server.pid == os.getpid())
        print("SERVER", " ".join(server.cmdline()))
        print("CHILD", " ".join(child.cmdline()))
        proc.join()
        print("EXIT", proc.exitcode)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["PARENT-IS-SELF"] == "False"
    assert "multiprocessing.forkserver" in lines["SERVER"]
    # A fork carries the server's command line; a spawned run would show its own.
    assert "spawn_main" not in lines["CHILD"] and "prefect.engine" not in lines["CHILD"]
    assert lines["EXIT"] == "0"
