"""``orosflow runner`` against a real Prefect server and a real SMTP server: it serves the
deployments, a report's flow run is forked from its fork server (not a new Python) and
notifies the unit once, and Ctrl-C stops it and everything it started, quietly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

from flows import SERVING
from orosflow.handover.submission import submit
from orosflow.handover.trigger import start_flow_run

from factories import form

ROOT = Path(__file__).resolve().parents[1]


def _wait_for_text(log: Path, text: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


class TreeSampler:
    """Every descendant of ``root`` seen while it runs: pid → (parent pid, command line)."""

    def __init__(self, root: int) -> None:
        self.root, self.seen = root, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            try:
                for p in psutil.Process(self.root).children(recursive=True):
                    self.seen.setdefault(p.pid, (p.ppid(), " ".join(p.cmdline())))
            except psutil.Error:
                continue

    def stop(self) -> dict[int, tuple[int, str]]:
        self._stop.set()
        self._thread.join()
        return self.seen


async def _final_state(run_id: str):  # noqa: ANN202 - Prefect's FlowRun
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        for _ in range(40):
            run = await client.read_flow_run(uuid.UUID(run_id))
            if run.state_type is not None and run.state_type.value in {"COMPLETED", "FAILED"}:
                break
            await asyncio.sleep(0.5)
    return run


def test_runner_delivers_a_report_from_a_forked_run_and_stops_on_ctrl_c(
    sqlite_db: str, smtp, prefect_server: Path, tmp_path: Path
) -> None:
    log = tmp_path / "runner.log"
    runner = subprocess.Popen(
        [sys.executable, "-m", "orosflow.cli.main", "runner"],
        env={**os.environ, "OROSFLOW_FLOW_RUN_LIMIT": "2"},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        _wait_for_text(log, SERVING, runner, 180)
        sampler = TreeSampler(runner.pid)
        receipt = submit(form(), actor="test:counselor")
        rid, ref = receipt.reports[0].report_id, receipt.reports[0].reference
        run_id = asyncio.run(start_flow_run(rid, ref))
        assert run_id

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not smtp.messages():
            time.sleep(0.5)
        mails = smtp.messages()
        assert [m["Subject"] for m in mails if ref in str(m["Subject"])], log.read_text()[-3000:]
        assert len(mails) == 1

        run = asyncio.run(_final_state(run_id))
        assert run.state_type is not None and run.state_type.value == "COMPLETED"
        # The run's process was a fork of the runner's fork server, not a new Python.
        seen = sampler.stop()
        # A fork shows its server's command line: the server is the one whose parent does not.
        lines = {p for p, (_, cmd) in seen.items() if "multiprocessing.forkserver" in cmd}
        servers = {p for p in lines if seen[p][0] not in lines}
        forked = [p for p, (parent, _) in seen.items() if parent in servers]
        assert len(servers) == 1 and forked, f"no run forked by a fork server among {seen}"
        assert not [cmd for cmd in (c for _, c in seen.values()) if "prefect.engine" in cmd]
        alive = [runner.pid, *(p.pid for p in psutil.Process(runner.pid).children(True))]

        os.killpg(runner.pid, signal.SIGINT)
        assert runner.wait(60) == 0
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    output = log.read_text(errors="replace")
    assert "Orosflow runner stoppad." in output
    assert "Traceback" not in output, output[-3000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in alive):
        time.sleep(0.2)
    left = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert left == [], f"still running after Ctrl-C: {left}"
