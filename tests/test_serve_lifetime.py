"""``orosflow serve`` and its children live and die together (issue 11, finding 10): after a
``kill -9`` of serve its Prefect server and portal end too, so the next start gets the ports,
and a start that finds a port taken says so instead of talking to a stranger."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from orosflow.core.lifetime import port_in_use
from orosflow.handover.reconcile import _orphaned

from support import free_port


def _env(tmp_path: Path, prefect_port: int, portal_port: int) -> dict[str, str]:
    var = tmp_path / "var"
    return {
        **os.environ,
        "OROSFLOW_VAR_DIR": str(var),
        "OROSFLOW_DATABASE_URL": f"sqlite:///{var / 'orosflow.db'}",
        "OROSFLOW_SMTP_HOST": "127.0.0.1",
        "OROSFLOW_SMTP_PORT": str(free_port()),
        "OROSFLOW_PREFECT_PORT": str(prefect_port),
        "OROSFLOW_PORTAL_PORT": str(portal_port),
        "PREFECT_HOME": str(var / "prefect"),
    }


def _serve(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orosflow.cli.main", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_for_line(proc: subprocess.Popen[str], text: str, seconds: float) -> str:
    seen = ""
    deadline = time.monotonic() + seconds
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} within {seconds:.0f} s:\n{seen[-3000:]}")


def test_a_taken_port_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    prefect_port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", prefect_port))
        squatter.listen()
        proc = _serve(_env(tmp_path, prefect_port, free_port()))
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert f"porten används redan för Prefect-servern (127.0.0.1:{prefect_port})" in output
    assert "Traceback" not in output


def test_children_end_with_a_killed_serve_and_the_next_start_works(tmp_path: Path) -> None:
    prefect_port, portal_port = free_port(), free_port()
    env = _env(tmp_path, prefect_port, portal_port)
    first = _serve(env)
    try:
        _wait_for_line(first, "Orosflow kör", 240)
        os.kill(first.pid, signal.SIGKILL)  # serve only, not its process group
        first.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            port_in_use("127.0.0.1", prefect_port) or port_in_use("127.0.0.1", portal_port)
        ):
            time.sleep(0.5)
        assert not port_in_use("127.0.0.1", prefect_port), "Prefect server outlived serve"
        assert not port_in_use("127.0.0.1", portal_port), "portal outlived serve"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    second = _serve(env)
    try:
        _wait_for_line(second, "Orosflow kör", 240)
    finally:
        os.killpg(second.pid, signal.SIGINT)
        try:
            second.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            pytest.fail("serve did not stop on Ctrl-C")


def test_runs_of_an_earlier_serve_count_as_dead_and_its_own_do_not() -> None:
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def run(at: datetime | None) -> SimpleNamespace:
        return SimpleNamespace(start_time=at, expected_start_time=at, created=at)

    assert _orphaned(run(started - timedelta(seconds=1)), started)
    assert not _orphaned(run(started + timedelta(seconds=1)), started)
    assert not _orphaned(run(started - timedelta(hours=1)), None)  # not at a serve start
