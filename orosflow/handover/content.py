"""Sealing, reading (and erasing) a report's personal data. Every read appends an audit event.

The decrypted values are registered with the log redactor before anyone can print them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models.form import Child, ConcernForm, Guardian
from models.tables import ChildRecord, GuardianRecord, Report, ReportKey
from orosflow.core.audit import append_event
from orosflow.core.crypto import (
    CryptoError,
    KeyMismatch,
    Keyring,
    new_data_key,
    open_json,
    seal_json,
)
from orosflow.core.periodkeys import unwrap_report_key, wrap_report_key
from orosflow.core.redaction import register_sensitive


class ReportNotFound(LookupError):
    pass


class ReportErased(LookupError):
    """The report's key has been deleted (retention or erasure): its content is gone."""


@dataclass
class ReportContent:
    report: Report
    form: ConcernForm  # with exactly this report's child in ``children``

    @property
    def child(self) -> Child:
        return self.form.children[0]


def _sensitive_strings(form: ConcernForm) -> list[str]:
    values: list[Any] = [
        form.concern.observations,
        form.concern.child_said,
        form.child_view,
        form.reporter.name,
        form.reporter.email,
        form.reporter.phone,
    ]
    for c in form.children:
        values += [c.name, c.personal_number, c.address, c.school, c.staying_description]
        if c.personal_number:
            values += [
                c.personal_number[2:],
                f"{c.personal_number[2:8]}-{c.personal_number[8:]}",
                f"{c.personal_number[:8]}-{c.personal_number[8:]}",
            ]
    for g in form.guardians:
        values += [g.name, g.phone, g.not_informed_reason]
    for o in form.other_children:
        values.append(o.name)
    return [v for v in values if isinstance(v, str)]


@dataclass
class SealedReport:
    """One child's report encrypted, ready to store: sealed before the write transaction, so
    the encryption and the read-back check do not hold the database's write lock."""

    report_id: str
    master_key_id: str
    period: str
    wrapped_key: bytes
    payload_enc: bytes
    child_enc: bytes
    guardian_blobs: list[bytes]

    def blobs(self) -> list[tuple[bytes, str]]:
        """Each sealed part with its associated data (what binds it to this report)."""
        return [
            (self.payload_enc, f"report:{self.report_id}:payload"),
            (self.child_enc, f"child:{self.report_id}"),
            *(
                (blob, f"guardian:{self.report_id}:{pos}")
                for pos, blob in enumerate(self.guardian_blobs)
            ),
        ]


def seal_report(
    keyring: Keyring, report_id: str, payload: Any, child: Child, form: ConcernForm, at: datetime
) -> SealedReport:
    """Encrypt one child's report under a new data key, wrapped for ``at``'s period."""
    data_key = new_data_key()
    key_id, period, wrapped = wrap_report_key(keyring, data_key, report_id, at)
    return SealedReport(
        report_id=report_id,
        master_key_id=key_id,
        period=period,
        wrapped_key=wrapped,
        payload_enc=seal_json(data_key, payload, f"report:{report_id}:payload"),
        child_enc=seal_json(data_key, child.model_dump(mode="json"), f"child:{report_id}"),
        guardian_blobs=[
            seal_json(data_key, g.model_dump(mode="json"), f"guardian:{report_id}:{pos}")
            for pos, g in enumerate(form.guardians)
        ],
    )


def check_readable(sealed: list[SealedReport], keyring: Keyring) -> None:
    """Open what is about to be stored with the keyring as it is configured now (read again by
    the caller); :class:`KeyMismatch` if any part cannot be opened.

    Catches a key that differs from the one the parts were wrapped with (a key file replaced
    by another process, a changed ``OROSFLOW_SECRET_KEY``), so a counselor never gets a receipt
    for a report that nobody can open. Not an audited read: nothing is shown to anyone."""
    for report in sealed:
        try:
            data_key = unwrap_report_key(
                keyring, report.master_key_id, report.wrapped_key, report.report_id, report.period
            )
            for blob, aad in report.blobs():
                open_json(data_key, blob, aad)
        except CryptoError:
            raise KeyMismatch() from None


def decrypt_report(session: Session, report_id: str, *, keyring: Keyring) -> ReportContent:
    """Decrypt one report without an audit event: only for a caller that has appended the
    read's event itself (:func:`audit_read`), e.g. before, in a short transaction of its own,
    so that the decryption holds no write lock. Everyone else uses :func:`read_report`."""
    report = session.get(Report, report_id)
    if report is None:
        raise ReportNotFound(report_id)
    key_row = session.get(ReportKey, report_id)
    if key_row is None:
        raise ReportErased(report.reference)
    data_key = unwrap_report_key(
        keyring, key_row.master_key_id, key_row.wrapped_key, report_id, key_row.period
    )
    payload = open_json(data_key, report.payload_enc, f"report:{report_id}:payload")
    child_row = session.exec(select(ChildRecord).where(ChildRecord.report_id == report_id)).one()
    child = open_json(data_key, child_row.data_enc, f"child:{report_id}")
    guardians = [
        Guardian.model_validate(
            open_json(data_key, g.data_enc, f"guardian:{report_id}:{g.position}")
        )
        for g in session.exec(
            select(GuardianRecord)
            .where(GuardianRecord.report_id == report_id)
            .order_by(col(GuardianRecord.position))
        )
    ]
    assert isinstance(payload, dict)
    form = ConcernForm.model_validate({**payload, "children": [child], "guardians": []})
    form = form.model_copy(update={"guardians": guardians})
    register_sensitive(_sensitive_strings(form))
    return ReportContent(report=report, form=form)


def audit_read(session: Session, report_id: str, *, actor: str, purpose: str) -> None:
    """The audit event of a content read (``content.read``), in the session's transaction."""
    append_event(
        session,
        actor=actor,
        action="content.read",
        report_id=report_id,
        details={"purpose": purpose},
    )


def read_report(
    session: Session,
    report_id: str,
    *,
    keyring: Keyring,
    actor: str,
    purpose: str,
) -> ReportContent:
    """Decrypt one report for ``actor``; the read itself is an audit event in this transaction."""
    content = decrypt_report(session, report_id, keyring=keyring)
    audit_read(session, report_id, actor=actor, purpose=purpose)
    return content
