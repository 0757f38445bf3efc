"""The counting behind ``make bench-sustained`` (benchmarks/sustained_tally.py) and its section of
docs/benchmarks.md: pure, no server."""

from __future__ import annotations

import math

from benchmarks import report
from benchmarks.sustained_tally import (
    TAIL_S,
    Costs,
    Mail,
    Submission,
    backlog,
    bound,
    cpu_ceiling,
    first_mails,
    quantiles,
    tally,
)

START = 1_000.0


def offered(n: int, rate: float = 1.0, latency: float = 0.1) -> list[Submission]:
    """``n`` reports due every 1/rate s, each answered ``latency`` after it was due."""
    return [
        Submission(START + i / rate, START + i / rate + latency, f"OA-{i:03d}") for i in range(n)
    ]


def mailed(subs: list[Submission], after: float = 2.0) -> list[Mail]:
    return [Mail(f"<{s.reference}@x>", s.reference, s.due + after) for s in subs if s.reference]


def test_every_report_mailed_once_in_step_with_the_offer_holds() -> None:
    subs = offered(60)
    t = tally(subs, mailed(subs), START, 60)
    assert (t.offered, t.accepted, t.notified, t.failed) == (60, 60, 60, 0)
    assert t.unmailed == [] and t.duplicates == 0 and t.duplicate_messages == 0
    assert t.offered_rate == 1.0
    assert t.tail == 2.0 and t.kept_up and t.reached
    assert t.notify == [2.0] * 60
    assert all(math.isclose(r, 0.1) for r in t.receipts)


def test_a_report_without_mail_is_unmailed_and_the_rate_not_held() -> None:
    subs = offered(10)
    t = tally(subs, mailed(subs)[:-1], START, 10)
    assert t.unmailed == ["OA-009"] and t.notified == 9
    assert t.kept_up and not t.reached


def test_a_report_mailed_twice_is_one_duplicate_whatever_its_message_ids() -> None:
    subs = offered(5)
    mails = mailed(subs)
    again = mails[2]
    mails += [
        Mail(again.message_id, again.reference, again.arrived + 30),  # the same message again
        Mail("<other@x>", "OA-003", 9_999),  # a second, different mail for OA-003
        Mail("<warm@x>", "OA-WARM", START - 5),  # not this run's
    ]
    t = tally(subs, mails, START, 5)
    assert t.duplicates == 2  # OA-002 and OA-003
    assert t.duplicate_messages == 1  # only OA-002's Message-ID came twice
    assert t.other_mails == 1
    assert not t.reached
    assert first_mails(mails)["OA-003"] == subs[3].due + 2.0  # the first mail counts


def test_reports_the_sweep_mailed_do_not_count_for_the_run_rate() -> None:
    # Offered 1/s for 100 s, all mailed 2 s later; the sweep mailed OA-060 … OA-079.
    subs = offered(100)
    swept = {f"OA-{i:03d}" for i in range(60, 80)}
    t = tally(subs, mailed(subs), START, 100, swept)
    assert t.by_sweep == 20
    assert math.isclose(t.steady_rate, 1.0)  # mails in 50–100 s: OA-048 … OA-097
    assert math.isclose(t.run_rate, 30 / 50)  # less the 20 the sweep sent
    assert t.reached  # whoever sent it, each report got its one mail in time


def test_refused_submissions_count_as_failed_not_lost() -> None:
    subs = offered(4)
    subs[1] = Submission(subs[1].due, subs[1].due + 60, None, "ReadTimeout")
    subs[2] = Submission(subs[2].due, subs[2].due + 0.2, None, "HTTP 500")
    t = tally(subs, mailed(subs), START, 4)
    assert (t.failed, t.accepted, t.unmailed) == (2, 2, [])
    assert t.errors == {"ReadTimeout": 1, "HTTP 500": 1}
    assert len(t.receipts) == 2  # no receipt, no receipt time
    assert not t.reached


def test_a_receipt_counts_from_when_the_report_was_due_not_when_it_was_sent() -> None:
    late = Submission(due=START, answered=START + 3.5, reference="OA-1")
    assert late.receipt == 3.5


def test_a_growing_backlog_shows_as_a_tail_and_the_steady_rate_is_the_ceiling() -> None:
    # Offered 2/s for 100 s; mailed at 1/s from the start: the last mail 100 s late.
    subs = offered(200, rate=2.0)
    mails = [Mail(f"<{s.reference}@x>", s.reference, START + 1 + i) for i, s in enumerate(subs)]
    t = tally(subs, mails, START, 100)
    assert t.tail > TAIL_S and not t.kept_up and not t.reached
    assert math.isclose(t.steady_rate, 1.0, rel_tol=0.05)
    assert math.isclose(t.achieved_rate, 1.0, rel_tol=0.05)
    assert backlog(subs, first_mails(mails), START + 50) == 100 - 50  # answered − mailed


def test_backlog_counts_receipts_given_and_not_yet_mailed() -> None:
    subs = offered(10)  # due at 0..9 s, answered 0.1 s later
    firsts = {s.reference: s.due + 2.0 for s in subs if s.reference}
    assert backlog(subs, firsts, START + 5.5) == 2  # OA-004 and OA-005: answered, not mailed
    assert backlog(subs, firsts, START + 20) == 0


def test_quantiles_are_nearest_rank_and_nan_when_empty() -> None:
    assert quantiles([3.0, 1.0, 2.0, 10.0]) == (2.0, 10.0, 10.0)
    assert all(math.isnan(v) for v in quantiles([]))


def test_the_bound_is_the_cpu_when_it_allows_less_than_the_run_slots() -> None:
    c = Costs(
        cores=2,
        cpu_per_report={"flow runs": 0.7, "prefect-server": 0.2, "portal": 0.1},
        idle=0.1,
        others=0.4,
        run_slots=4,
        run_seconds=0.8,
        slot_wait=0.5,
    )
    assert math.isclose(cpu_ceiling(c), 1.5)  # (2 - 0.1 - 0.4) / 1.0
    text = bound(c, 5.0)
    assert text.startswith("CPU: 1.00 CPU-s per report")
    assert "allow 1.5 reports/s" in text and "largest part is flow runs" in text


def test_the_bound_is_the_run_slots_when_runs_are_long_and_the_cpu_idle() -> None:
    c = Costs(
        cores=2,
        cpu_per_report={"flow runs": 0.1},
        run_slots=2,
        run_seconds=4.0,
        slot_wait=30.0,
    )
    assert bound(c, 1.0).startswith("flow-run slots: 2 runs at once × 4.0 s per run")


def _run(rate: float, duration: float, **over: object) -> dict:
    fig = {
        "config": {
            "worker": "runner",
            "runners": 1,
            "limit": 4,
            "rate": rate,
            "duration": duration,
            "load_at_start": [1.0, 1.0, 1.0],
        },
        "measured": {"date": "2026-12-03 07:00 UTC", "commit": "abc1234"},
        "offered": int(rate * duration),
        "offered_rate": rate,
        "accepted": int(rate * duration),
        "failed": 0,
        "achieved_rate": rate,
        "steady_rate": rate,
        "run_rate": rate,
        "by_sweep": 0,
        "tail": 2.0,
        "receipt": [0.05, 0.2, 0.3],
        "notify": [1.5, 3.0, 5.0],
        "phases": {
            "create": [0.1, 0.5, 1.0],
            "wait": [1.0, 2.0, 3.0],
            "run": [0.5, 0.9, 1.2],
            "reports_with_restarts": 0,
        },
        "unmailed": 0,
        "queued": 0,
        "lost": 0,
        "duplicates": 0,
        "duplicate_messages": 0,
        "trigger_timeouts": 0,
        "http_503": 0,
        "peak_rss": {"orosflow": 2**30, "prefect-server": 2**28},
        "peak_pss": {"orosflow": 2**29, "prefect-server": 2**28},
        "peak_runs": 4,
        "cpu_per_report": {"flow runs": 0.6, "portal": 0.05},
        "cpu_per_report_total": 0.65,
        "flow_run_detail": {"user": 0.5, "system": 0.1},
        "cpu_idle_rate": 0.05,
        "cpu_others_rate": 0.3,
        "machine_busy": 0.8,
        "cpu_ceiling": 2.5,
        "reached": True,
        "kept_up": True,
        "bound": "CPU: …",
    }
    fig.update(over)
    return fig


def test_a_new_run_replaces_its_own_column_and_keeps_the_others() -> None:
    old = [_run(5, 600, reached=False, kept_up=False, run_rate=1.2), _run(1, 120)]
    new = [_run(5, 600)]
    merged = report.merge_runs(old, new)
    assert [(r["config"]["rate"], r["config"]["duration"]) for r in merged] == [
        (5, 600),
        (1, 120),
    ]
    assert merged[0]["reached"] is True


def test_the_section_round_trips_through_the_page_and_leaves_the_rest_alone() -> None:
    page = "# Benchmarks\n\n## Figures\n\nthe table\n\n<!-- serve-burst: begin -->\nserve\n"
    page += "<!-- serve-burst: end -->\n"
    runs = [_run(5, 600, reached=False, kept_up=False, run_rate=1.23), _run(2, 120)]
    once = report.replace_sustained(page, runs)
    assert once.startswith(page.rstrip("\n"))
    assert report.sustained_runs(once) == runs
    assert "**not held**: ceiling ≈ 1.23/s" in once and "**held**" in once
    assert "| time-to-notify p50 / p95 / max " in once
    twice = report.replace_sustained(once, report.merge_runs(runs, [_run(2, 120)]))
    assert twice == once  # replaced in place, not appended again
    assert report.sustained_runs("# Benchmarks\n") == []
