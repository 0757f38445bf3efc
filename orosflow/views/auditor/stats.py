"""Statistics over the matching reports: counts per municipality, category, month and status,
handover counts, and nearest-rank percentiles of the time to confirmation."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from models.tables import Handover, HandoverStatus, Report
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.csvfile import DEFAULT_SEPARATOR, write_csv
from orosflow.handover.lifecycle import REPORT_LABELS
from orosflow.views.auditor.filters import AuditFilters, conditions
from orosflow.views.auditor.labels import (
    UNKNOWN_CATEGORY,
    URGENCY_LABELS,
    category_ids,
    category_label,
    municipality_label,
)
from orosflow.views.handover_summary import minutes_between
from routing.hours import TZ

#: Percentiles of the time from notification to confirmation, by the nearest-rank method.
PERCENTILES = (50, 90, 95)
PERCENTILE_METHOD = "nearest-rank"
NO_RECIPIENT = ""


class StatsCount(BaseModel):
    key: str
    label: str
    count: int


class DurationStats(BaseModel):
    """Minutes from notification to confirmation of confirmed handovers."""

    group: str
    label: str
    count: int
    p50_minutes: float | None
    p90_minutes: float | None
    p95_minutes: float | None


class HandoverCounts(BaseModel):
    total: int
    confirmed: int
    escalated: int = Field(description="Överlämningar som nått minst ett eskaleringssteg.")
    overdue_open: int = Field(description="Obekräftade överlämningar vars frist har gått ut.")
    confirmed_late: int = Field(description="Bekräftade efter fristen.")
    declined: int
    failed: int


class AuditStats(BaseModel):
    filters: AuditFilters
    generated_at: datetime
    reports: int
    per_municipality: list[StatsCount] = Field(
        description="Anmälningar per mottagande kommun; en anmälan med mottagare i flera "
        "kommuner räknas i var och en."
    )
    per_category: list[StatsCount] = Field(
        description="Anmälningar per kategori; en anmälan med flera kategorier räknas i varje."
    )
    per_month: list[StatsCount] = Field(description="Anmälningar per inlämningsmånad (Stockholm).")
    per_status: list[StatsCount]
    time_to_confirmation: list[DurationStats] = Field(
        description="Tid från avisering till bekräftelse per bekräftad överlämning, totalt och "
        "per brådska."
    )
    percentile_method: str = Field(
        PERCENTILE_METHOD,
        description="Närmaste rang: värdet på plats ceil(p/100·n) i sorterad ordning.",
    )
    handovers: HandoverCounts


def nearest_rank(sorted_values: Sequence[float], p: float) -> float | None:
    """The p-th percentile by nearest rank: the ceil(p/100·n)-th smallest value."""
    if not sorted_values:
        return None
    k = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[k - 1]


def duration_stats(group: str, label: str, minutes: Iterable[float]) -> DurationStats:
    values = sorted(minutes)
    p50, p90, p95 = (nearest_rank(values, p) for p in PERCENTILES)
    return DurationStats(
        group=group,
        label=label,
        count=len(values),
        p50_minutes=p50,
        p90_minutes=p90,
        p95_minutes=p95,
    )


def _count_rows(counts: dict[str, int], label: Any, order: str = "count") -> list[StatsCount]:
    rows = [StatsCount(key=k, label=label(k), count=v) for k, v in counts.items()]
    if order == "key":
        return sorted(rows, key=lambda r: r.key)
    return sorted(rows, key=lambda r: (-r.count, r.label))


def stats(s: Session, f: AuditFilters) -> AuditStats:
    """Counts and confirmation times over the matching reports.

    With a municipality filter, the handover figures (per municipality, confirmation times,
    overdue/escalated) count only the handovers to that municipality.
    """
    conds = conditions(f)
    rows = s.exec(
        select(
            Report.id, Report.categories, Report.submitted_at, Report.urgency, Report.status
        ).where(*conds)
    ).all()
    urgency_of: dict[str, str] = {}
    per_category: dict[str, int] = defaultdict(int)
    per_month: dict[str, int] = defaultdict(int)
    per_status: dict[str, int] = defaultdict(int)
    for rid, cats, submitted_at, urgency, status in rows:
        urgency_of[rid] = urgency
        for c in set(category_ids(cats)) or {UNKNOWN_CATEGORY}:
            per_category[c] += 1
        per_month[submitted_at.astimezone(TZ).strftime("%Y-%m")] += 1
        per_status[status] += 1

    hq = select(Handover).join(Report, col(Handover.report_id) == col(Report.id)).where(*conds)
    if f.municipality:
        hq = hq.where(col(Handover.municipality) == f.municipality)
    handovers = list(s.exec(hq))
    per_municipality: dict[str, set[str]] = defaultdict(set)
    for h in handovers:
        per_municipality[h.municipality].add(h.report_id)
    if not f.municipality:
        without = set(urgency_of) - {h.report_id for h in handovers}
        if without:
            per_municipality[NO_RECIPIENT] = without

    now = utcnow()
    delays: dict[str, list[float]] = defaultdict(list)
    counts = dict.fromkeys(("confirmed", "escalated", "overdue", "late", "declined", "failed"), 0)
    for h in handovers:
        minutes = minutes_between(h.notified_at, h.confirmed_at)
        if minutes is not None:
            delays[urgency_of.get(h.report_id, "")].append(minutes)
        counts["confirmed"] += h.status == HandoverStatus.CONFIRMED
        counts["escalated"] += h.escalation_step > 0 or h.status == HandoverStatus.ESCALATED
        counts["overdue"] += (
            h.status in (HandoverStatus.NOTIFIED, HandoverStatus.ESCALATED)
            and h.deadline_at is not None
            and h.deadline_at < now
        )
        counts["late"] += (
            h.confirmed_at is not None
            and h.deadline_at is not None
            and h.confirmed_at > h.deadline_at
        )
        counts["declined"] += h.status == HandoverStatus.DECLINED
        counts["failed"] += h.status == HandoverStatus.FAILED

    durations = [duration_stats("all", "Alla", [m for v in delays.values() for m in v])]
    durations += [
        duration_stats(u, URGENCY_LABELS[u].capitalize(), delays.get(u, [])) for u in URGENCY_LABELS
    ]
    return AuditStats(
        filters=f,
        generated_at=now,
        reports=len(rows),
        per_municipality=_count_rows(
            {k: len(v) for k, v in per_municipality.items()},
            lambda c: municipality_label(c) if c else "Ingen mottagare ännu",
        ),
        per_category=_count_rows(per_category, category_label),
        per_month=_count_rows(per_month, lambda m: m, order="key"),
        per_status=_count_rows(per_status, lambda st: REPORT_LABELS.get(st, st)),
        time_to_confirmation=durations,
        handovers=HandoverCounts(
            total=len(handovers),
            confirmed=counts["confirmed"],
            escalated=counts["escalated"],
            overdue_open=counts["overdue"],
            confirmed_late=counts["late"],
            declined=counts["declined"],
            failed=counts["failed"],
        ),
    )


STATS_CSV_COLUMNS = (
    "section",
    "key",
    "label",
    "count",
    "p50_seconds",
    "p90_seconds",
    "p95_seconds",
)


def _seconds(minutes: float | None) -> int | None:
    return None if minutes is None else round(minutes * 60)


def stats_csv_rows(st: AuditStats) -> list[list[Any]]:
    """The statistics as one table: a section column, then the key, label and count; the
    time to confirmation in whole seconds (a confirmation after 29 s is 29, not 0 minutes)."""
    h = st.handovers
    rows: list[list[Any]] = [["reports", "", "Anmälningar i urvalet", st.reports]]
    for section, counts in (
        ("municipality", st.per_municipality),
        ("category", st.per_category),
        ("month", st.per_month),
        ("status", st.per_status),
    ):
        rows += [[section, c.key, c.label, c.count] for c in counts]
    rows += [
        ["handovers", key, label, value]
        for key, label, value in (
            ("total", "Överlämningar", h.total),
            ("confirmed", "Bekräftade", h.confirmed),
            ("escalated", "Eskalerade", h.escalated),
            ("overdue_open", "Obekräftade efter fristen", h.overdue_open),
            ("confirmed_late", "Bekräftade efter fristen", h.confirmed_late),
            ("declined", "Avböjda", h.declined),
            ("failed", "Misslyckade", h.failed),
        )
    ]
    rows += [
        [
            "time_to_confirmation",
            d.group,
            d.label,
            d.count,
            _seconds(d.p50_minutes),
            _seconds(d.p90_minutes),
            _seconds(d.p95_minutes),
        ]
        for d in st.time_to_confirmation
    ]
    return rows


def stats_csv(st: AuditStats, sep: str = DEFAULT_SEPARATOR) -> tuple[str, int]:
    """The statistics as CSV (Swedish conventions) and its number of data rows."""
    rows = stats_csv_rows(st)
    return write_csv(STATS_CSV_COLUMNS, rows, sep=sep), len(rows)


def record_stats_export(s: Session, actor: str, st: AuditStats, rows: int) -> None:
    """Put the statistics export on record like the report export (who, which filter)."""
    append_event(
        s,
        actor=actor,
        action="audit.exported",
        details={
            "format": "stats-csv",
            "filters": st.filters.query(),
            "reports": st.reports,
            "rows": rows,
        },
    )
