"""``make bench-sustained``: a steady stream of reports for minutes, set up as docs/deploy.md.

Issue 13, item 5: at least 5 reports/s for 10 minutes on PostgreSQL (app and Prefect), with
0 lost and 0 duplicates. In a temp workspace this starts

- a Prefect server (``prefect server start``, as deploy step 4) on a scratch PostgreSQL
  database, UI off;
- the portal (``orosflow portal``, step 8) on a second scratch PostgreSQL database, with a
  counselor account and an API token;
- an SMTP capture on loopback (aiosmtpd, ``orosflow.core.smtp_capture``) that notes when each
  message arrived;
- ``--runners`` × ``orosflow runner`` (prefect.yaml's deployments served, flow runs forked
  from a preloaded fork server, the reconciler inside), each with
  ``OROSFLOW_FLOW_RUN_LIMIT=--limit``; or with ``--worker process`` the process work pool of
  deploy steps 5, 7 and 9 (``prefect deploy --all``, ``--runners`` × ``prefect worker start
  --limit``, one ``orosflow reconcile``).

After a warm-up (3 reports one at a time, not counted) and 10 s of idle CPU, it posts the
example form to ``POST /api/v1/reports`` at ``--rate`` per second for ``--duration`` seconds,
open loop: report *i* is due at ``start + i / rate`` whatever became of the ones before, and
its receipt and time-to-notify count from when it was due. A progress line every 10 s; then
it waits up to ``--drain`` seconds for the backlog and for every flow run to end, and prints
the figures (counting in ``benchmarks.sustained_tally``) and the verdict. Everything it
started is stopped and both databases are dropped at the end, also on error or Ctrl-C.

Usage::

    .venv/bin/python -m benchmarks.sustained --rate 5 --duration 600 --runners 1 --limit 4
        [--worker runner|process] [--drain 300] [--json FILE] [--doc] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.proc_tree import (
    CLK_TCK,
    cpu_seconds,
    descendants,
    is_flow_run,
    machine_cpu,
    postmaster_pid,
    proc_stat,
    pss_bytes,
    rss_bytes,
    tree_cpu,
)
from benchmarks.stats import ms
from benchmarks.sustained_stack import (
    COUNSELOR_EMAIL,
    ROOT,
    Capture,
    World,
    child_env,
    counselor_token,
    create_databases,
    pause_sweep,
    say,
    start_flow_side,
    start_portal,
    start_prefect,
    stop_child,
)
from benchmarks.sustained_tally import (
    Costs,
    Submission,
    backlog,
    bound,
    cpu_ceiling,
    first_mails,
    quantiles,
    tally,
)

#: What Prefect's server logs for each request it answers 503.
RETRYABLE = "Encountered retryable exception in request"
#: The portal's line when a flow run could not be created in ``trigger_timeout``.
NOT_CREATED = "not created:"
PROGRESS_EVERY = 10.0


def secs(value: float) -> str:
    """A duration as ms under a second, else seconds."""
    if math.isnan(value):
        return "–"
    return ms(value) if value < 1 else f"{value:.1f} s"


# --- the load -------------------------------------------------------------------------------


class Portal:
    """Posts the example form with the counselor's token (httpx, one connection pool)."""

    def __init__(self, world: World, token: str) -> None:
        import httpx

        self.url = f"{world.portal}/api/v1/reports"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.client = httpx.AsyncClient(
            timeout=60,
            # uvicorn closes a connection idle for 5 s; a POST sent on it as it closes fails
            # with ReadError (2 of 3000 at 5/s), which is the client's race, not the portal's.
            limits=httpx.Limits(
                max_connections=1000, max_keepalive_connections=50, keepalive_expiry=2.0
            ),
        )
        self.sent = 0

    def body(self) -> bytes:
        """The next form, each about another child: one child's form again and again would
        measure the duplicate guard, which makes such reports wait for each other by design."""
        from benchmarks.workload import distinct_form

        form = distinct_form(self.sent % 10_000)
        form["reporter"]["email"] = COUNSELOR_EMAIL
        form["confirm_duplicate"] = True  # only past 10,000 reports does a child come again
        self.sent += 1
        return json.dumps(form).encode()

    async def submit(self, due: float) -> Submission:
        import httpx

        try:
            resp = await self.client.post(self.url, content=self.body(), headers=self.headers)
        except httpx.HTTPError as exc:
            return Submission(due, time.time(), None, type(exc).__name__)
        answered = time.time()
        if resp.status_code not in (200, 201):
            return Submission(due, answered, None, f"HTTP {resp.status_code}")
        return Submission(due, answered, resp.json()["reports"][0]["reference"])

    async def close(self) -> None:
        await self.client.aclose()


async def warm_up(portal: Portal, capture: Capture, n: int = 3) -> dict[str, float]:
    """A few reports one at a time, each to its mail: the whole path works before the load.
    Returns reference → time-to-notify."""
    out: dict[str, float] = {}
    for _ in range(n):
        s = await portal.submit(time.time())
        if s.reference is None:
            raise RuntimeError(f"warm-up report refused: {s.error}")
        deadline = time.monotonic() + 180
        while s.reference not in first_mails(capture.mails):
            if time.monotonic() > deadline:
                raise RuntimeError(f"warm-up report {s.reference} not mailed within 180 s")
            await asyncio.sleep(0.2)
        out[s.reference] = first_mails(capture.mails)[s.reference] - s.due
    return out


#: Reports sent one at a time, each waited for, to measure what one report costs through its
#: own flow run with nothing else going on.
CALIBRATION = 10


async def calibrate(
    portal: Portal,
    capture: Capture,
    world: World,
    postmaster: int | None,
    idle: dict[str, float],
) -> dict[str, Any]:
    """CPU per part of one report through the portal and its own flow run, one at a time
    (less the idle rate): the cost that bounds the rate, measured before the load."""
    before = cpu_now(world, postmaster)
    done = await warm_up(portal, capture, CALIBRATION)
    used = delta(before, cpu_now(world, postmaster))
    wall = used["machine total"] / (os.cpu_count() or 1)
    idle_wall = idle["machine total"] / (os.cpu_count() or 1)
    parts = [k for k in used if k not in ("machine", "machine total", "benchmark")]
    per = {
        k: max(0.0, (used[k] - idle.get(k, 0.0) / idle_wall * wall) / CALIBRATION) for k in parts
    }
    return {"cpu_per_report": per, "notify": quantiles(list(done.values())), "refs": done}


@dataclass
class Sample:
    """The peaks the sampler saw."""

    rss: dict[str, int] = field(default_factory=Counter)
    pss: dict[str, int] = field(default_factory=Counter)
    runs: int = 0


class Sampler:
    """Every 2 s: RSS and PSS of each role's tree (peaks of the sums), flow runs alive."""

    def __init__(self, world: World, interval: float = 2.0) -> None:
        self.world, self.interval = world, interval
        self.peak = Sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            rss: Counter[str] = Counter()
            pss: Counter[str] = Counter()
            runs = 0
            for child in self.world.children:
                group = "prefect-server" if child.role == "prefect-server" else "orosflow"
                for pid in descendants(child.proc.pid):
                    rss[group] += rss_bytes(pid)
                    pss[group] += pss_bytes(pid)
                    runs += is_flow_run(pid)
            for key in ("orosflow", "prefect-server"):
                self.peak.rss[key] = max(self.peak.rss[key], rss[key])
                self.peak.pss[key] = max(self.peak.pss[key], pss[key])
            self.peak.rss["all"] = max(self.peak.rss["all"], sum(rss.values()))
            self.peak.pss["all"] = max(self.peak.pss["all"], sum(pss.values()))
            self.peak.runs = max(self.peak.runs, runs)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def part_of(role: str) -> str:
    """Which part a child's own CPU counts for (its flow runs count apart)."""
    for prefix, part in (("runner", "runner"), ("worker", "worker"), ("reconciler", "reconciler")):
        if role.startswith(prefix):
            return part
    return role


def own_cpu(pid: int) -> float:
    """CPU of ``pid`` alone (utime, stime), without the children it reaped."""
    f = proc_stat(pid)
    return sum(int(x) for x in f[11:13]) / CLK_TCK if f else 0.0


def flow_run_detail(world: World) -> dict[str, float]:
    """User and system CPU seconds and minor page faults of everything below the runners or
    workers (their flow runs, reaped or alive): where a run's process cost goes."""
    out: Counter[str] = Counter()
    for child in world.children:
        if part_of(child.role) not in ("runner", "worker"):
            continue
        for pid in descendants(child.proc.pid)[1:]:
            f = proc_stat(pid)
            if f:
                out["user"] += (int(f[11]) + int(f[13])) / CLK_TCK
                out["system"] += (int(f[12]) + int(f[14])) / CLK_TCK
                out["faults"] += int(f[7]) + int(f[8])
        f = proc_stat(child.proc.pid)
        if f:  # runs the worker itself reaped
            out["user"] += int(f[13]) / CLK_TCK
            out["system"] += int(f[14]) / CLK_TCK
            out["faults"] += int(f[8])
    return dict(out)


def cpu_now(world: World, postmaster: int | None) -> dict[str, float]:
    """CPU seconds so far per part, PostgreSQL (the whole server) and the machine. A runner's
    or worker's own process is its part; everything below it — the fork server and the runs
    it forked, or the worker's runs, reaped or alive — is "flow runs"."""
    out: Counter[str] = Counter()
    for child in world.children:
        part = part_of(child.role)
        total = tree_cpu(child.proc.pid)
        if part in ("runner", "worker"):
            own = own_cpu(child.proc.pid)
            out[part] += own
            out["flow runs"] += total - own
        else:
            out[part] += total
    if postmaster:
        out["PostgreSQL"] = tree_cpu(postmaster)
    out["machine"], out["machine total"] = machine_cpu()
    out["benchmark"] = cpu_seconds(os.getpid())
    return dict(out)


def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: b.get(k, 0.0) - a.get(k, 0.0) for k in b}


async def offer(
    portal: Portal, capture: Capture, rate: float, duration: float
) -> tuple[list[Submission], float]:
    """Open loop: report *i* is posted at ``start + i / rate`` (never later because an earlier
    one is slow); a progress line every 10 s. Returns the submissions and the start."""
    loop = asyncio.get_running_loop()
    n = round(rate * duration)
    start, start_mono = time.time() + 0.5, loop.time() + 0.5
    tasks: list[asyncio.Task[Submission]] = []

    async def progress() -> None:
        shown = 0
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            done = [t.result() for t in tasks if t.done()]
            recent = sorted(s.receipt for s in done[shown:] if s.receipt is not None)
            shown = len(done)
            firsts = first_mails(capture.mails)
            p95 = recent[max(0, math.ceil(0.95 * len(recent)) - 1)] if recent else math.nan
            failed = sum(1 for s in done if s.reference is None)
            say(
                f"submitted {len(tasks)} ({failed} failed), notified "
                f"{sum(1 for s in done if s.reference in firsts)}, backlog "
                f"{backlog(done, firsts, time.time())}, receipt p95 {secs(p95)} (last 10 s), "
                f"load {os.getloadavg()[0]:.1f}"
            )

    reporter = asyncio.ensure_future(progress())
    try:
        for i in range(n):
            wait = start_mono + i / rate - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.ensure_future(portal.submit(start + i / rate)))
        submissions = list(await asyncio.gather(*tasks))
    finally:
        reporter.cancel()
    return submissions, start


async def unfinished_runs(world: World) -> int:
    """concern-report runs not yet in a final state (scheduled, pending, running …)."""
    import httpx

    body = {
        "flows": {"name": {"any_": ["concern-report"]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED", "PENDING", "RUNNING"]}}},
    }
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(f"{world.api}/flow_runs/count", json=body)
        resp.raise_for_status()
        return int(resp.json())


async def drain(
    world: World, submissions: list[Submission], capture: Capture, limit: float
) -> float:
    """Wait until every accepted report is mailed and no concern-report run is unfinished, at
    most ``limit`` s; then 5 s more, for a late duplicate. Returns seconds waited."""
    started = time.monotonic()
    refs = {s.reference for s in submissions if s.reference}
    shown = started
    while time.monotonic() - started < limit:
        left = len(refs - first_mails(capture.mails).keys())
        if not left:
            try:
                if await unfinished_runs(world) == 0:
                    break
            except Exception:  # noqa: BLE001 - the server is busy: ask again
                pass
        if time.monotonic() - shown >= PROGRESS_EVERY:
            shown = time.monotonic()
            say(f"  draining: {left} not yet mailed, load {os.getloadavg()[0]:.1f}")
        await asyncio.sleep(1)
    waited = time.monotonic() - started
    await asyncio.sleep(5)
    return waited


async def flow_runs(world: World) -> list[dict[str, Any]]:
    """Every concern-report run's name (the reference), state and times."""
    import httpx

    out: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=60) as client:
        while True:
            resp = await client.post(
                f"{world.api}/flow_runs/filter",
                json={
                    "flows": {"name": {"any_": ["concern-report"]}},
                    "sort": "EXPECTED_START_TIME_ASC",
                    "limit": 200,
                    "offset": len(out),
                },
            )
            resp.raise_for_status()
            page = resp.json()
            out.extend(page)
            if len(page) < 200:
                return out


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def run_phases(runs: list[dict[str, Any]], due: dict[str, float]) -> dict[str, Any]:
    """Per report, from its first run: due → run created, created → started (a free slot and
    the runner's poll), started → ended; and the runs per report and their final states."""
    first: dict[str, dict[str, Any]] = {}
    per_ref: Counter[str] = Counter()
    states: Counter[str] = Counter()
    why: Counter[str] = Counter()
    for r in runs:
        name = r.get("name")
        if name not in due:
            continue
        per_ref[name] += 1
        states[r.get("state_type") or "?"] += 1
        if r.get("state_type") != "COMPLETED":
            message = ((r.get("state") or {}).get("message") or "")[:160]
            why[f"{r.get('state_type')}: {message}"] += 1
        if name not in first or (_ts(r["created"]) or 0) < (_ts(first[name]["created"]) or 0):
            first[name] = r
    create, wait, run = [], [], []
    for ref, r in first.items():
        created, begun, ended = (
            _ts(r.get("created")),
            _ts(r.get("start_time")),
            _ts(r.get("end_time")),
        )
        if created:
            create.append(created - due[ref])
        if created and begun:
            wait.append(begun - created)
        if begun and ended:
            run.append(ended - begun)
    return {
        "create": quantiles(create),
        "wait": quantiles(wait),
        "run": quantiles(run),
        "reports_with_restarts": sum(1 for n in per_ref.values() if n > 1),
        "runs": sum(per_ref.values()),
        "states": dict(states),
        "not_completed": dict(why.most_common(5)),
    }


def still_queued(world: World, refs: list[str]) -> set[str]:
    """Of ``refs`` (no mail yet), those whose mail is still queued in the outbox: durable,
    a later run mails them (late, not lost)."""
    if not refs:
        return set()
    from sqlalchemy import bindparam, create_engine, text

    from orosflow.core.db import normalise_url

    engine = create_engine(normalise_url(world.env["OROSFLOW_DATABASE_URL"]))
    query = text(
        "SELECT DISTINCT r.reference FROM report r JOIN lifecycle_mail m ON m.report_id = r.id "
        "WHERE m.sent_at IS NULL AND r.reference IN :refs"
    ).bindparams(bindparam("refs", expanding=True))
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(query, {"refs": refs})}
    finally:
        engine.dispose()


def reconciler_starts(world: World) -> int:
    """Runs the reconcilers started (their "reconcile: … N runs started" lines)."""
    import re

    total = 0
    for child in world.children:
        if child.role.startswith(("runner", "reconciler")) and child.log.exists():
            text = child.log.read_text(errors="replace")
            total += sum(int(n) for n in re.findall(r"reconcile: .*?(\d+) runs started", text))
    return total


def mailed_by_sweep(world: World, refs: list[str]) -> set[str]:
    """Of ``refs``, those whose mail the escalation sweep sent (it claims without an owner; a
    report's own flow run claims with its run id)."""
    if not refs:
        return set()
    from sqlalchemy import bindparam, create_engine, text

    from orosflow.core.db import normalise_url

    engine = create_engine(normalise_url(world.env["OROSFLOW_DATABASE_URL"]))
    query = text(
        "SELECT DISTINCT r.reference FROM report r JOIN lifecycle_mail m ON m.report_id = r.id "
        "WHERE m.sent_at IS NOT NULL AND m.claimed_by IS NULL AND r.reference IN :refs"
    ).bindparams(bindparam("refs", expanding=True))
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(query, {"refs": refs})}
    finally:
        engine.dispose()


def count_in_logs(world: World, text: str, roles: tuple[str, ...]) -> int:
    total = 0
    for child in world.children:
        if child.role.startswith(roles) and child.log.exists():
            total += child.log.read_text(errors="replace").count(text)
    return total


# --- the whole run --------------------------------------------------------------------------------


def stop_all(world: World) -> None:
    """The flow side first (it holds runs), then the portal, then the Prefect server."""
    for child in reversed(world.children):
        stop_child(child)


def measure(
    args: argparse.Namespace, rate: float, world: World, stack: ExitStack
) -> dict[str, Any]:
    """Set up, load, drain, count. ``stack`` undoes it in reverse: capture, processes,
    databases."""
    create_databases(world, stack)
    stack.callback(stop_all, world)
    world.env = child_env(world) | dict(item.split("=", 1) for item in args.env)
    capture = Capture(world.root / "mail", world.smtp_port)
    stack.callback(capture.stop)
    say("starting the Prefect server, the portal and the flow side …")
    start_prefect(world)
    token = counselor_token(world)
    start_portal(world)
    started = time.perf_counter()
    start_flow_side(world, args.worker, args.runners, args.limit)
    say(f"  {args.runners} × {args.worker} up after {time.perf_counter() - started:.1f} s")
    if not args.sweep:
        pause_sweep(world)
        say("  escalate-overdue paused: every mail comes from the report's own run")
    return asyncio.run(_measure(args, rate, world, capture, token))


async def _measure(
    args: argparse.Namespace, rate: float, world: World, capture: Capture, token: str
) -> dict[str, Any]:
    portal = Portal(world, token)
    try:
        warm = await warm_up(portal, capture)
        shown = ", ".join(secs(t) for t in warm.values())
        say(f"warm-up: 3 reports one at a time, time-to-notify {shown}")
        postmaster = postmaster_pid()
        idle_from = cpu_now(world, postmaster)
        await asyncio.sleep(10)
        idle_to = cpu_now(world, postmaster)
        idle = delta(idle_from, idle_to)
        calibration = await calibrate(portal, capture, world, postmaster, idle)
        warm |= calibration.pop("refs")
        say(
            f"one at a time ({CALIBRATION} reports): time-to-notify p50 "
            f"{secs(calibration['notify'][0])}, CPU per report "
            f"{sum(calibration['cpu_per_report'].values()) * 1000:.0f} ms"
        )
        sampler = Sampler(world)
        load_at_start = os.getloadavg()
        say(
            f"offering {rate:g} reports/s for {args.duration:.0f} s "
            f"({round(rate * args.duration)} reports), open loop …"
        )
        cpu_start = cpu_now(world, postmaster)
        detail_start = flow_run_detail(world)
        submissions, start = await offer(portal, capture, rate, args.duration)
        say(f"offer done; draining (at most {args.drain:.0f} s) …")
        waited = await drain(world, submissions, capture, args.drain)
        cpu_end = cpu_now(world, postmaster)
        detail = delta(detail_start, flow_run_detail(world))
        sampler.stop()
        runs = await flow_runs(world)
        unmailed = (
            set(s.reference for s in submissions if s.reference) - first_mails(capture.mails).keys()
        )
        queued = await asyncio.to_thread(still_queued, world, sorted(unmailed))
        refs = sorted(s.reference for s in submissions if s.reference)
        swept = await asyncio.to_thread(mailed_by_sweep, world, refs)
    finally:
        await portal.close()
    mails = [m for m in capture.mails if m.reference not in warm]
    t = tally(submissions, mails, start, args.duration, swept)
    due = {s.reference: s.due for s in submissions if s.reference}
    phases = run_phases(runs, due)
    used = delta(cpu_start, cpu_end)
    wall = used.pop("machine total") / os.cpu_count()  # seconds of the window
    idle_wall = idle["machine total"] / os.cpu_count()
    ours = [k for k in used if k not in ("machine", "machine total", "benchmark")]
    per_report = {k: used[k] / max(1, t.notified) for k in ours}
    idle_rate = sum(idle[k] for k in ours) / idle_wall
    others = max(0.0, (used["machine"] - sum(used[k] for k in ours) - used["benchmark"]) / wall)
    # The idle work (services, polls) is in the window too: take it out of the per-report cost.
    for k in ours:
        per_report[k] = max(0.0, (used[k] - idle[k] / idle_wall * wall) / max(1, t.notified))
    costs = Costs(
        cores=os.cpu_count() or 1,
        cpu_per_report=calibration["cpu_per_report"],
        idle=idle_rate,
        others=others,
        run_slots=args.runners * args.limit,
        run_seconds=phases["run"][0],
        slot_wait=phases["wait"][0],
        receipt_p95=quantiles(t.receipts)[1],
    )
    return {
        "config": {
            "rate": rate,
            "duration": args.duration,
            "runners": args.runners,
            "limit": args.limit,
            "worker": args.worker,
            "sweep": args.sweep,
            "drain_limit": args.drain,
            "cores": os.cpu_count(),
            "load_at_start": list(load_at_start),
        },
        "offered": t.offered,
        "offered_rate": t.offered_rate,
        "accepted": t.accepted,
        "failed": t.failed,
        "errors": dict(t.errors),
        "notified": t.notified,
        "achieved_rate": t.achieved_rate,
        "steady_rate": t.steady_rate,
        "run_rate": t.run_rate,
        "by_sweep": t.by_sweep,
        "calibration": calibration,
        "unmailed": len(t.unmailed),
        "queued": len(queued),
        "lost": len(set(t.unmailed) - queued),
        "lost_refs": sorted(set(t.unmailed) - queued)[:20],
        "duplicates": t.duplicates,
        "duplicate_messages": t.duplicate_messages,
        "other_mails": t.other_mails,
        "mail_files": capture.files() - len(warm),
        "mails": len(mails),
        "tail": t.tail,
        "kept_up": t.kept_up,
        "receipt": quantiles(t.receipts),
        "notify": quantiles(t.notify),
        "drain_waited": waited,
        "phases": phases,
        "peak_rss": dict(sampler.peak.rss),
        "peak_pss": dict(sampler.peak.pss),
        "peak_runs": sampler.peak.runs,
        "cpu_per_report": per_report,
        "cpu_rate": {k: used[k] / wall for k in ours},
        "cpu_per_report_total": sum(per_report.values()),
        "flow_run_detail": {k: v / max(1, t.notified) for k, v in detail.items()},
        "cpu_idle_rate": idle_rate,
        "cpu_others_rate": others,
        "machine_busy": used["machine"] / (wall * (os.cpu_count() or 1)),
        "cpu_ceiling": cpu_ceiling(costs),
        "http_503": count_in_logs(world, RETRYABLE, ("prefect-server",)),
        "trigger_timeouts": count_in_logs(world, NOT_CREATED, ("portal",)),
        "reconciler_starts": reconciler_starts(world),
        "reached": t.reached,
        "bound": bound(costs, t.offered_rate),
    }


def summary(fig: dict[str, Any]) -> list[str]:
    """The figures as lines (console and docs alike)."""
    c = fig["config"]
    r50, r95, _ = fig["receipt"]
    n50, n95, nmax = fig["notify"]
    ph = fig["phases"]
    mib = 2**20
    fr = fig.get("flow_run_detail", {})
    errors = ", ".join(f"{k} × {v}" for k, v in fig["errors"].items())
    cal = fig["calibration"]
    calcpu = ", ".join(
        f"{k} {v * 1000:.0f}"
        for k, v in sorted(cal["cpu_per_report"].items(), key=lambda kv: -kv[1])
    )
    rates = ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(fig["cpu_rate"].items(), key=lambda kv: -kv[1])
    )
    lines = [
        f"set-up: PostgreSQL for app and Prefect, {c['runners']} × "
        + ("`orosflow runner`" if c["worker"] == "runner" else "Prefect process worker")
        + f" with limit {c['limit']}, {c['cores']} cores, load at start "
        + " / ".join(f"{x:.1f}" for x in c["load_at_start"]),
        f"offered: {fig['offered']} reports at {fig['offered_rate']:.2f}/s for "
        f"{c['duration']:.0f} s; receipts {fig['accepted']}, failed {fig['failed']}"
        + (f" ({errors})" if errors else ""),
        f"achieved: {fig['achieved_rate']:.2f} reports/s mailed (second half of the window: "
        f"{fig['steady_rate']:.2f}/s; by their own flow run {fig['run_rate']:.2f}/s); last mail "
        f"{fig['tail']:.1f} s after the last report was due",
        f"mailed by the escalation sweep instead of their own run: {fig['by_sweep']}"
        + ("" if fig["config"]["sweep"] else " (sweep paused)"),
        f"one at a time before the load ({CALIBRATION} reports): time-to-notify p50 "
        f"{secs(cal['notify'][0])}, CPU per report {sum(cal['cpu_per_report'].values()) * 1000:.0f}"
        f" ms ({calcpu})",
        f"receipt (HTTP) p50 / p95: {secs(r50)} / {secs(r95)}",
        f"time-to-notify p50 / p95 / max: {secs(n50)} / {secs(n95)} / {secs(nmax)}",
        f"  of which: due → run created p50 {secs(ph['create'][0])} (p95 "
        f"{secs(ph['create'][1])}), created → started {secs(ph['wait'][0])} "
        f"({secs(ph['wait'][1])}), run {secs(ph['run'][0])} ({secs(ph['run'][1])})",
        f"not mailed by the end: {fig['unmailed']} ({fig['queued']} still queued in the outbox, "
        f"lost {fig['lost']}); duplicates: {fig['duplicates']} reports mailed more than once, "
        f"{fig['duplicate_messages']} repeated Message-IDs ({fig['mails']} mails, "
        f"{fig['mail_files']} files, {fig['other_mails']} for other references)",
        f"flow runs: {ph['runs']} for these reports ({ph['reports_with_restarts']} reports had "
        f"more than one; states {', '.join(f'{k} {v}' for k, v in ph['states'].items())}); "
        f"portal trigger timeouts {fig['trigger_timeouts']}, runs the reconciler started "
        f"{fig['reconciler_starts']}; HTTP 503 {fig['http_503']}",
        *(f"  {n} × {why}" for why, n in ph.get("not_completed", {}).items()),
        f"peak memory: Orosflow processes RSS {fig['peak_rss'].get('orosflow', 0) / mib:.0f} MiB "
        f"/ PSS {fig['peak_pss'].get('orosflow', 0) / mib:.0f} MiB, Prefect server RSS "
        f"{fig['peak_rss'].get('prefect-server', 0) / mib:.0f} MiB / PSS "
        f"{fig['peak_pss'].get('prefect-server', 0) / mib:.0f} MiB; flow runs at once "
        f"{fig['peak_runs']}",
        f"CPU used over load and drain, CPU-s/s: {rates}; "
        "idle work "
        f"{fig['cpu_idle_rate']:.2f} CPU-s/s, other jobs {fig['cpu_others_rate']:.2f} CPU-s/s, "
        f"machine busy {fig['machine_busy'] * 100:.0f}%",
        f"  flow runs per report: user {fr.get('user', 0) * 1000:.0f} ms, system "
        f"{fr.get('system', 0) * 1000:.0f} ms, {fr.get('faults', 0):,.0f} minor page faults",
        verdict(fig),
    ]
    return lines


def shares(fig: dict[str, Any]) -> str:
    """Who had the cores while the mails fell behind: the runs get what the API side (the
    portal and the Prefect server, working for every offered report) and other jobs leave."""
    rate = fig.get("cpu_rate")
    if not rate:
        return ""
    runs = rate.get("flow runs", 0.0) + rate.get("runner", 0.0) + rate.get("worker", 0.0)
    api = rate.get("portal", 0.0) + rate.get("prefect-server", 0.0) + rate.get("PostgreSQL", 0.0)
    return (
        f". Over the run the flow runs and their runner had {runs:.2f} CPU-s/s, the portal, "
        f"Prefect server and PostgreSQL {api:.2f}, other jobs {fig['cpu_others_rate']:.2f} "
        f"(machine busy {fig['machine_busy'] * 100:.0f} %)"
    )


def verdict(fig: dict[str, Any]) -> str:
    """Reached or not, and if not: the measured ceiling and what bounds it."""
    rate = fig["offered_rate"]
    if fig["reached"]:
        return (
            f"verdict: reached — {rate:.2f} reports/s for {fig['config']['duration']:.0f} s, "
            f"0 lost, 0 duplicates; the CPU would allow about {fig['cpu_ceiling']:.1f}/s "
            f"({fig['bound']})"
        )
    if not fig["kept_up"]:
        return (
            f"verdict: not reached — the mails fell behind the offer ({fig['tail']:.0f} s behind "
            f"at the end); measured ceiling about {fig['run_rate']:.2f} reports/s mailed by "
            "their own flow run"
            + (
                f" (the escalation sweep mailed {fig['by_sweep']} others in bulk)"
                if fig["by_sweep"]
                else ""
            )
            + f"; bound: {fig['bound']}"
            + shares(fig)
        )
    return (
        f"verdict: not reached — kept pace, but {fig['unmailed']} not mailed "
        f"({fig['lost']} lost), {fig['duplicates']} "
        f"duplicated, {fig['failed']} without a receipt"
    )


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM cleans up like Ctrl-C."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rate", type=float, nargs="+", default=[5.0], help="reports per second (one run each)"
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--runners", type=int, default=1, help="runners (or workers)")
    parser.add_argument("--limit", type=int, default=4, help="flow runs at once per runner")
    parser.add_argument("--worker", choices=("runner", "process"), default="runner")
    parser.add_argument(
        "--no-sweep",
        dest="sweep",
        action="store_false",
        help="pause escalate-overdue (every 5 min it also sends whatever is queued): measure "
        "one flow run per report alone",
    )
    parser.add_argument("--drain", type=float, default=300.0, help="most seconds to drain")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--doc", action="store_true", help="update docs/benchmarks.md's section")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra env, every process"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    figs = []
    for rate in args.rate:
        try:
            fig = one_run(args, rate)
        except KeyboardInterrupt:
            say("interrupted: everything started was stopped, the databases dropped")
            return 130
        figs.append(fig)
        if args.json:  # first, and after each run: a later one may be interrupted
            args.json.write_text(json.dumps(figs, indent=1), encoding="utf-8")
        print("\nSustained load\n" + "\n".join(f"  {line}" for line in summary(fig)), flush=True)
    if args.doc:
        from benchmarks import report

        report.update_sustained(figs)
        say(f"updated {report.DOC.relative_to(ROOT)}")
    return 0


def one_run(args: argparse.Namespace, rate: float) -> dict[str, Any]:
    """One world, one rate: set up, measure, tear down (also on error and Ctrl-C)."""
    from benchmarks.report import machine

    info = machine()
    world = World(Path(tempfile.mkdtemp(prefix="orosflow-sustained-")))
    with ExitStack() as stack:
        if args.keep:
            stack.callback(say, f"logs kept in {world.root / 'log'}")
        else:
            stack.callback(shutil.rmtree, world.root, ignore_errors=True)
        try:
            fig = measure(args, rate, world, stack)
        finally:  # a second Ctrl-C or SIGTERM must not cut the tear-down short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    fig["measured"] = {"date": info["date"], "commit": info["commit"], "Prefect": info["Prefect"]}
    return fig


if __name__ == "__main__":
    sys.exit(main())
