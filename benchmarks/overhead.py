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
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import sections, workload
from benchmarks.env import TimedCapture
from benchmarks.probes import ApiRecorder, server_cpu_seconds
from benchmarks.stats import mean, ms, p50_p95, percentile

N = 30
WARMUP = 3
#: Pause after each run, outside its latency but inside its CPU: the Prefect client's
#: background threads (log and event shipping) finish their share of the run there instead of
#: in the next run's interval.
GAP_S = 0.1


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

    def lines(self) -> list[str]:
        """The result as Markdown lines (the console and docs/benchmarks.md print the same)."""
        by_endpoint = ", ".join(
            f"{path} {count / self.n:.1f}" for path, count in self.requests.most_common()
        )
        return [
            f"- N = {self.n} each, interleaved (app {self.app_db}, Prefect server on "
            f"PostgreSQL), after {WARMUP} warm-ups of each",
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
        ]


async def _timed(
    notify: workload.Notifier, capture: TimedCapture
) -> tuple[str, float, float, float]:
    """One report: (id, submit-to-mail s, pipeline s, process CPU s incl. the gap after)."""
    cpu = time.process_time()
    report_id, pipeline, to_mail = await sections.one_report(notify, capture)
    await asyncio.sleep(GAP_S)
    return report_id, to_mail, pipeline, time.process_time() - cpu


async def measure_overhead(
    n: int, mail_dir: Path, recorder: ApiRecorder, server_pgid: int, app_db: str
) -> Overhead:
    """``n`` plain and ``n`` Prefect reports, alternating, each after warm-ups."""
    out = Overhead(n=n, app_db=app_db)
    capture = TimedCapture(mail_dir)
    try:
        for _ in range(WARMUP):
            await _timed(workload.notify_plain, capture)
            await _timed(workload.notify_prefect, capture)
        await asyncio.sleep(1)  # let the server finish the warm-ups' events
        ids: list[str] = []
        cpu0 = server_cpu_seconds(server_pgid)
        mark = recorder.mark()
        for _ in range(n):
            rid, to_mail, pipeline, cpu = await _timed(workload.notify_plain, capture)
            ids.append(rid)
            out.plain_to_mail.append(to_mail)
            out.plain_pipeline.append(pipeline)
            out.plain_cpu.append(cpu)
            rid, to_mail, pipeline, cpu = await _timed(workload.notify_prefect, capture)
            ids.append(rid)
            out.prefect_to_mail.append(to_mail)
            out.prefect_pipeline.append(pipeline)
            out.prefect_cpu.append(cpu)
        calls = recorder.since(mark)
        await asyncio.sleep(sections.SETTLE_S)  # the server's work for the last run counts too
        out.server_cpu = server_cpu_seconds(server_pgid) - cpu0
        out.requests = Counter(f"{c.method} {c.path}" for c in calls)
        out.api_503 = sum(1 for c in calls if c.status == 503)
        check = workload.check_delivery(ids, capture.message_ids_on_disk())
        out.lost, out.duplicates = check.lost, check.duplicates
    finally:
        capture.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the overhead section on its own (the full run goes through ``benchmarks.run``)."""
    from benchmarks import run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=N, help=f"runs per path (default {N})")
    args = parser.parse_args(argv)
    return run.main(["--section", "overhead", "-n", str(args.n)])


if __name__ == "__main__":
    sys.exit(main())
