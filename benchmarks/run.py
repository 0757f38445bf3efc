"""``make bench``: run (a)–(d) on each configuration, print the table, write docs/benchmarks.md.

Order matters on a 2-core machine: the Prefect-free figures (receipts, the plain 500-report
burst) are taken before any Prefect server runs, so nothing else competes for the CPU. Then
one Prefect server per backend (PostgreSQL, then SQLite) serves the columns that use it.
Everything (temp dir, servers, PostgreSQL schema and database) is removed at the end, even on
error or Ctrl-C. With ``BENCH_SUSTAINED=1`` the sustained-load section (``benchmarks.sustained``)
runs last and its figures join the page; without it the page keeps the ones it has.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import ExitStack

from benchmarks import env, overhead, report, sections, workload
from benchmarks.probes import ApiRecorder, FlowProfile, profile_flow_run
from benchmarks.report import Column
from benchmarks.stats import mean, ms, p50_p95
from orosflow.core import prefect_client

N = {
    "receipts": 200,
    # Sequential reports for (b) and (d), per Prefect backend: on SQLite most runs wait ~2 s
    # for a 503 retry, so fewer of them buy the same picture.
    "notify_postgres": 20,
    "notify_sqlite": 15,
    "burst": 500,
    # Reports in the burst sample through Prefect, per Prefect backend: the SQLite-backed
    # server drains about 1 report/s, so a smaller sample keeps the run inside its budget.
    "prefect_burst_postgres": 50,
    "prefect_burst_sqlite": 20,
    "flow_concurrency": 10,
    # The interleaved A/B (plain, Prefect, plain …) on PostgreSQL, per path.
    "overhead": overhead.N,
}
#: Past this many seconds the optional burst samples are skipped (and say so), so that a slow
#: machine still finishes ``make bench`` well inside 10 minutes.
BUDGET_S = 300.0
T0 = time.perf_counter()
#: The run's temp dir, ports and names; set by :func:`main` before anything imports Prefect.
WS: env.Workspace
#: ``--shared-clients``: the overhead section keeps one Prefect client pair for all its runs.
SHARED_CLIENTS = False


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {message}", flush=True)


async def flush_prefect() -> None:
    """Ship buffered logs and events before the server goes away (else they fail loudly)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler

    try:
        await APILogHandler.aflush()
        await asyncio.to_thread(EventsWorker.drain_all, timeout=10)
    except Exception as exc:  # noqa: BLE001  (best effort at shutdown)
        say(f"  (flushing Prefect logs/events failed: {type(exc).__name__})")


def prefect_free_phase(col: Column, apps: env.AppDatabases) -> None:
    """(a) and the plain burst for one app database, with no Prefect server running."""
    apps.select(col.app_db)
    started = time.perf_counter()
    col.receipts = sections.measure_receipts(N["receipts"])
    say(
        f"(a) receipts, {col.title.split(' · ')[0]}: p50 / p95 {p50_p95(col.receipts)} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    started = time.perf_counter()
    col.plain_burst = asyncio.run(
        sections.run_burst(
            workload.notify_plain,
            N["burst"],
            WS.root / f"mail-burst-plain-{col.app_db}",
            notify_concurrency=N["flow_concurrency"],
        )
    )
    b = col.plain_burst
    say(
        f"(c) burst {b.n} plain async, {col.title.split(' · ')[0]}: drain {b.drain:.1f} s, "
        f"{b.throughput:.1f}/s, lost {b.check.lost}, duplicates {b.check.duplicates} "
        f"({time.perf_counter() - started:.1f} s)"
    )


async def profile_isolated_run(backend: str, recorder: ApiRecorder) -> FlowProfile:
    """Profile one flow run with the server quiet (no back-to-back load)."""
    capture = env.TimedCapture(WS.root / f"mail-profile-{backend}")
    try:
        rid, _ = await asyncio.to_thread(workload.submit_one)
        await asyncio.sleep(3)  # let the server finish the previous runs' events and logs
        return await profile_flow_run(lambda: workload.notify_prefect(rid), recorder)
    finally:
        capture.stop()


def redactor_growth() -> dict[str, dict[str, float]]:
    """Run the redactor benchmark in its own interpreter (it fills a process-wide registry)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.redaction", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def over_budget(what: str, col: Column) -> bool:
    """Skip an optional measurement when the run is already long (keeps ``make bench`` short)."""
    if time.perf_counter() - T0 < BUDGET_S:
        return False
    col.notes.append(f"{what} skipped: the run had used its time budget")
    col.prefect_burst_note = "skipped: time budget"
    say(f"  skipping {what}: over the {BUDGET_S:.0f} s budget")
    return True


async def burst_through_prefect(
    col: Column, backend: str, server: env.PrefectServer, recorder: ApiRecorder, label: str
) -> sections.Burst:
    started = time.perf_counter()
    b = await sections.run_burst(
        workload.notify_prefect,
        N[f"prefect_burst_{backend}"],
        WS.root / f"mail-burst-{label}-{col.app_db}-{backend}",
        notify_concurrency=N["flow_concurrency"],
        recorder=recorder,
        server_pgid=server.pgid,
    )
    say(
        f"(c) burst sample {b.n} through Prefect{label and ' (' + label + ')'}, {col.title}: "
        f"drain {b.drain:.1f} s, {b.throughput:.1f}/s, lost {b.check.lost}, duplicates "
        f"{b.check.duplicates}, {b.api_503} × 503 ({time.perf_counter() - started:.1f} s)"
    )
    return b


async def prefect_columns(
    backend: str, cols: list[Column], apps: env.AppDatabases, recorder: ApiRecorder
) -> None:
    """Start one Prefect server on ``backend`` and measure (b), (c) sample, (d) for ``cols``."""
    with ExitStack() as server_stack:
        say(f"starting a Prefect server on {backend} …")
        server = env.start_prefect(WS, backend, server_stack)
        say(f"  Prefect server up after {server.startup:.1f} s")
        try:
            for i, col in enumerate(cols):
                col.server_start = server.startup
                apps.select(col.app_db)
                started = time.perf_counter()
                col.notify = nt = await sections.measure_notify(
                    N[f"notify_{backend}"],
                    WS.root / f"mail-notify-{col.app_db}-{backend}",
                    recorder,
                    server.pgid,
                )
                say(
                    f"(b)+(d) {col.title}: time-to-notify {p50_p95(nt.prefect_to_mail)} "
                    f"(plain {p50_p95(nt.plain_to_mail)}); per report Prefect "
                    f"{ms(mean(nt.prefect_pipeline))} vs plain {ms(mean(nt.plain_pipeline))}; "
                    f"{nt.api_503} × 503 ({time.perf_counter() - started:.1f} s)"
                )
                if i == 0:
                    col.profile = await profile_isolated_run(backend, recorder)
                    say(f"  profiled one isolated flow run: {ms(col.profile.wall)} wall")
                if backend == "postgres" and col.app_db == "postgres":
                    col.overhead = await overhead_section(col.app_db, server, recorder)
                if i > 0:
                    # One burst per server: a second app DB behind the same server measures
                    # the server again (its 503s and CPU), and costs a minute on SQLite.
                    col.prefect_burst_note = "not run: same server as col. 1"
                elif not over_budget("the Prefect burst sample", col):
                    col.prefect_burst = await burst_through_prefect(
                        col, backend, server, recorder, ""
                    )
                if backend == "postgres" and not over_budget("the reused-client burst", col):
                    async with prefect_client.shared_clients():
                        col.shared_client_burst = await burst_through_prefect(
                            col, backend, server, recorder, "one API client reused"
                        )
        finally:
            await flush_prefect()


async def overhead_section(
    app_db: str, server: env.PrefectServer, recorder: ApiRecorder
) -> overhead.Overhead:
    """The interleaved A/B of plain and Prefect runs (``benchmarks/overhead.py``)."""
    started = time.perf_counter()
    result = await overhead.measure_overhead(
        N["overhead"],
        WS.root / f"mail-overhead-{app_db}",
        recorder,
        server.pgid,
        app_db,
        shared_clients=SHARED_CLIENTS,
    )
    say(f"overhead, interleaved A/B ({time.perf_counter() - started:.1f} s):")
    for line in result.lines():
        print("  " + line.removeprefix("- ").replace("**", ""), flush=True)
    return result


async def overhead_only(stack: ExitStack) -> None:
    """``--section overhead``: one PostgreSQL-backed Prefect server, the A/B, nothing else."""
    apps = env.AppDatabases(WS, stack)
    apps.select("postgres")
    recorder = ApiRecorder().install()
    stack.callback(recorder.uninstall)
    with ExitStack() as server_stack:
        say("starting a Prefect server on postgres …")
        server = env.start_prefect(WS, "postgres", server_stack)
        say(f"  Prefect server up after {server.startup:.1f} s")
        try:
            await overhead_section("postgres", server, recorder)
        finally:
            await flush_prefect()


def sustained() -> list[dict] | None:
    """With ``BENCH_SUSTAINED=1``: the sustained-load section (``benchmarks.sustained``, 5
    reports/s for 10 minutes unless ``BENCH_SUSTAINED_ARGS`` says otherwise) in a process of
    its own — it starts its own servers and databases — after this run's servers are gone."""
    if os.environ.get("BENCH_SUSTAINED") != "1":
        return None
    out = WS.root / "sustained.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OROSFLOW_", "PREFECT_"))}
    extra = shlex.split(os.environ.get("BENCH_SUSTAINED_ARGS", ""))
    say(f"— sustained load {' '.join(extra) or '(5/s for 600 s)'} —")
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sustained", "--json", str(out), *extra], env=env
    )
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached it too, a SIGTERM to us did not; either way it tears down its own
        # servers and databases: wait for that (subprocess.run would kill it after 0.25 s).
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise
    if code != 0:
        raise subprocess.CalledProcessError(code, "benchmarks.sustained")
    return json.loads(out.read_text(encoding="utf-8"))


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM cleans up like Ctrl-C: servers stopped, schema and database dropped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    global WS
    parser = argparse.ArgumentParser(description="Orosflow benchmarks (make bench)")
    parser.add_argument(
        "--section",
        choices=["all", "overhead"],
        default="all",
        help="all: every measurement, written to docs/benchmarks.md (default); overhead: "
        "the interleaved plain/Prefect A/B alone, printed only",
    )
    parser.add_argument("-n", type=int, help="runs per path for --section overhead")
    parser.add_argument(
        "--shared-clients",
        action="store_true",
        help="--section overhead: one Prefect client pair for all runs (as a long-lived "
        "process could), instead of new clients per run (as a flow-run process has)",
    )
    args = parser.parse_args(argv)
    if args.n:
        N["overhead"] = args.n
    global SHARED_CLIENTS
    SHARED_CLIENTS = args.shared_clients
    # Prefect reads its settings once, at import: the environment must be set first (no module
    # of this package imports Prefect at import time).
    WS = env.prepare_process_env()
    signal.signal(signal.SIGTERM, _terminate)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` shows a hang
    with ExitStack() as stack:
        stack.callback(env.remove_tree, WS.root)
        try:
            if args.section == "overhead":
                return _overhead_main(stack)
            return _main(stack)
        except KeyboardInterrupt:
            say("interrupted: cleaning up …")
            return 130


def _overhead_main(stack: ExitStack) -> int:
    info = report.machine()
    say("Orosflow overhead A/B: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    import flows.concern_report  # noqa: F401  (as in the full run)

    pg_missing = env.postgres_available()
    if pg_missing:
        say(f"the overhead section needs PostgreSQL: {pg_missing}")
        return 2
    workload.pin_clock()
    asyncio.run(overhead_only(stack))
    return 0


def _main(stack: ExitStack) -> int:
    info = report.machine()
    say("Orosflow benchmarks: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    import flows.concern_report  # noqa: F401  (installs the log redactor for both paths)

    workload.pin_clock()
    apps = env.AppDatabases(WS, stack)
    columns = [Column("sqlite", "sqlite")]
    pg_missing = env.postgres_available()
    if pg_missing:
        say(f"PostgreSQL not reachable, its columns are skipped: {pg_missing}")
    else:
        columns += [Column("postgres", "sqlite"), Column("postgres", "postgres")]

    say("— without Prefect —")
    redactor = redactor_growth()
    say(
        "log redactor, one new report's values registered / one log line with "
        + ", ".join(
            f"{int(k):,} values held: {v['register_s'] * 1e6:.0f} µs / "
            f"{v['redact_line_s'] * 1e6:.0f} µs"
            for k, v in redactor.items()
        )
    )
    for col in columns[:2]:
        prefect_free_phase(col, apps)

    recorder = ApiRecorder().install()
    stack.callback(recorder.uninstall)
    say("— through Prefect —")
    # PostgreSQL first: it is the production setup, so it is never the one the budget cuts.
    for backend in ("postgres", "sqlite"):
        cols = [c for c in columns if c.prefect_db == backend]
        if cols:
            asyncio.run(prefect_columns(backend, cols, apps, recorder))

    total = time.perf_counter() - T0
    # Neighbours' work during the run shifts the latencies (the ratios less): say how much.
    info["load average at end (1/5/15 min)"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    table = report.render_table(["", *(c.title for c in columns)], report.rows(columns, N))
    print("\n" + table + "\n", flush=True)
    runs = sustained()
    report.write_doc(info, columns, table, N, total, redactor, runs)
    say(f"wrote {report.DOC.relative_to(report.DOC.parents[1])} (total {total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
