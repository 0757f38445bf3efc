"""What Prefect adds to one report: an interleaved A/B of plain async calls and the flow.

``python -m benchmarks.run --section overhead`` (or ``python -m benchmarks.overhead``): one
Prefect server on PostgreSQL, the app on PostgreSQL, then plain, Prefect, plain, Prefect …
(``N`` each after warm-ups). Interleaving rather than blocks, because the machine is shared:
a neighbour's load, or the server still writing the previous run's events, then falls on both
paths alike instead of on whichever block happened to run at the time.

Per run it takes submit → mail accepted (time-to-notify, the figure issue 13 sets at ≤ 3×),
the pipeline alone (after submit), this process's CPU, and every HTTP request the Prefect
client made; over the loop, the Prefect server's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import sections, workload
from benchmarks.env import TimedCapture
from benchmarks.probes import ApiCall, ApiRecorder, server_cpu_seconds
from benchmarks.stats import mean, ms, p50_p95, percentile

N = 30
WARMUP = 3
#: Pause after each run, outside its latency but inside its CPU: the Prefect client's
#: background threads (log and event shipping) finish their share of the run there instead of
#: in the next run's interval.
GAP_S = 0.1


#: What each request of a flow run is for (Prefect 3.9.1's engine, in its order).
STEP = {
    "GET /api/csrf-token": "CSRF token for the run's new API client (422: protection off)",
    "POST /api/flows/": "create (look up) the flow by name",
    "POST /api/flow_runs/": "create the flow run",
    "PATCH /api/flow_runs/{id}": "rename the run to the reference number",
    "GET /api/flow_runs/{id}": "read the run back",
    "POST /api/flow_runs/{id}/set_state": "set state",
}


@dataclass
class Trace:
    """One Prefect run on the clock: its pipeline, the mail's arrival, its API requests."""

    started: float
    mail: float
    done: float
    calls: list[ApiCall]


@dataclass
class Overhead:
    """``n`` plain and ``n`` Prefect runs, interleaved."""

    n: int
    app_db: str
    plain_to_mail: list[float] = field(default_factory=list)
    prefect_to_mail: list[float] = field(default_factory=list)
    plain_pipeline: list[float] = field(default_factory=list)
    prefect_pipeline: list[float] = field(default_factory=list)
    plain_cpu: list[float] = field(default_factory=list)
    prefect_cpu: list[float] = field(default_factory=list)
    server_cpu: float = 0.0  # the Prefect server over the whole loop (plain runs cost it 0)
    requests: Counter[str] = field(default_factory=Counter)  # "POST /api/flow_runs/" → count
    api_503: int = 0
    lost: int = 0
    duplicates: int = 0
    traces: list[Trace] = field(default_factory=list)
    plain_traces: list[Trace] = field(default_factory=list)
    shared_clients: bool = False  # one Prefect client pair around the whole loop

    @property
    def ratio(self) -> float:
        """Prefect / plain time-to-notify at p50 (the issue's target: ≤ 3)."""
        return percentile(self.prefect_to_mail, 50) / percentile(self.plain_to_mail, 50)

    @property
    def pipeline_ratio(self) -> float:
        return percentile(self.prefect_pipeline, 50) / percentile(self.plain_pipeline, 50)

    @property
    def requests_per_run(self) -> float:
        return sum(self.requests.values()) / self.n

    @property
    def server_cpu_per_run(self) -> float:
        return self.server_cpu / self.n

    def timeline(self) -> list[tuple[str, str, float]]:
        """Median (step, API call, ms) of a Prefect run, pipeline start to return: each
        request, and the client's own time between them (Prefect's engine, and our steps with
        the mail before the last request).

        Only runs whose requests came in the most common order are used (a retried request
        would misalign them); background log shipping is left out. The rows add up to about
        the median pipeline."""

        def key(t: Trace) -> tuple[str, ...]:
            return tuple(f"{c.method} {c.path}" for c in t.calls)

        usual = Counter(key(t) for t in self.traces).most_common(1)
        if not usual:
            return []
        order = usual[0][0]
        runs = [t for t in self.traces if key(t) == order]
        rows: list[tuple[str, str, list[float]]] = []
        states = iter(["Running", "Completed"])
        for i, call in enumerate(order):
            ends = [
                t.calls[i - 1].started + t.calls[i - 1].seconds if i else t.started for t in runs
            ]
            what = STEP.get(call, call)
            if call.endswith("/set_state"):
                what = f"{what} → {next(states, '?')}"
            if what.endswith("Completed"):
                rows.append(
                    (
                        "client: Prefect's engine, our steps, mail accepted",
                        "–",
                        [t.mail - e for t, e in zip(runs, ends, strict=True)],
                    )
                )
                rows.append(
                    (
                        "client: after the mail (task end, engine)",
                        "–",
                        [t.calls[i].started - t.mail for t in runs],
                    )
                )
            else:
                rows.append(
                    (
                        "client: Prefect's engine",
                        "–",
                        [t.calls[i].started - e for t, e in zip(runs, ends, strict=True)],
                    )
                )
            rows.append((what, call, [t.calls[i].seconds for t in runs]))
        rows.append(
            (
                "client: engine until the flow call returns",
                "–",
                [t.done - (t.calls[-1].started + t.calls[-1].seconds) for t in runs],
            )
        )
        return [(step, call, percentile(v, 50) * 1000) for step, call, v in rows]

    def lines(self) -> list[str]:
        """The result as Markdown lines (the console and docs/benchmarks.md print the same)."""
        by_endpoint = ", ".join(
            f"{path} {count / self.n:.1f}" for path, count in self.requests.most_common()
        )
        return [
            f"- N = {self.n} each, interleaved (app {self.app_db}, Prefect server on "
            f"PostgreSQL), after {WARMUP} warm-ups of each"
            + ("; one Prefect client pair kept open for all runs" if self.shared_clients else ""),
            f"- time-to-notify p50 / p95: Prefect {p50_p95(self.prefect_to_mail)}, plain "
            f"{p50_p95(self.plain_to_mail)}: **{self.ratio:.1f}× at p50** (target ≤ 3×)",
            f"- pipeline alone (after submit) p50 / p95: Prefect "
            f"{p50_p95(self.prefect_pipeline)}, plain {p50_p95(self.plain_pipeline)}: "
            f"{self.pipeline_ratio:.1f}× at p50",
            f"- this process's CPU per run (submit + pipeline + client background threads), "
            f"mean: Prefect {ms(mean(self.prefect_cpu))}, plain {ms(mean(self.plain_cpu))}: "
            f"Prefect's client adds {ms(mean(self.prefect_cpu) - mean(self.plain_cpu))}",
            f"- Prefect server CPU per flow run: {ms(self.server_cpu_per_run)}",
            f"- Prefect API requests per flow run: {self.requests_per_run:.1f} "
            f"({self.api_503} × 503): {by_endpoint}",
            f"- lost / duplicates: {self.lost} / {self.duplicates}",
            "",
            "A Prefect run's pipeline, step by step (p50 of each row over the runs; "
            f"pipeline start → mail accepted: Prefect {ms(self._to_mail(self.traces))}, plain "
            f"{ms(self._to_mail(self.plain_traces))}):",
            "",
            "| step | API request | ms (p50) |",
            "|---|---|---|",
            *(f"| {step} | {call} | {value:.1f} |" for step, call, value in self.timeline()),
        ]

    @staticmethod
    def _to_mail(traces: list[Trace]) -> float:
        return percentile([t.mail - t.started for t in traces], 50)


@dataclass
class _Run:
    report_id: str
    to_mail: float
    pipeline: float
    cpu: float  # this process, including the gap after the run
    trace: Trace


async def _timed(notify: workload.Notifier, capture: TimedCapture, recorder: ApiRecorder) -> _Run:
    """One report, submit to mail, with its clock times and this process's CPU."""
    cpu, mark = time.process_time(), recorder.mark()
    one = await sections.one_report(notify, capture)
    calls = [
        c
        for c in recorder.since(mark)
        if c.started >= one.pipeline_started and not c.path.endswith("/logs/")
    ]
    trace = Trace(one.pipeline_started, one.accepted, one.pipeline_done, calls)
    await asyncio.sleep(GAP_S)
    return _Run(one.report_id, one.to_mail, one.pipeline, time.process_time() - cpu, trace)


async def measure_overhead(
    n: int,
    mail_dir: Path,
    recorder: ApiRecorder,
    server_pgid: int,
    app_db: str,
    *,
    shared_clients: bool = False,
) -> Overhead:
    """``n`` plain and ``n`` Prefect reports, alternating, each after warm-ups.

    ``shared_clients``: every run uses one sync and one async Prefect client opened before the
    loop (``prefect_client.shared_clients``), as a long-lived process could; by default each
    run opens its own, as a flow-run process does."""
    from orosflow.core import prefect_client

    out = Overhead(n=n, app_db=app_db, shared_clients=shared_clients)
    capture = TimedCapture(mail_dir)
    try:
        async with AsyncExitStack() as stack:
            if shared_clients:
                await stack.enter_async_context(prefect_client.shared_clients())
            await _loop(out, n, capture, recorder, server_pgid)
    finally:
        capture.stop()
    return out


async def _loop(
    out: Overhead, n: int, capture: TimedCapture, recorder: ApiRecorder, server_pgid: int
) -> None:
    """The warm-ups, then plain and Prefect in turn; fills ``out``."""
    for _ in range(WARMUP):
        await _timed(workload.notify_plain, capture, recorder)
        await _timed(workload.notify_prefect, capture, recorder)
    await asyncio.sleep(1)  # let the server finish the warm-ups' events
    ids: list[str] = []
    cpu0 = server_cpu_seconds(server_pgid)
    mark = recorder.mark()
    for _ in range(n):
        plain = await _timed(workload.notify_plain, capture, recorder)
        out.plain_to_mail.append(plain.to_mail)
        out.plain_pipeline.append(plain.pipeline)
        out.plain_cpu.append(plain.cpu)
        out.plain_traces.append(plain.trace)
        run = await _timed(workload.notify_prefect, capture, recorder)
        out.prefect_to_mail.append(run.to_mail)
        out.prefect_pipeline.append(run.pipeline)
        out.prefect_cpu.append(run.cpu)
        out.traces.append(run.trace)
        ids += [plain.report_id, run.report_id]
    calls = recorder.since(mark)
    await asyncio.sleep(sections.SETTLE_S)  # the server's work for the last run counts too
    out.server_cpu = server_cpu_seconds(server_pgid) - cpu0
    out.requests = Counter(f"{c.method} {c.path}" for c in calls)
    out.api_503 = sum(1 for c in calls if c.status == 503)
    check = workload.check_delivery(ids, capture.message_ids_on_disk())
    out.lost, out.duplicates = check.lost, check.duplicates


def main(argv: list[str] | None = None) -> int:
    """Run the overhead section on its own (the full run goes through ``benchmarks.run``)."""
    from benchmarks import run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=N, help=f"runs per path (default {N})")
    parser.add_argument("--shared-clients", action="store_true", help="one client pair")
    args = parser.parse_args(argv)
    shared = ["--shared-clients"] if args.shared_clients else []
    return run.main(["--section", "overhead", "-n", str(args.n), *shared])


if __name__ == "__main__":
    sys.exit(main())
