"""Database tables. Personal data lives only in the ``*_enc`` columns (AES-GCM, per-report key).

Everything else is metadata that Prefect, auditors and statistics may see: ids, reference
numbers, states, municipality codes of recipients, timestamps and rule ids.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class ReportStatus:
    RECEIVED = "received"
    ROUTED = "routed"
    HANDED_OVER = "handed_over"
    FEEDBACK_RECEIVED = "feedback_received"
    CLOSED = "closed"
    ERASED = "erased"


class HandoverStatus:
    CREATED = "created"
    NOTIFIED = "notified"
    CONFIRMED = "confirmed"
    ESCALATED = "escalated"
    DECLINED = "declined"
    FAILED = "failed"


class Report(SQLModel, table=True):
    """One child's report. Siblings from one form share ``sibling_group_id``."""

    __tablename__ = "report"

    id: str = Field(primary_key=True, max_length=36)
    reference: str = Field(unique=True, index=True, max_length=20)
    sibling_group_id: str = Field(index=True, max_length=36)
    child_index: int
    status: str = Field(default=ReportStatus.RECEIVED, index=True, max_length=24)
    urgency: str = Field(max_length=12)
    report_date: date
    submitted_at: datetime = Field(sa_type=UTCDateTime, index=True)
    submitted_by: str = Field(max_length=120)
    clinic_municipality: str = Field(max_length=4)
    #: Shared parts of the form (concern, reporter, clinic, guardians' context), encrypted.
    payload_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    flow_run_id: str | None = Field(default=None, max_length=36)
    flow_triggered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: SHA-256 of the reporter's normalised e-mail, for "my reports" without decrypting all.
    reporter_digest: str | None = Field(default=None, index=True, max_length=64)
    #: Concern category ids, comma-separated (codes only, for statistics without decryption).
    categories: str | None = Field(default=None, max_length=400)
    #: The routing decision made once, at submission (``routing.Decision`` as JSON: unit ids,
    #: rule ids, explanations; never the child's data). The flow delivers exactly this.
    decision_json: str | None = Field(default=None, sa_type=Text)


class ReportKey(SQLModel, table=True):
    """The report's data key wrapped by its period's key and then by a master key (see
    ``orosflow.core.periodkeys``). Deleting this row erases the report; destroying the period's
    key erases it in every backup too."""

    __tablename__ = "report_key"

    report_id: str = Field(primary_key=True, foreign_key="report.id", max_length=36)
    master_key_id: str = Field(max_length=32)
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)
    #: Period key (``YYYY-MM``) under the master wrapping; NULL: master key only (older rows).
    period: str | None = Field(default=None, max_length=7)


class ChildRecord(SQLModel, table=True):
    __tablename__ = "child"

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", unique=True, max_length=36)
    data_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class GuardianRecord(SQLModel, table=True):
    __tablename__ = "guardian"
    __table_args__ = (UniqueConstraint("report_id", "position"),)

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    position: int
    data_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Handover(SQLModel, table=True):
    """One recipient of one report, with the routing decision that chose it."""

    __tablename__ = "handover"
    __table_args__ = (UniqueConstraint("report_id", "unit_id", "attempt"),)

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    attempt: int = 1
    position: int
    municipality: str = Field(index=True, max_length=4)
    municipality_name: str = Field(max_length=80)
    unit_id: str = Field(index=True, max_length=80)
    unit_kind: str = Field(max_length=16)
    unit_name: str = Field(max_length=160)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    phone_required: bool = False
    rule: str = Field(max_length=40)
    explanation: str = Field(max_length=2000)
    directory_version: str = Field(max_length=40)
    status: str = Field(default=HandoverStatus.CREATED, index=True, max_length=16)
    message_id: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: When the unit next reads written reports (None: it was open when the report was routed);
    #: the confirmation deadline counts from here.
    opens_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_by: str | None = Field(default=None, max_length=120)
    #: Lifecycle (orosflow.handover.lifecycle): escalation ladder position and links between
    #: attempts.
    escalation_step: int = 0
    last_escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_from: str | None = Field(default=None, index=True, max_length=36)
    rerouted_from: str | None = Field(default=None, index=True, max_length=36)
    declined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    declined_by: str | None = Field(default=None, max_length=120)
    decline_reason: str | None = Field(default=None, max_length=40)


class AuditEvent(SQLModel, table=True):
    """Append-only, hash-chained log; ``prev_hash`` is unique so the chain cannot fork."""

    __tablename__ = "audit_event"

    seq: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=120)
    action: str = Field(max_length=60, index=True)
    report_id: str | None = Field(default=None, index=True, max_length=36)
    handover_id: str | None = Field(default=None, max_length=36)
    rule: str | None = Field(default=None, max_length=40)
    details: str = Field(default="{}")
    prev_hash: str = Field(unique=True, max_length=64)
    hash: str = Field(unique=True, max_length=64)


class PhoneContact(SQLModel, table=True):
    """A recorded phone call from the counselor to social services (who answered, when)."""

    __tablename__ = "phone_contact"

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    unit_id: str | None = Field(default=None, max_length=80)
    answered_by: str = Field(max_length=120)
    called_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: str = Field(max_length=120)


class Feedback(SQLModel, table=True):
    """Feedback (återkoppling) from a unit; outcome and date are sensitive, so encrypted."""

    __tablename__ = "feedback"

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    handover_id: str = Field(foreign_key="handover.id", max_length=36)
    unit_id: str = Field(max_length=80)
    #: ``{"outcome": ..., "decided_on": ...}`` sealed with the report's data key.
    data_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: str = Field(max_length=120)


class LifecycleMail(SQLModel, table=True):
    """Outbox of lifecycle e-mails; the id is the stable Message-ID's local part.

    Holds no address: the recipient is resolved when the mail is sent.
    """

    __tablename__ = "lifecycle_mail"

    id: str = Field(primary_key=True, max_length=120)
    kind: str = Field(max_length=40)
    report_id: str = Field(foreign_key="report.id", index=True, max_length=36)
    handover_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Who holds the claim (the flow run id): a run found dead gives its claims back at once.
    claimed_by: str | None = Field(default=None, max_length=64)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    attempts: int = 0


class IdempotencyKey(SQLModel, table=True):
    """A client's ``Idempotency-Key`` (or the portal form's one-time token) and what it stored.

    Holds no content: the key's digest (with the account), a keyed digest of the body, and the
    submission's sibling group. Kept for a day (``expires_at``), then deleted.
    """

    __tablename__ = "idempotency_key"

    #: SHA-256 of the account and the key: the primary key makes a concurrent twin fail.
    key_digest: str = Field(primary_key=True, max_length=64)
    #: HMAC of the canonical body (``orosflow.core.crypto.lookup_digests``).
    body_digest: str = Field(max_length=64)
    #: The submission the key stores (set with the key, in the submission's transaction).
    sibling_group_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class RecentChildReport(SQLModel, table=True):
    """The newest report for one child from one counselor, for the duplicate question.

    ``pair_digest`` is a keyed HMAC of the reporter's e-mail and the child's personnummer, never
    either in clear; the row is deleted after the duplicate window (``expires_at``). Its
    primary key, locked for the transaction, makes two simultaneous reports for the same child
    from the same counselor wait for each other, so the second sees the first.
    """

    __tablename__ = "recent_child_report"

    pair_digest: str = Field(primary_key=True, max_length=64)
    #: The report's reference (None only inside the transaction that creates the row).
    reference: str | None = Field(default=None, max_length=20)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class ReferenceCounter(SQLModel, table=True):
    """Last reference number issued per year (``OA-<year>-<6 digits>``)."""

    __tablename__ = "reference_counter"

    year: int = Field(primary_key=True)
    last: int = 0


from models.accounts import ApiToken, MfaRecoveryCode, OidcLogin, UserAccount, WebSession  # noqa: E402,F401  (registered too)
