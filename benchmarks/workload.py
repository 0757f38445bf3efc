"""What is measured: submitting the example form, and notifying it plainly or through Prefect.

Both notify paths do the same service calls in the same worker threads as the flow's tasks
(``flows/concern_report.py``), so the difference between them is what Prefect adds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "report.json"
# Monday 23 November 2026, 10:00 in Stockholm: office hours, so routing is deterministic.
OFFICE_HOURS = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ACTOR = "bench:counselor"


def pin_clock() -> None:
    from orosflow.core.clock import set_clock

    set_clock(lambda: OFFICE_HOURS)


@lru_cache(maxsize=1)
def _example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def example_form() -> dict[str, Any]:
    """The example form, unchanged, as the counselor's client would send it.

    Every report carries the same personal data; the log redactor's cost against the number
    of distinct reports is measured apart (``benchmarks.redaction``).
    """
    return json.loads(_example_text())


#: Children of the distinct forms: born on consecutive days from here (13 to 16 years old in
#: 2026, under 18 for years to come).
FIRST_BIRTH = date(2010, 6, 1)


def child_number(n: int) -> str:
    """The ``n``-th distinct, checksum-valid personnummer of a child (n < 10,000).

    A burst of one child's form measures the duplicate guard, not the system: each submission
    of the same counselor and child waits for the one before it (their guard row is locked
    until it commits), by design, to ask "Skicka ändå?"."""
    from personnummer import personnummer

    birth = FIRST_BIRTH + timedelta(days=n % 1000)
    stem = f"{birth:%Y%m%d}-{100 + n // 1000:03d}"
    for check in range(10):
        if personnummer.valid(stem + str(check)):
            return stem + str(check)
    raise ValueError(stem)  # pragma: no cover - one of ten digits always checks


def distinct_form(n: int) -> dict[str, Any]:
    """The example form about the ``n``-th distinct child: what a burst from many counselors'
    reports looks like to the duplicate guard."""
    data = example_form()
    data["children"][0]["personal_number"] = child_number(n)
    return data


def submit_one() -> tuple[str, float]:
    """Submit one form (validate + durable store), returning its report id and seconds taken."""
    from orosflow.handover.submission import submit

    data = example_form()
    started = time.perf_counter()
    receipt = submit(data, actor=ACTOR)
    return receipt.reports[0].report_id, time.perf_counter() - started


async def notify_plain(report_id: str) -> None:
    """The flow's steps as plain async calls: no Prefect at all."""
    from orosflow.handover import delivery
    from orosflow.handover.lifecycle import outbox

    await asyncio.to_thread(delivery.load_and_revalidate, report_id)
    result = await outbox.deliver(report_id)
    if result.failed or result.busy:
        raise RuntimeError(f"{report_id}: mail not delivered")


async def notify_prefect(report_id: str) -> None:
    """The real ``concern-report`` flow, run in-process against the benchmark's server."""
    from flows.concern_report import concern_report

    await concern_report(report_id)


Notifier = Callable[[str], Awaitable[None]]


@dataclass
class Outcome:
    """One report's path: when its submit started and ended, and when its pipeline ended."""

    report_id: str
    submit_started: float
    submitted: float
    pipeline_started: float
    pipeline_done: float
    error: str | None = None


async def submit_and_notify(
    notify: Notifier, submit_gate: asyncio.Semaphore, notify_gate: asyncio.Semaphore
) -> Outcome:
    """Submit, then notify, each behind its own concurrency bound (a burst's unit of work)."""
    async with submit_gate:
        submit_started = time.perf_counter()
        report_id, _ = await asyncio.to_thread(submit_one)
        submitted = time.perf_counter()
    async with notify_gate:
        pipeline_started = time.perf_counter()
        error = None
        try:
            await notify(report_id)
        except Exception as exc:  # noqa: BLE001  (counted as lost, not fatal)
            error = f"{type(exc).__name__}: {exc}"[:200]
        done = time.perf_counter()
    return Outcome(report_id, submit_started, submitted, pipeline_started, done, error)


@dataclass
class Check:
    """The burst's correctness: lost and duplicated notifications."""

    reports: int
    handovers: int
    lost: int
    duplicates: int
    mails: int


def check_delivery(report_ids: list[str], message_ids_on_disk: list[str]) -> Check:
    """Lost = a report without a notified handover, or a handover without exactly one mail.

    Duplicates = Message-IDs that occur more than once among the stored .eml files.
    """
    from sqlmodel import col, select

    from models.tables import Handover, HandoverStatus
    from orosflow.core.db import session_scope

    on_disk = Counter(message_ids_on_disk)
    by_report: dict[str, list[Handover]] = {rid: [] for rid in report_ids}
    with session_scope() as session:
        for start in range(0, len(report_ids), 200):
            chunk = report_ids[start : start + 200]
            for h in session.exec(select(Handover).where(col(Handover.report_id).in_(chunk))):
                by_report[h.report_id].append(h)
    lost = 0
    handover_count = 0
    for hs in by_report.values():
        handover_count += len(hs)
        ok = bool(hs) and all(
            h.status == HandoverStatus.NOTIFIED and on_disk[h.message_id] == 1 for h in hs
        )
        lost += not ok
    duplicates = sum(n - 1 for n in on_disk.values() if n > 1)
    return Check(len(report_ids), handover_count, lost, duplicates, sum(on_disk.values()))
