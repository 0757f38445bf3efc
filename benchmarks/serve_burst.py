"""``make bench-serve``: the embedded default (``orosflow serve``) as a user meets it.

Starts ``orosflow serve`` on a throw-away ``var/`` and free ports, makes a counselor with an API
token, and submits the example form through ``POST /api/v1/reports``:

1. one report at a time (``--single``, default 5): time from submit to its mail in the capture;
2. a burst (``--burst``, default 20) submitted at once, while a probe submits one more report
   every 2 s until the burst is drained (at most 60): time-to-notify of the burst, receipt
   times of the burst and of the probes (the client's, and the portal's from its access
   log), escalation sweeps that fell in the drain (a sweep sends every queued mail at once),
   HTTP 503s the Prefect server answered (its log), the peak RSS and PSS (shared pages
   counted once) of serve and all its descendants, and the most flow-run processes alive at
   once.

The machine is what it is: on a shared machine say so next to the figures. Usage::

    .venv/bin/python -m benchmarks.serve_burst [--burst 20] [--single 5] [--limit N]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.env import free_port
from benchmarks.proc_tree import Sampler, descendants
from benchmarks.stats import ms, percentile
from benchmarks.workload import distinct_form

ROOT = Path(__file__).resolve().parents[1]
COUNSELOR_EMAIL = "kurator@ungdomsmottagning.example.se"
#: What Prefect's server logs for every request it answers 503 (with the failing statement).
RETRYABLE = "Encountered retryable exception in request"
#: Probes carry a query string (``?probe=1``, which the API ignores and the log redacts to
#: ``?[skyddat]=1``), so their lines are told from the burst's, logged late (after each
#: submission's flow-run start) and so among the probes'.
PROBE_ANSWERED = re.compile(r"POST /api/v1/reports\?\S+ 201 (\d+) ms")
#: Receipts timed while a burst drains: one every PROBE_EVERY s until it is drained, at most
#: MAX_PROBES (each is one more flow run for the drain).
PROBE_EVERY = 2.0
MAX_PROBES = 60
#: How long the count of escalation sweeps may wait for a Prefect server still busy with a burst.
SWEEPS_PATIENCE = 180.0


def say(message: str) -> None:
    print(message, flush=True)


# --- orosflow serve ----------------------------------------------------------------------------


@dataclass
class Serve:
    """A running ``orosflow serve`` on a temp ``var/``, with a counselor's API token."""

    var: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    portal: str
    prefect_api: str
    token: str
    _sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: dict[str, tuple[str, float]] = field(default_factory=dict)

    @property
    def mail_dir(self) -> Path:
        return self.var / "mail"

    def submit(self, probe: bool = False) -> tuple[str, float, float]:
        """POST the example form about a child not sent before; returns (reference, wall time
        at submit, seconds taken). A ``probe`` is marked for :meth:`probes_answered_in`."""
        with self._lock:
            self._sent += 1
            body = distinct_form(self._sent)
        body["reporter"]["email"] = COUNSELOR_EMAIL
        req = urllib.request.Request(
            f"{self.portal}/api/v1/reports" + ("?probe=1" if probe else ""),
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        at, started = time.time(), time.perf_counter()
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 (loopback)
            receipt = json.loads(resp.read())
        return receipt["reports"][0]["reference"], at, time.perf_counter() - started

    def mails(self) -> dict[str, float]:
        """Reference → when its first mail was stored (the .eml's mtime). Each file is read
        once: this client shares the machine with serve, and re-reading every mail four times
        a second took a quarter of a core from it by the end of a burst of 200."""
        out: dict[str, float] = {}
        for path in self.mail_dir.glob("*.eml"):
            if path.name not in self._seen:
                with path.open("rb") as fh:
                    msg = email.message_from_binary_file(fh, policy=email.policy.default)
                if msg["X-Orosflow-Reference"] is None:
                    continue  # not a notification, or (an older capture) still being written
                self._seen[path.name] = (str(msg["X-Orosflow-Reference"]), path.stat().st_mtime)
            ref, stored = self._seen[path.name]
            out[ref] = min(out.get(ref, float("inf")), stored)
        return out

    def wait_for_mails(self, refs: set[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.mails()
            if refs <= got.keys() or time.monotonic() > deadline:
                return {r: got[r] for r in refs if r in got}
            time.sleep(0.25)

    def probes_answered_in(self) -> list[float]:
        """Seconds the portal took to answer each probe, by its access log (the client's
        figure adds its own share of the machine)."""
        log = self.var / "log" / "portal.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return [int(t) / 1000 for t in PROBE_ANSWERED.findall(text)]

    def sweeps_since(self, since: float) -> int | None:
        """Escalation sweeps that started after ``since`` (epoch s), or None when the Prefect
        server did not answer in SWEEPS_PATIENCE s (the "before" case's hundred new
        interpreters can hold it that long; the burst's other figures still count).
        A sweep sends every queued mail from one process: a burst it meets drains in
        seconds, not through its flow runs, so the drain's figures say so."""
        deadline = time.monotonic() + SWEEPS_PATIENCE
        while True:
            try:
                return self._sweeps_since(since)
            except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
                if time.monotonic() > deadline:
                    say(f"    escalation sweeps not counted: {type(exc).__name__}: {exc}")
                    return None
                time.sleep(5)

    def _sweeps_since(self, since: float) -> int:
        body = {
            "flows": {"name": {"any_": ["escalate-overdue"]}},
            "flow_runs": {
                # Runs scheduled ahead count by when they are expected to start (Prefect's
                # filter), so only those that started, up to now.
                "start_time": {
                    "after_": datetime.fromtimestamp(since, UTC).isoformat(),
                    "before_": datetime.now(UTC).isoformat(),
                },
                "state": {"type": {"not_any_": ["SCHEDULED", "PENDING"]}},
            },
        }
        req = urllib.request.Request(
            f"{self.prefect_api}/flow_runs/filter",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback)
            return len(json.loads(resp.read()))

    def count_503(self) -> int:
        """503s the Prefect server answered: it logs each (PREFECT_SERVER_LOG_RETRYABLE_ERRORS,
        set by :func:`start_serve`); its clients retry them silently after 2, 4, 8 … s."""
        log = self.var / "log" / "prefect-server.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return text.count(RETRYABLE)


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "orosflow.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return out.stdout


def _wait(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve ended (code {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def start_serve(root: Path, extra_env: dict[str, str] | None = None) -> Serve:
    """Start ``orosflow serve`` under ``root`` and wait until it takes reports."""
    var = root / "var"
    prefect_port, portal_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OROSFLOW_", "PREFECT_"))},
        "OROSFLOW_VAR_DIR": str(var),
        "OROSFLOW_SMTP_HOST": "127.0.0.1",
        "OROSFLOW_SMTP_PORT": str(free_port()),
        "OROSFLOW_PREFECT_PORT": str(prefect_port),
        "OROSFLOW_PORTAL_PORT": str(portal_port),
        "OROSFLOW_PORTAL_URL": f"http://127.0.0.1:{portal_port}",
        "PREFECT_HOME": str(var / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",  # count the 503s (and see why)
        **(extra_env or {}),
    }
    _cli(
        env,
        "users",
        "add",
        "kurator",
        "--role",
        "counselor",
        "--name",
        "Kurator",
        "--email",
        COUNSELOR_EMAIL,
        "--password-stdin",
        stdin="kurator-losenord-123\n",
    )
    token = json.loads(_cli(env, "users", "token", "kurator", "--name", "bench"))["token"]
    var.mkdir(parents=True, exist_ok=True)
    out = (var / "serve.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orosflow.cli.main", "serve"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    portal = f"http://127.0.0.1:{portal_port}"
    api = env["PREFECT_API_URL"]
    _wait(f"{portal}/healthz", 300, proc)
    # Reports are taken at once, but their runs need serve's deployments to exist.
    _wait(f"{api}/deployments/name/concern-report/concern-report", 300, proc)
    return Serve(var, env, proc, portal, api, token)


def stop_serve(serve: Serve) -> None:
    """Ctrl-C for serve, then whatever it left: its flow-run processes outlive a killed serve,
    so the tree is taken before the signal."""
    tree = descendants(serve.proc.pid)[1:]
    if serve.proc.poll() is None:
        os.killpg(serve.proc.pid, signal.SIGINT)
        try:
            serve.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(serve.proc.pid, signal.SIGKILL)
            serve.proc.wait()
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# --- the measurements ----------------------------------------------------------------------------


def one_at_a_time(serve: Serve, n: int) -> tuple[list[float], list[float]]:
    """Time-to-notify and receipt time of ``n`` reports, each after the one before is mailed."""
    notify, receipts = [], []
    for _ in range(n):
        ref, at, took = serve.submit()
        receipts.append(took)
        got = serve.wait_for_mails({ref}, 120)
        if ref in got:
            notify.append(got[ref] - at)
    return notify, receipts


@dataclass
class Burst:
    notify: list[float]
    receipts: list[float]
    probe_receipts: list[float]
    missing: int
    drain: float
    peak_rss: int
    peak_pss: int
    peak_runs: int
    peak_run_rss: int
    http_503: int
    #: Submissions (burst and probes) the portal gave no receipt for within 60 s.
    no_receipt: int = 0
    #: The probes as the portal's access log timed them (seconds).
    probe_answers: list[float] = field(default_factory=list)
    #: Escalation sweeps during the drain (each sends every queued mail at once); None: the
    #: Prefect server did not say.
    sweeps: int | None = 0
    #: When each probe was sent, seconds after the burst's last receipt.
    probe_at: list[float] = field(default_factory=list)

    def slowest_probes(self, n: int = 3) -> str:
        """The probes that make the p95 (with ~50 probes, the third slowest is it), and when:
        a tail that sits right after the burst is the portal still starting its runs."""
        worst = sorted(zip(self.probe_receipts, self.probe_at, strict=True), reverse=True)[:n]
        return ", ".join(f"{took * 1000:.0f} ms at +{at:.1f} s" for took, at in worst)


def burst(serve: Serve, n: int, sampler: Sampler, timeout: float = 900) -> Burst:
    before_503 = serve.count_503()
    sampler.reset()
    start = threading.Barrier(n)

    def attempt(probe: bool = False) -> tuple[str | None, float, float]:
        """A submission; a receipt not given within the client's 60 s counts as none."""
        at, started = time.time(), time.perf_counter()
        try:
            return serve.submit(probe)
        except OSError:  # a timeout or a refused connection: the portal did not answer
            return None, at, time.perf_counter() - started

    def one() -> tuple[str | None, float, float]:
        start.wait()
        return attempt()

    t0 = time.time()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda _: one(), range(n)))
    refs = {ref: at for ref, at, _ in results if ref is not None}
    no_receipt = sum(ref is None for ref, _, _ in results)
    # While the burst drains: more reports, PROBE_EVERY s apart, to time receipts under load.
    probes: list[float] = []
    probe_at: list[float] = []
    deadline = time.monotonic() + timeout
    received = time.monotonic()
    while len(probes) < MAX_PROBES and not refs.keys() <= serve.mails().keys():
        probe_at.append(time.monotonic() - received)
        ref, at, took = attempt(probe=True)
        probes.append(took)
        no_receipt += ref is None
        time.sleep(PROBE_EVERY)
    got = serve.wait_for_mails(set(refs), max(0.0, deadline - time.monotonic()))
    return Burst(
        notify=[got[r] - at for r, at in refs.items() if r in got],
        receipts=[took for _, _, took in results],
        probe_receipts=probes,
        missing=len(refs) - len(got),
        no_receipt=no_receipt,
        drain=max(got.values(), default=t0) - t0,
        peak_rss=sampler.peak_rss,
        peak_pss=sampler.peak_pss,
        peak_runs=sampler.peak_runs,
        peak_run_rss=sampler.peak_run_rss,
        http_503=serve.count_503() - before_503,
        probe_answers=serve.probes_answered_in(),
        sweeps=serve.sweeps_since(t0),
        probe_at=probe_at,
    )


def secs(values: list[float]) -> str:
    """p50 / p95 in seconds (milliseconds when short)."""
    if not values:
        return "–"
    return " / ".join(
        ms(q) if q < 1 else f"{q:.1f} s" for q in (percentile(values, 50), percentile(values, 95))
    )


@dataclass
class Case:
    """One start of serve with its settings, and what it measured."""

    title: str
    env: dict[str, str]
    ready_after: float = 0.0
    single: list[float] = field(default_factory=list)
    single_receipts: list[float] = field(default_factory=list)
    burst_size: int = 0
    burst: Burst | None = None


def run_case(case: Case, single: int, burst_size: int, keep: bool = False) -> Case:
    """Start serve with ``case.env``, measure, stop it (and remove its temp dir)."""
    root = Path(tempfile.mkdtemp(prefix="orosflow-bench-serve-"))
    started = time.perf_counter()
    say(f"[{case.title}] starting orosflow serve in {root} …")
    serve = start_serve(root, case.env)
    case.ready_after = time.perf_counter() - started
    say(f"  taking reports after {case.ready_after:.1f} s")
    sampler = Sampler(serve.proc.pid)
    try:
        if single:
            case.single, case.single_receipts = one_at_a_time(serve, single)
            say(
                f"  one at a time ({len(case.single)}/{single}): time-to-notify p50 / p95 "
                f"{secs(case.single)}, max {max(case.single, default=0):.1f} s; "
                f"receipts {secs(case.single_receipts)}"
            )
        if burst_size:
            case.burst_size = burst_size
            case.burst = b = burst(serve, burst_size, sampler)
            say(
                f"  burst of {burst_size} at once: {burst_size - b.missing} notified, "
                f"{b.missing} missing, all within {b.drain:.1f} s"
            )
            say(f"    time-to-notify p50 / p95 {secs(b.notify)}")
            say(
                f"    receipts of the burst p50 / p95 {secs(b.receipts)}; during the drain "
                f"({len(b.probe_receipts)} probes) {secs(b.probe_receipts)}, answered by the "
                f"portal in {secs(b.probe_answers)}"
            )
            say(f"    slowest probes (after the burst's last receipt): {b.slowest_probes()}")
            if b.sweeps:
                say(
                    f"    escalation sweeps during the drain: {b.sweeps} (a sweep sends every "
                    "queued mail at once: the drain is shorter than its flow runs alone make it)"
                )
            say(f"    HTTP 503 in the logs: {b.http_503}; no receipt within 60 s: {b.no_receipt}")
            say(
                f"    peak RSS of serve and its descendants: {mib(b.peak_rss)} "
                f"(PSS, shared pages once: {mib(b.peak_pss)}); "
                f"most flow-run processes at once: {b.peak_runs} "
                f"(largest {mib(b.peak_run_rss)})"
            )
    finally:
        sampler.stop()
        stop_serve(serve)
        if keep:
            say(f"  logs kept in {root / 'var' / 'log'} and {root / 'var' / 'serve.out'}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return case


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--single", type=int, default=5)
    parser.add_argument("--limit", type=int, help="OROSFLOW_FLOW_RUN_LIMIT (default: serve's)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the case this many times (a fresh serve each) and pool the probes: one "
        "burst's p95 is its third-slowest probe",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra env for serve"
    )
    parser.add_argument(
        "--doc",
        action="store_true",
        help="run the three cases of docs/benchmarks.md (now, before, 200) and write its section",
    )
    args = parser.parse_args(argv)
    # A kill (or Ctrl-C of a background job, which ignores SIGINT) still stops serve below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.doc:
        from benchmarks.serve_doc import DOC, DOC_CASES, section, write_doc

        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        cases = [
            run_case(Case(title, env), single, size, args.keep)
            for title, env, single, size in DOC_CASES
        ]
        write_doc(section(cases, load))
        say(f"wrote the serve section of {DOC.relative_to(ROOT)}")
        return 0
    extra = dict(item.split("=", 1) for item in args.env)
    if args.limit:
        extra["OROSFLOW_FLOW_RUN_LIMIT"] = str(args.limit)
    cases = [
        run_case(Case(f"serve {i + 1}/{args.repeat}", extra), args.single, args.burst, args.keep)
        for i in range(args.repeat)
    ]
    if args.repeat > 1 and args.burst:
        say(pooled_probes(cases))
    return 0


def pooled_probes(cases: list[Case]) -> str:
    """The probes of every burst as one sample: a p95 that one slow probe cannot move."""
    client = [t for c in cases if c.burst for t in c.burst.probe_receipts]
    portal = [t for c in cases if c.burst for t in c.burst.probe_answers]
    return (
        f"probes of {len(cases)} bursts pooled ({len(client)}): p50 / p95 {secs(client)}, "
        f"answered by the portal in {secs(portal)}"
    )


if __name__ == "__main__":
    sys.exit(main())
