"""What ``make bench-sustained`` runs against, started and stopped: the scratch databases, the
Prefect server, the portal with a counselor's API token, the SMTP capture that notes each mail's
arrival, and the flow side (``orosflow runner`` × N, or deploy steps 5, 7 and 9), each a child
in a session of its own (``benchmarks.sustained`` drives the load and counts)."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.env import PG_ADMIN_URL, free_port
from benchmarks.proc_tree import descendants, proc_stat
from benchmarks.sustained_tally import Mail

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COUNSELOR_EMAIL = "kurator@ungdomsmottagning.example.se"
T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {message}", flush=True)


@dataclass
class Child:
    """A process this benchmark started, in a session of its own."""

    role: str
    proc: subprocess.Popen[bytes]
    log: Path


def _start_key(pid: int) -> str | None:
    f = proc_stat(pid)
    return f[19] if f else None  # starttime: tells a reused pid apart


def stop_child(child: Child, timeout: float = 30) -> None:
    """SIGTERM to the child's process group, SIGKILL after ``timeout``, then whatever of its
    tree is left (a flow run outlives a worker on purpose): the tree is taken before the
    signal, and a pid is killed only if it is still the same process."""
    proc = child.proc
    tree = {p: _start_key(p) for p in descendants(proc.pid)[1:]}
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
    for pid, key in tree.items():
        if key is not None and _start_key(pid) == key:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# --- the world ----------------------------------------------------------------------------------


@dataclass
class World:
    """Paths, ports, databases and the environment every child gets."""

    root: Path
    tag: str = field(default_factory=lambda: f"{os.getpid()}_{int(time.time())}")
    prefect_port: int = field(default_factory=free_port)
    portal_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    @property
    def prefect_db(self) -> str:
        return f"orosflow_sustained_prefect_{self.tag}"

    @property
    def app_db(self) -> str:
        return f"orosflow_sustained_app_{self.tag}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def portal(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    def start(self, role: str, argv: list[str], extra: dict[str, str] | None = None) -> Child:
        """Start ``argv`` in its own session (the terminal's Ctrl-C reaches only us; we stop
        it), logging to ``log/<role>.log``, dying with us if we are killed outright."""
        from orosflow.core.lifetime import die_with_parent

        log = self.root / "log" / f"{role}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**self.env, **(extra or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl only
            )
        child = Child(role, proc, log)
        self.children.append(child)
        return child

    def run(self, argv: list[str], stdin: str | None = None, timeout: float = 300) -> str:
        """A one-off command with the children's environment; its stdout."""
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:4])} … exited {done.returncode}: {done.stderr[-800:]}"
            )
        return done.stdout


def _pg(statement: str) -> None:
    from sqlalchemy import text

    from benchmarks.env import _admin_engine

    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def create_databases(world: World, stack: ExitStack) -> None:
    """The two scratch databases (Prefect's and the app's), dropped by ``stack``."""
    for name in (world.prefect_db, world.app_db):
        _pg(f'CREATE DATABASE "{name}"')
        # WITH (FORCE): a child killed mid-transaction may still hold a connection.
        stack.callback(_pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def child_env(world: World) -> dict[str, str]:
    """The settings file of deploy step 3, for loopback and the scratch databases."""
    server = PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
    key = base64.b64encode(os.urandom(32)).decode()
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OROSFLOW_", "PREFECT_")) and k != "PYTHONDONTWRITEBYTECODE"
        },
        "PREFECT_API_URL": world.api,
        "PREFECT_UI_API_URL": world.api,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{server}/{world.prefect_db}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",  # nobody looks; saves copying the UI at start
        "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",  # count the 503s
        "PREFECT_HOME": str(world.root / "prefect"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
        # This machine sets PYTHONDONTWRITEBYTECODE=1: every new Python would compile what it
        # imports (a forked run's few imports, a spawned run's all). A deployment has .pyc
        # files; here they go to a cache in the temp dir, not into the checkout.
        "PYTHONPYCACHEPREFIX": str(world.root / "pycache"),
        "OROSFLOW_HOME": str(ROOT),
        "OROSFLOW_VAR_DIR": str(world.root / "var"),
        "OROSFLOW_DATABASE_URL": f"postgresql+psycopg://{server}/{world.app_db}",
        "OROSFLOW_SECRET_KEY": key,
        "OROSFLOW_SMTP_HOST": "127.0.0.1",
        "OROSFLOW_SMTP_PORT": str(world.smtp_port),
        "OROSFLOW_PORTAL_HOST": "127.0.0.1",
        "OROSFLOW_PORTAL_PORT": str(world.portal_port),
        "OROSFLOW_PORTAL_URL": world.portal,
        "OROSFLOW_PREFECT_UI_URL": f"http://127.0.0.1:{world.prefect_port}",
    }


def wait_http(url: str, timeout: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.proc.poll() is not None:
            tail = child.log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{child.role} exited ({child.proc.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class Capture:
    """The project's SMTP capture, noting each accepted message's Message-ID, reference and
    arrival (after the .eml is written, before the 250 answer)."""

    def __init__(self, directory: Path, port: int) -> None:
        from orosflow.core.smtp_capture import MailCapture

        self.capture = MailCapture(directory, port=port)
        self.mails: list[Mail] = []
        store = self.capture.controller.handler
        original: Callable = store.handle_DATA

        async def noted(server, session, envelope):  # type: ignore[no-untyped-def]
            answer = await original(server, session, envelope)
            raw = envelope.original_content or envelope.content
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            ref = msg["X-Orosflow-Reference"]
            self.mails.append(Mail(str(msg["Message-ID"]), str(ref) if ref else None, time.time()))
            return answer

        store.handle_DATA = noted
        self.capture.start()

    def stop(self) -> None:
        self.capture.stop()

    def files(self) -> int:
        return len(list(self.capture.directory.glob("*.eml")))


# --- setting up ---------------------------------------------------------------------------------


def start_prefect(world: World) -> None:
    started = time.perf_counter()
    child = world.start(
        "prefect-server",
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
         str(world.prefect_port), "--analytics-off"],
    )  # fmt: skip
    wait_http(f"{world.api}/health", 180, child)
    say(f"  Prefect server (PostgreSQL) up after {time.perf_counter() - started:.1f} s")


def counselor_token(world: World) -> str:
    """A counselor account and its API token (the first command migrates the app database)."""
    orosflow = [sys.executable, "-m", "orosflow.cli.main"]
    world.run(
        [*orosflow, "users", "add", "kurator", "--role", "counselor", "--name", "Kurator",
         "--email", COUNSELOR_EMAIL, "--password-stdin"],
        stdin="kurator-losenord-123\n",
    )  # fmt: skip
    return json.loads(world.run([*orosflow, "users", "token", "kurator", "--name", "bench"]))[
        "token"
    ]


def start_portal(world: World) -> None:
    started = time.perf_counter()
    child = world.start("portal", [sys.executable, "-m", "orosflow.cli.main", "portal"])
    wait_http(f"{world.portal}/healthz", 120, child)
    say(f"  portal up after {time.perf_counter() - started:.1f} s")


def start_flow_side(world: World, mode: str, runners: int, limit: int) -> None:
    """The flow runs' side: ``orosflow runner`` × N, or deploy steps 5, 7 and 9."""
    orosflow = [sys.executable, "-m", "orosflow.cli.main"]
    if mode == "runner":
        for i in range(runners):
            world.start(
                f"runner-{i + 1}",
                [*orosflow, "runner"],
                {"OROSFLOW_FLOW_RUN_LIMIT": str(limit)},
            )
    else:
        prefect = str(BIN / "prefect")
        world.run([prefect, "work-pool", "create", "orosflow", "--type", "process", "--overwrite"])
        world.run([prefect, "--no-prompt", "deploy", "--all"], timeout=600)
        for i in range(runners):
            world.start(
                f"worker-{i + 1}",
                [prefect, "worker", "start", "--pool", "orosflow", "--name",
                 f"sustained-{i + 1}", "--limit", str(limit)],
            )  # fmt: skip
        world.start("reconciler", [*orosflow, "reconcile"])
    wait_http(f"{world.api}/deployments/name/concern-report/concern-report", 300)


def pause_sweep(world: World) -> None:
    """Pause escalate-overdue's schedule (the server deletes its scheduled runs): every mail
    then comes from the report's own flow run, the path whose rate is measured."""
    url = f"{world.api}/deployments/name/escalate-overdue/escalate-overdue"
    wait_http(url, 120)
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (loopback)
        deployment = json.loads(resp.read())
    req = urllib.request.Request(
        f"{world.api}/deployments/{deployment['id']}/pause_deployment", data=b"", method="POST"
    )
    with urllib.request.urlopen(req, timeout=30):  # noqa: S310 (loopback)
        pass
