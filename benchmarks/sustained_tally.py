"""The counting behind ``benchmarks.sustained``: lost, duplicates, rates, percentiles, verdict.

Pure functions over what the load generator recorded (one :class:`Submission` per offered
report) and what the SMTP capture received (one :class:`Mail` per accepted message), so the
arithmetic that decides "reached or not" is tested without a server (tests/test_bench_sustained.py).
Times are wall-clock seconds (``time.time()``), the clock Prefect's timestamps also use.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from benchmarks.stats import percentile

#: Seconds from the last report due to its mail that still count as keeping up. A pipeline
#: that mails at 95 % of the offered rate ends 10 minutes of load 30 s behind (5 % of 600 s),
#: so at 10 minutes this tells a 5 % shortfall from the time-to-notify of the last report.
TAIL_S = 30.0


@dataclass(frozen=True)
class Submission:
    """One offered report: when it was due (open loop), when its answer came, and what it was."""

    due: float
    answered: float | None = None
    reference: str | None = None  # None: no receipt (HTTP error, timeout)
    error: str | None = None

    @property
    def receipt(self) -> float | None:
        """Seconds from due to receipt (a late start counts: no coordinated omission)."""
        return None if self.answered is None or self.reference is None else self.answered - self.due


@dataclass(frozen=True)
class Mail:
    """One message the capture accepted."""

    message_id: str
    reference: str | None
    arrived: float


@dataclass
class Tally:
    offered: int
    duration: float
    accepted: int
    failed: int
    notified: int
    unmailed: list[str]  # a receipt and no mail by the end of the drain
    duplicates: int  # reports mailed more than once
    duplicate_messages: int  # extra copies of one Message-ID
    other_mails: int  # mails for references this run did not submit
    receipts: list[float]
    notify: list[float]
    achieved_rate: float
    steady_rate: float
    run_rate: float  # steady rate of the reports mailed by their own flow run
    by_sweep: int  # reports mailed by the escalation sweep instead
    tail: float  # seconds from the last report due to the last first mail
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def offered_rate(self) -> float:
        return self.offered / self.duration if self.duration else 0.0

    @property
    def reached(self) -> bool:
        return (
            self.offered > 0
            and self.failed == 0
            and not self.unmailed
            and self.duplicates == 0
            and self.duplicate_messages == 0
            and self.tail <= TAIL_S
        )

    @property
    def kept_up(self) -> bool:
        """The mail stream kept pace with the offer (whatever else went wrong)."""
        return self.tail <= TAIL_S


def first_mails(mails: Iterable[Mail]) -> dict[str, float]:
    """Reference → when its first mail arrived."""
    out: dict[str, float] = {}
    for m in mails:
        if m.reference is not None:
            out[m.reference] = min(out.get(m.reference, math.inf), m.arrived)
    return out


def tally(
    submissions: Sequence[Submission],
    mails: Sequence[Mail],
    start: float,
    duration: float,
    swept: Collection[str] = (),
) -> Tally:
    """Count one run: ``start`` is when the first report was due, ``duration`` the offered
    window (the drain after it is not part of the rates' denominators except through the
    last mail).

    - unmailed: a report with a receipt and no mail (yet: lost, unless its mail is still
      queued — the caller asks the database);
    - duplicates: a report (by ``X-Orosflow-Reference``) mailed more than once, and apart
      from it any Message-ID accepted more than once;
    - achieved rate: reports mailed over the time from ``start`` to the last of their first
      mails — it falls below the offered rate when the backlog grows;
    - steady rate: first mails in the window's second half over that half's length — the
      rate the pipeline sustains once warm (with a growing backlog: its ceiling);
    - tail: from the last report due to the last first mail; it held the rate when the tail
      is within ``TAIL_S`` (a growing backlog shows here);
    - ``swept``: references whose mail the escalation sweep sent (every 5 minutes, the
      backstop), not their own flow run; run rate: the steady rate of the others alone — what
      one run per report sustains.
    """
    submitted = {s.reference: s for s in submissions if s.reference is not None}
    firsts = first_mails(mails)
    per_report = Counter(m.reference for m in mails if m.reference in submitted)
    per_message = Counter(m.message_id for m in mails)
    mailed = {ref: t for ref, t in firsts.items() if ref in submitted}
    last = max(mailed.values(), default=start)
    last_due = max((s.due for s in submissions), default=start)
    half = start + duration / 2
    in_half = {ref for ref, t in mailed.items() if half <= t < start + duration}
    by_runs = in_half - set(swept)
    return Tally(
        offered=len(submissions),
        duration=duration,
        accepted=len(submitted),
        failed=len(submissions) - len(submitted),
        notified=len(mailed),
        unmailed=sorted(set(submitted) - set(mailed)),
        duplicates=sum(1 for n in per_report.values() if n > 1),
        duplicate_messages=sum(n - 1 for n in per_message.values() if n > 1),
        other_mails=sum(1 for m in mails if m.reference not in submitted),
        receipts=[s.receipt for s in submissions if s.receipt is not None],
        notify=[t - submitted[ref].due for ref, t in mailed.items()],
        achieved_rate=len(mailed) / (last - start) if last > start else 0.0,
        steady_rate=len(in_half) / (duration / 2) if duration else 0.0,
        run_rate=len(by_runs) / (duration / 2) if duration else 0.0,
        by_sweep=len(set(swept) & set(mailed)),
        tail=last - last_due if mailed else math.inf,
        errors=Counter(s.error for s in submissions if s.error),
    )


def backlog(submissions: Sequence[Submission], firsts: dict[str, float], at: float) -> int:
    """Reports with a receipt by ``at`` and no mail by then."""
    return sum(
        1
        for s in submissions
        if s.reference is not None
        and s.answered is not None
        and s.answered <= at
        and firsts.get(s.reference, math.inf) > at
    )


def quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p95 and max (``nan`` for none)."""
    if not values:
        return math.nan, math.nan, math.nan
    return percentile(values, 50), percentile(values, 95), max(values)


@dataclass(frozen=True)
class Costs:
    """What one report costs and what the machine had, for naming the bound.

    ``cpu_per_report``: CPU seconds per mailed report by part (portal, runner, Prefect server,
    PostgreSQL …); ``idle``: CPU seconds per second the same parts burn with no load;
    ``others``: CPU seconds per second of everything else on the machine during the run.
    """

    cores: int
    cpu_per_report: dict[str, float]
    idle: float = 0.0
    others: float = 0.0
    run_slots: int = 0  # runners × limit: flow runs at once
    run_seconds: float = math.nan  # p50 wall time of one flow run
    slot_wait: float = math.nan  # p50 from run created to run started
    receipt_p95: float = math.nan


def cpu_ceiling(c: Costs) -> float:
    """Reports/s the cores allow: what is left after idle work and others, over the CPU of
    one report."""
    per = sum(c.cpu_per_report.values())
    spare = c.cores - c.idle - c.others
    return spare / per if per > 0 and spare > 0 else 0.0


def slot_ceiling(c: Costs) -> float:
    """Reports/s the flow-run limit allows (Little's law: slots over one run's wall time)."""
    if not c.run_slots or not c.run_seconds or math.isnan(c.run_seconds):
        return math.inf
    return c.run_slots / c.run_seconds


def bound(c: Costs, rate: float) -> str:
    """The tightest limit at ``rate``, in words, with the numbers that show it."""
    per = c.cpu_per_report
    total = sum(per.values())
    top = max(per, key=per.__getitem__) if per else "?"
    cpu = cpu_ceiling(c)
    slots = slot_ceiling(c)
    parts = ", ".join(
        f"{k} {v * 1000:.0f} ms" for k, v in sorted(per.items(), key=lambda kv: -kv[1])
    )
    if cpu <= slots:
        return (
            f"CPU: {total:.2f} CPU-s per report ({parts}) on {c.cores} cores, of which "
            f"{c.idle:.2f} went to idle work and {c.others:.2f} to other jobs, allow "
            f"{cpu:.1f} reports/s; the largest part is {top}"
        )
    return (
        f"flow-run slots: {c.run_slots} runs at once × {c.run_seconds:.1f} s per run "
        f"(p50; wait for a slot {c.slot_wait:.1f} s) allow {slots:.1f} reports/s, below the "
        f"{cpu:.1f}/s the CPU would ({total:.2f} CPU-s per report)"
    )
