"""The four measurements (a)–(d). Each returns plain numbers; ``run.py`` prints and reports them.

(b) and (d) share one loop: the same reports' pipeline times give the overhead ratio, and their
submit-to-mail times give time-to-notify, so both come from one set of runs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import workload
from benchmarks.env import TimedCapture
from benchmarks.probes import ApiRecorder, server_cpu_seconds
from benchmarks.workload import Check, Notifier, check_delivery

#: Seconds to wait after the last flow run before reading the server's CPU time.
SETTLE_S = 2.0


def measure_receipts(n: int) -> list[float]:
    """(a) ``submit()`` of the example form, one after another: seconds per receipt."""
    for _ in range(5):  # warm caches (keyring, templates, connection pool)
        workload.submit_one()
    return [workload.submit_one()[1] for _ in range(n)]


@dataclass
class Burst:
    """(c) ``n`` reports submitted at once, drained through one notify path."""

    n: int
    submit_concurrency: int
    notify_concurrency: int
    receipts_done: float  # seconds until the last receipt was returned
    drain: float  # seconds until the last mail was accepted
    check: Check
    errors: list[str]
    server_cpu: float | None = None
    api_calls: int | None = None
    api_503: int | None = None

    @property
    def throughput(self) -> float:
        return self.n / self.drain if self.drain else 0.0

    @property
    def server_cpu_per_run(self) -> float | None:
        return self.server_cpu / self.n if self.server_cpu is not None else None


async def run_burst(
    notify: Notifier,
    n: int,
    mail_dir: Path,
    *,
    submit_concurrency: int = 8,
    notify_concurrency: int = 10,
    recorder: ApiRecorder | None = None,
    server_pgid: int | None = None,
) -> Burst:
    """All ``n`` submissions start together; each report is notified as soon as it is stored."""
    capture = TimedCapture(mail_dir)
    try:
        submit_gate = asyncio.Semaphore(submit_concurrency)
        notify_gate = asyncio.Semaphore(notify_concurrency)
        mark = recorder.mark() if recorder else 0
        cpu0 = server_cpu_seconds(server_pgid) if server_pgid else None
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(workload.submit_and_notify(notify, submit_gate, notify_gate) for _ in range(n))
        )
        arrivals = [t for times in capture.arrivals.values() for t in times]
        last = max([*arrivals, *(o.pipeline_done for o in outcomes)])
        calls = recorder.since(mark) if recorder else []
        if server_pgid:
            await asyncio.sleep(SETTLE_S)  # the server's work for the last runs counts too
        cpu1 = server_cpu_seconds(server_pgid) if server_pgid else None
        check = check_delivery([o.report_id for o in outcomes], capture.message_ids_on_disk())
    finally:
        capture.stop()
    return Burst(
        n=n,
        submit_concurrency=submit_concurrency,
        notify_concurrency=notify_concurrency,
        receipts_done=max(o.submitted for o in outcomes) - started,
        drain=last - started,
        check=check,
        errors=[o.error for o in outcomes if o.error],
        server_cpu=(cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        api_calls=len(calls) if recorder else None,
        api_503=sum(1 for c in calls if c.status == 503) if recorder else None,
    )


@dataclass
class Notify:
    """(b) and (d): sequential reports, first the plain pipeline, then the Prefect flow."""

    plain_pipeline: list[float] = field(default_factory=list)
    prefect_pipeline: list[float] = field(default_factory=list)
    plain_to_mail: list[float] = field(default_factory=list)
    prefect_to_mail: list[float] = field(default_factory=list)
    api_calls_per_run: float = 0.0
    api_503: int = 0
    server_cpu_per_run: float = 0.0
    plain_cpu_per_run: float = 0.0  # this process (our code + Prefect client), per report
    prefect_cpu_per_run: float = 0.0
    lost: int = 0
    duplicates: int = 0


def _handover_message_ids(report_id: str) -> list[str]:
    from sqlmodel import select

    from models.tables import Handover
    from orosflow.core.db import session_scope

    with session_scope() as session:
        return [
            h.message_id
            for h in session.exec(select(Handover).where(Handover.report_id == report_id))
        ]


@dataclass
class OneReport:
    """One report submitted then notified, on the ``time.perf_counter`` clock."""

    report_id: str
    submit_started: float
    pipeline_started: float
    pipeline_done: float
    accepted: float  # the last of its mails accepted by the SMTP capture

    @property
    def pipeline(self) -> float:
        return self.pipeline_done - self.pipeline_started

    @property
    def to_mail(self) -> float:
        return self.accepted - self.submit_started


async def one_report(notify: Notifier, capture: TimedCapture) -> OneReport:
    """Submit then notify one report."""
    submit_started = time.perf_counter()
    report_id, _ = await asyncio.to_thread(workload.submit_one)
    pipeline_started = time.perf_counter()
    await notify(report_id)
    done = time.perf_counter()
    accepted = max(capture.arrivals[mid][0] for mid in _handover_message_ids(report_id))
    return OneReport(report_id, submit_started, pipeline_started, done, accepted)


async def measure_notify(
    n: int,
    mail_dir: Path,
    recorder: ApiRecorder,
    server_pgid: int,
) -> Notify:
    """Sequential runs, plain block then Prefect block, each after two warm-up runs.

    Blocks rather than alternating reports: the server keeps working for a while after each
    flow run (events, logs), which would otherwise slow the plain report that follows.
    """
    out = Notify()
    capture = TimedCapture(mail_dir)
    try:
        ids = []
        for _ in range(2):
            await one_report(workload.notify_plain, capture)
        cpu = time.process_time()
        for _ in range(n):
            one = await one_report(workload.notify_plain, capture)
            ids.append(one.report_id)
            out.plain_pipeline.append(one.pipeline)
            out.plain_to_mail.append(one.to_mail)
        out.plain_cpu_per_run = (time.process_time() - cpu) / n
        for _ in range(2):
            await one_report(workload.notify_prefect, capture)
        await asyncio.sleep(1)  # let the server settle after the warm-up
        mark, cpu0 = recorder.mark(), server_cpu_seconds(server_pgid)
        cpu = time.process_time()
        for _ in range(n):
            one = await one_report(workload.notify_prefect, capture)
            ids.append(one.report_id)
            out.prefect_pipeline.append(one.pipeline)
            out.prefect_to_mail.append(one.to_mail)
        out.prefect_cpu_per_run = (time.process_time() - cpu) / n
        calls = recorder.since(mark)
        await asyncio.sleep(SETTLE_S)  # the server's work for the last runs counts too
        out.server_cpu_per_run = (server_cpu_seconds(server_pgid) - cpu0) / n
        out.api_calls_per_run = len(calls) / n
        out.api_503 = sum(1 for c in calls if c.status == 503)
        check = check_delivery(ids, capture.message_ids_on_disk())
        out.lost, out.duplicates = check.lost, check.duplicates
    finally:
        capture.stop()
    return out
