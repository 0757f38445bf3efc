"""The handover lifecycle, the one owner of every state change and every mail.

- :mod:`.states`: statuses, their Swedish labels, the transition table, ``apply_transition``;
- :mod:`.deadlines`: confirmation, escalation, phone and feedback deadlines;
- :mod:`.lookups`: finding reports and handovers;
- :mod:`.handovers`: ``create_handover`` (with its notification in the outbox);
- :mod:`.outbox`: the mails, queued with the state change and delivered by the report's run
  (a handover's notification sent moves it to notified);
- :mod:`.mail_render`: the kinds of mail, whom each goes to, and how it is written;
- :mod:`.actions`: confirm, decline, phone contact, feedback, close.
"""

from orosflow.handover.lifecycle.actions import (
    DECLINE_REASONS,
    FEEDBACK_OUTCOMES,
    ActionResult,
    close_report,
    confirm,
    correct_feedback,
    decline,
    feedback_rows,
    open_feedback,
    read_feedback,
    record_feedback,
    record_phone_contact,
    reporter_digest,
)
from orosflow.handover.lifecycle.deadlines import (
    ESCALATION_STEPS,
    LAST_STEP,
    feedback_deadline_verified,
    feedback_due,
    handover_deadline,
    local_text,
    next_step_due,
    phone_due,
)
from orosflow.handover.lifecycle.handovers import create_handover
from orosflow.handover.lifecycle.lookups import (
    handover_for_unit,
    obligation_settled,
    report_by_reference,
    report_handovers,
)
from orosflow.handover.lifecycle.outbox import enqueue_mail
from orosflow.handover.lifecycle.states import (
    HANDOVER_LABELS,
    REPORT_LABELS,
    TRANSITIONS,
    H,
    IllegalTransition,
    LifecycleError,
    R,
    apply_transition,
)

__all__ = [
    "DECLINE_REASONS",
    "ESCALATION_STEPS",
    "FEEDBACK_OUTCOMES",
    "HANDOVER_LABELS",
    "LAST_STEP",
    "REPORT_LABELS",
    "TRANSITIONS",
    "ActionResult",
    "H",
    "IllegalTransition",
    "LifecycleError",
    "R",
    "apply_transition",
    "close_report",
    "confirm",
    "correct_feedback",
    "create_handover",
    "decline",
    "enqueue_mail",
    "feedback_deadline_verified",
    "feedback_due",
    "feedback_rows",
    "handover_deadline",
    "handover_for_unit",
    "local_text",
    "next_step_due",
    "obligation_settled",
    "open_feedback",
    "phone_due",
    "read_feedback",
    "record_feedback",
    "record_phone_contact",
    "report_by_reference",
    "report_handovers",
    "reporter_digest",
]
