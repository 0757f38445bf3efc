"""Deadline arithmetic and the transition table, without a database."""

from __future__ import annotations

from datetime import UTC, timedelta

from helpers_lifecycle import local

from models.tables import Handover
from orosflow.handover.lifecycle import TRANSITIONS, handover_deadline, next_step_due


def test_not_acute_deadline_skips_easter_and_weekend() -> None:
    # Maundy Thursday 2 April 2026, 15:00 → Good Friday, weekend, Easter Monday off.
    due = handover_deadline("not_acute", "sdf-sodermalm", local(2026, 4, 2, 15, 0))
    assert due == local(2026, 4, 7, 12, 0).astimezone(UTC) and due.tzinfo is UTC


def test_not_acute_deadline_is_noon_next_working_day_also_for_socialjour() -> None:
    assert handover_deadline("not_acute", "sj-0180", local(2026, 11, 23, 8, 0)) == local(
        2026, 11, 24, 12, 0
    )
    # Friday before New Year's Day on a Monday.
    assert handover_deadline("not_acute", "intake-1980", local(2028, 12, 29, 15, 0)) == local(
        2029, 1, 2, 12, 0
    )


def test_acute_deadline_is_sixty_minutes_and_steps_follow_the_period() -> None:
    t = local(2026, 11, 23, 23, 30)
    assert handover_deadline("acute", "sj-0180", t) == t + timedelta(minutes=60)
    h = Handover(unit_id="sj-0180", deadline_at=t, escalation_step=0)  # type: ignore[call-arg]
    assert next_step_due(h, "acute") == t
    h.escalation_step, h.last_escalated_at = 1, t + timedelta(minutes=3)
    assert next_step_due(h, "acute") == t + timedelta(minutes=63)
    h.escalation_step = 3
    assert next_step_due(h, "acute") is None


def test_transition_table_has_the_agreed_shape() -> None:
    confirm = TRANSITIONS["confirm"]
    assert confirm.sources == {"created", "notified", "escalated"} and confirm.target == "confirmed"
    assert TRANSITIONS["hand_over"].sources == {"routed"}
    assert TRANSITIONS["close"].sources == {"feedback_received"}
    assert all(t.rule.startswith("L-") for t in TRANSITIONS.values())
