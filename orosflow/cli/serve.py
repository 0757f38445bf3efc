"""``make serve``: the whole of Orosflow on one machine with no outside service.

Starts a local Prefect server (SQLite, telemetry off), an SMTP capture keeping mail in
``var/mail/``, the web portal (with demo accounts on a fresh database), migrates the database,
serves the flow deployments in this process, picks up reports that never got a flow run, and
stops everything on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from orosflow.core import flow_processes, lifetime
from orosflow.core.filemodes import private_dir, restrict_umask, secure_tree
from orosflow.core.settings import Settings, get_settings


def wait_for_http(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    name: str = "Prefect-servern",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} avslutades (kod {proc.returncode}).")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} svarade inte inom {timeout:.0f} s")


def open_log(path: Path) -> BinaryIO:
    """A child's log file for appending, readable by Orosflow's user only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def prepare(settings: Settings) -> None:
    """Set-up before anything starts: a valid master key (created on a fresh install; an
    invalid one raises ``KeyConfigError`` before anything is written), the migrated database,
    and private modes for everything under ``var/`` — files 0600, directories 0700 — also
    for files an earlier version left readable to others."""
    from orosflow.core.crypto import load_keyring
    from orosflow.core.db import migrate

    restrict_umask()
    var = private_dir(settings.var_dir)
    private_dir(var / "log")
    load_keyring(settings)
    migrate()
    secure_tree(var)


#: The embedded server's database is one SQLite file with one writer at a time, shared by the
#: API and the server's services. Services serve does not use are off, so a burst's API writes
#: do not queue behind them: no work pools or workers (foreman), no cancelled parent runs
#: (cancellation_cleanup), no pause (pause_expirations), no automations (triggers), no
#: concurrency leases (repossessor); late_runs would write a "Late" state for every run a burst
#: leaves waiting for the runner limit, and the runner starts them either way. The scheduler
#: (cron deployments), event persister (the reconciler reads heartbeats) and task-run recorder
#: (the UI's task runs) stay on. Anything the operator sets in the environment wins.
EMBEDDED_SERVER_ENV = {
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
}


def start_prefect_server(port: int, home: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """Run ``prefect server start`` as a child process with our settings."""
    env = {**EMBEDDED_SERVER_ENV, **os.environ}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
    )
    private_dir(home)
    log = open_log(log_file)
    priority = get_settings().background_priority  # read here: the child only applies it

    def background_server() -> None:
        lifetime.die_with_parent()
        lifetime.yield_to_portal(priority)

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orosflow.cli.prefect_server",  # Prefect's CLI; SQLite writes wait, never 503
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--analytics-off",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=background_server,  # noqa: PLW1509 - prctl and priority only, no threads touched
    )


def start_portal(log_file: Path) -> subprocess.Popen[bytes]:
    """Run the portal (``orosflow portal``) as a child process with our settings."""
    env = dict(os.environ)  # OROSFLOW_DEV_MAIL only if run() turned it on with its capture
    log = open_log(log_file)
    return subprocess.Popen(
        [sys.executable, "-m", "orosflow.cli.main", "portal"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lifetime.die_with_parent,  # noqa: PLW1509 - prctl only, no threads touched
    )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def _serve_flows(started_at: datetime, stop: lifetime.StopSignals) -> None:
    from orosflow.cli.runner import run_flows, until_stopped

    await until_stopped(run_flows(orphaned_before=started_at), stop)


def _ports_taken(ports: dict[str, tuple[str, int]]) -> list[str]:
    """Each taken port with who holds it ("pid 1234, python3"), so the user can stop it."""
    taken = []
    for name, (host, port) in ports.items():
        if lifetime.port_in_use(host, port):
            holder = lifetime.port_holder(port)
            taken.append(f"{name} ({host}:{port}" + (f", används av {holder})" if holder else ")"))
    return taken


def run() -> int:
    stop = lifetime.StopSignals().install()
    try:
        return _run(stop)
    except KeyboardInterrupt:  # Ctrl-C before the children started: nothing to stop
        stop.ignore()
        print("Orosflow stoppat.", flush=True)
        return 0


def _run(stop: lifetime.StopSignals) -> int:
    settings = get_settings()
    var = settings.var_dir
    port = settings.prefect_port
    # serve always talks to the server it starts (set before Prefect is imported here).
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    os.environ.setdefault("PREFECT_HOME", str(var / "prefect"))
    os.environ.setdefault("OROSFLOW_PREFECT_UI_URL", f"http://127.0.0.1:{port}")
    restrict_umask()  # before anything is written; the children inherit it

    from orosflow.cli.demo import describe, ensure_demo_accounts
    from orosflow.core.anchors import no_auditors_warning
    from orosflow.core.crypto import check_key_settings
    from orosflow.core.smtp_capture import MailCapture
    from routing import get_router

    print("Orosflow startar …", flush=True)
    check_key_settings(settings)  # an invalid key stops the start before anything is written
    started_at = datetime.now(UTC)
    taken = _ports_taken(
        {
            "Prefect-servern": ("127.0.0.1", port),
            "portalen": (settings.portal_host, settings.portal_port),
            **(
                {"e-postfångaren": ("127.0.0.1", settings.smtp_port)}
                if settings.smtp_host in {"127.0.0.1", "localhost"}
                else {}
            ),
        }
    )
    if taken:
        print(
            "Kan inte starta: porten används redan för " + ", ".join(taken) + ".\n"
            "Kör en annan Orosflow redan, eller finns en kvar från en krasch? Stoppa den "
            "(`kill PID`, med pid:en ovan) eller välj andra portar "
            "(OROSFLOW_PREFECT_PORT, OROSFLOW_PORTAL_PORT, OROSFLOW_SMTP_PORT).",
            file=sys.stderr,
            flush=True,
        )
        return 1
    os.environ[lifetime.SERVE_PID_ENV] = str(os.getpid())
    prepare(settings)
    router = get_router(settings.channels_file)
    missing = router.units_without_channel()
    if missing:
        print(
            f"  Varning: {len(missing)} enheter saknar kontaktkanal: "
            f"{', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}"
        )

    no_auditors = no_auditors_warning()  # printed once; the terminal is the log
    if no_auditors:
        print(f"  {no_auditors}", file=sys.stderr, flush=True)

    demo = ensure_demo_accounts(var)
    capture = None
    if settings.smtp_host in {"127.0.0.1", "localhost"}:
        capture = MailCapture(var / "mail", port=settings.smtp_port).start()
        # The demo follows a report to its mail in the portal (admins only); a real relay: off.
        os.environ.setdefault("OROSFLOW_DEV_MAIL", "true")
    dev_mail = Settings().dev_mail  # what the portal process will read from the environment
    print("  Startar Prefect-servern (kan ta 10–30 s) …", flush=True)
    server = start_prefect_server(port, var / "prefect", var / "log" / "prefect-server.log")
    portal = start_portal(var / "log" / "portal.log")
    portal_url = f"http://{settings.portal_host}:{settings.portal_port}"
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/health", 120, server)
        wait_for_http(f"{portal_url}/healthz", 60, portal, name="Portalen")
        for proc, name in ((server, "Prefect-servern"), (portal, "Portalen")):
            if proc.poll() is not None:  # another process answered on its port
                raise RuntimeError(f"{name} avslutades (kod {proc.returncode}).")
        print(
            "\nOrosflow kör:\n"
            f"  Portal:         {portal_url}\n"
            f"  API-dokumentation: {portal_url}/api/docs\n"
            f"  Prefect UI:     http://127.0.0.1:{port}\n"
            f"  E-post (fångad): {var / 'mail'}"
            + (f" (och {portal_url}/dev/mail, för admin)" if dev_mail else "")
            + "\n"
            f"  Databas:        {settings.resolved_database_url}\n"
            f"  Loggar:         {var / 'log'}\n"
            "  Prova:          .venv/bin/orosflow submit examples/report.json\n"
            + (describe(demo) + "\n" if demo else "")
            + "Avsluta med Ctrl-C.\n",
            flush=True,
        )
        asyncio.run(_serve_flows(started_at, stop))
    except (KeyboardInterrupt, SystemExit):  # SystemExit: Prefect runner's own SIGTERM handler
        pass
    except (RuntimeError, TimeoutError) as exc:
        print(f"Orosflow kunde inte starta: {exc} Se loggarna i {var / 'log'}.", file=sys.stderr)
        return 1
    finally:
        stop.ignore()  # a second Ctrl-C must not break off the shutdown
        print("Stänger av …", flush=True)
        flow_processes.stop()  # runs still alive end with serve (the reconciler restarts them)
        stop_process(portal)
        stop_process(server)
        if capture:
            capture.stop()
    print("Orosflow stoppat.", flush=True)
    return 0
