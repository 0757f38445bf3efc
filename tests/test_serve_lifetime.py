"""``orosflow serve`` and its children live and die together (issue 11, finding 10; issue 12,
item 12): after a ``kill -9`` of serve its Prefect server and portal end too, so the next start
gets the ports; a Ctrl-C to the whole process group, or a SIGTERM to serve, stops everything
quietly; and a start that finds a port taken says so, naming the port and the process holding
it, instead of talking to a stranger."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from flows import SERVING
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


ROOT = Path(__file__).resolve().parent.parent
#: ``make serve`` as a user runs it: make, uv and serve in one process group (as a terminal's
#: foreground job), when make and the project's uv are there.
MAKE_SERVE = ["make", "-s", "serve"]


def _serve(env: dict[str, str], command: list[str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command or [sys.executable, "-m", "orosflow.cli.main", "serve"],
        cwd=ROOT,
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
    holder = f"pid {os.getpid()}, {psutil.Process().name()}"  # this test holds the port
    assert (
        f"porten används redan för Prefect-servern (127.0.0.1:{prefect_port}, används av {holder})"
        in output
    ), output
    assert "Traceback" not in output


def _group_and_descendants(pgid: int) -> list[psutil.Process]:
    """Every live process of process group ``pgid`` and every descendant of its leader (the
    Prefect server and the portal run in sessions of their own)."""
    found = {}
    try:
        for child in psutil.Process(pgid).children(recursive=True):
            found[child.pid] = child
    except psutil.NoSuchProcess:
        pass
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid:
                found[p.pid] = p
        except (ProcessLookupError, PermissionError):
            continue
    return [p for p in found.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_ctrl_c_to_the_whole_group_stops_everything_quietly(tmp_path: Path) -> None:
    """A real Ctrl-C: SIGINT to the whole process group of ``make serve`` (make, uv, serve and
    the flow runs; the Prefect server and the portal are serve's to stop) while its flows are
    served. Without a terminal uv also forwards the SIGINT to serve, so serve gets it twice:
    the second one must not break off the shutdown (what left the Prefect server running)."""
    ports = {"prefect": free_port(), "portal": free_port()}
    env = _env(tmp_path, ports["prefect"], ports["portal"])
    ports["smtp"] = int(env["OROSFLOW_SMTP_PORT"])
    via_make = shutil.which("make") is not None and (ROOT / ".tools" / "bin" / "uv").exists()
    proc = _serve(env, MAKE_SERVE if via_make else None)
    try:
        seen = _wait_for_line(proc, SERVING, 240)
        children = _group_and_descendants(proc.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "server start" in names and "portal" in names, names  # Prefect server, portal
        # Receipts first: the Prefect server runs only on a core the portal does not want.
        policies = {
            role: {os.sched_getscheduler(c.pid) for c in children if role in c.cmdline()}
            for role in ("server", "portal")
        }
        assert policies == {"server": {os.SCHED_IDLE}, "portal": {os.SCHED_OTHER}}, policies
        os.killpg(proc.pid, signal.SIGINT)
        seen += proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # A process in its last moments of exit (memory being freed, no command line) is not one
    # left running: give the exits a few seconds on a loaded machine.
    _, alive = psutil.wait_procs(children, timeout=10)
    left = [c for c in alive if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"still running after Ctrl-C: {[(c.pid, c.cmdline()) for c in left]}"
    assert _group_and_descendants(proc.pid) == []
    taken = [name for name, port in ports.items() if port_in_use("127.0.0.1", port)]
    assert taken == [], f"ports still listened on after Ctrl-C: {taken}"
    # make reports the interrupt in its own words ("make: *** [...] Interrupt") and exit code.
    assert via_make or proc.returncode == 0, seen[-3000:]
    assert "Traceback" not in seen, seen[-3000:]
    assert "KeyboardInterrupt" not in seen, seen[-3000:]
    assert "Stänger av …\nOrosflow stoppat.\n" in seen, seen[-3000:]


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
        seen = _wait_for_line(second, SERVING, 240)
    finally:
        os.kill(second.pid, signal.SIGTERM)  # as systemd or `kill` stops it: serve only
        try:
            seen += second.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            pytest.fail("serve did not stop on SIGTERM")
    assert "Traceback" not in seen and "never awaited" not in seen, seen[-3000:]
    assert "Stänger av …\nOrosflow stoppat.\n" in seen, seen[-3000:]
    assert not port_in_use("127.0.0.1", prefect_port), "Prefect server outlived SIGTERM"
    assert not port_in_use("127.0.0.1", portal_port), "portal outlived SIGTERM"


def test_runs_of_an_earlier_serve_count_as_dead_and_its_own_do_not() -> None:
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def run(at: datetime | None) -> SimpleNamespace:
        return SimpleNamespace(start_time=at, expected_start_time=at, created=at)

    assert _orphaned(run(started - timedelta(seconds=1)), started)
    assert not _orphaned(run(started + timedelta(seconds=1)), started)
    assert not _orphaned(run(started - timedelta(hours=1)), None)  # not at a serve start
