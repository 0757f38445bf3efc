"""Fault matrix: the SMTP relay down mid-flow, PostgreSQL restarted while a mail is in flight,
a submission sent twice (a client's network retry), a crash between the send and its record,
and the database failing while the run loads the report, each through the real
concern-report flow, a real Prefect server and a real SMTP server. Each ends with no report
lost and no mail delivered as two different messages.

The faults that need whole processes have modules of their own (each starts its own servers):
Prefect down while reports arrive (tests/test_serve_recovery.py), a worker killed mid-flow
(tests/test_worker_recovery.py), serve killed (tests/test_serve_lifetime.py). A failed run
restarted by the reconciler is tests/test_reconcile.py. docs/reliability.md lists them all
with the results of one run."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from models.tables import AuditEvent, Handover, HandoverStatus
from orosflow.core import db as dbmod
from orosflow.core import mail
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover.duplicates import SubmitOnce
from orosflow.handover.lifecycle import outbox
from orosflow.handover.reconcile import reconcile_once
from orosflow.handover.submission import submit

from factories import form
from support import free_port


class PostgresProxy:
    """A TCP hop in front of the shared PostgreSQL. ``restart`` looks to the app exactly like a
    server restart — every connection dropped, new ones refused for a while — without touching
    the server other tests use."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target, self.port = target, free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _stop_listening(self) -> None:
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (Linux)
        except OSError:
            pass
        self._server.close()

    def restart(self, down: float) -> None:
        self._stop_listening()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        threading.Timer(down, self._open).start()

    def close(self) -> None:
        self._stop_listening()


def _sent_events(rid: str) -> int:
    with session_scope() as s:
        return len(
            s.exec(
                select(AuditEvent).where(
                    AuditEvent.report_id == rid, AuditEvent.action == "mail.sent"
                )
            ).all()
        )


def _handover_status(rid: str) -> str:
    with session_scope() as s:
        return s.exec(select(Handover).where(Handover.report_id == rid)).one().status


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_postgres_restarted_between_send_and_record_gives_one_mail(
    db: str, smtp, prefect_server: Path, office_hours: None, monkeypatch
) -> None:
    import flows.concern_report as cr

    proxy = PostgresProxy()
    url = str(dbmod.get_engine().url.render_as_string(hide_password=False))
    monkeypatch.setenv("OROSFLOW_DATABASE_URL", url.replace(":5432/", f":{proxy.port}/"))
    reset_settings()
    dbmod.reset_engine()
    try:
        receipt = submit(form(), actor="test:counselor")
        rid = receipt.reports[0].report_id
        real_send = mail.send

        async def send_then_restart(msg):  # noqa: ANN001, ANN202
            await real_send(msg)
            proxy.restart(down=3)  # the mail has left; its record must wait for the database

        monkeypatch.setattr(mail, "send", send_then_restart)
        await cr.concern_report(rid)

        print(f"PostgreSQL restarted after the send: mailed {len(smtp.messages())} time(s)")
        assert len(smtp.messages()) == 1
        assert _sent_events(rid) == 1
        assert _handover_status(rid) == HandoverStatus.NOTIFIED
        assert outbox.pending_mails(rid) == []
    finally:
        proxy.close()
        dbmod.reset_engine()


class RunInProcess:
    """The reconciler's run creation, replaced by running the flow here (as a worker would)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    async def __call__(self, items, attempts):  # noqa: ANN001, ANN204
        import flows.concern_report as cr

        for rid, _ in items:
            self.started.append(rid)
            await cr.concern_report(rid)
        return {rid: "restarted" for rid, _ in items}


async def test_crash_between_send_and_record_resends_the_same_message(
    sqlite_db: str, smtp, prefect_server: Path, office_hours: None, monkeypatch
) -> None:
    """A sender that dies after the relay took the mail and before it was recorded cannot know
    what happened; the restart sends it again, as the same message (same Message-ID, which the
    receiving system shows once), and records it. Nothing is lost."""
    import flows.concern_report as cr

    receipt = submit(form(), actor="test:counselor")
    rid = receipt.reports[0].report_id
    real_mark_sent = outbox.mark_sent
    crashes = iter([True])

    def crash_once(mail_id: str) -> None:
        if next(crashes, False):
            raise RuntimeError("the process died here")
        real_mark_sent(mail_id)

    monkeypatch.setattr(outbox, "mark_sent", crash_once)
    monkeypatch.setattr(cr, "send_mail", cr.send_mail.with_options(retries=0))
    with pytest.raises(Exception):  # noqa: B017 - the run ends unfinished
        await cr.concern_report(rid)
    assert len(smtp.messages()) == 1 and _sent_events(rid) == 0

    starter = RunInProcess()
    assert await reconcile_once(grace=timedelta(0), starter=starter) == 1
    messages = smtp.messages()
    ids = {str(m["Message-ID"]).strip() for m in messages}
    print(f"crash between send and record: mailed {len(messages)} time(s), {len(ids)} Message-ID")
    assert len(messages) == 2
    assert len({str(m["Message-ID"]).strip() for m in messages}) == 1
    assert _sent_events(rid) == 1
    assert _handover_status(rid) == HandoverStatus.NOTIFIED
    assert await reconcile_once(grace=timedelta(0), starter=starter) == 0


async def test_smtp_down_mid_flow_the_send_waits_and_one_mail_arrives(
    sqlite_db: str, prefect_server: Path, office_hours: None, tmp_path: Path, monkeypatch
) -> None:
    """The relay is down when the run reaches the send and up a second later: the send's
    retries carry the mail over, once."""
    import asyncio

    import flows.concern_report as cr

    port = free_port()  # nothing listens here yet: connection refused
    monkeypatch.setenv("OROSFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OROSFLOW_SMTP_PORT", str(port))
    reset_settings()
    receipt = submit(form(), actor="test:counselor")
    rid = receipt.reports[0].report_id
    run = asyncio.create_task(cr.concern_report(rid))
    await asyncio.sleep(1.5)
    assert not run.done() and _sent_events(rid) == 0
    relay = MailCapture(tmp_path / "mail", port=port).start()
    try:
        await asyncio.wait_for(run, 90)
        print(f"SMTP down 1.5 s: mailed {len(relay.messages())} time(s)", flush=True)
        assert len(relay.messages()) == 1
        assert _sent_events(rid) == 1
        assert _handover_status(rid) == HandoverStatus.NOTIFIED
        assert outbox.pending_mails(rid) == []
    finally:
        relay.stop()


async def test_a_submission_sent_twice_is_one_report_and_one_mail(
    sqlite_db: str, smtp: MailCapture, prefect_server: Path, office_hours: None
) -> None:
    """A clinic system's network retry (same Idempotency-Key, same body) after the first
    receipt was lost on the way back: the retry gets the first receipt, one report is stored,
    and delivering both "reports" sends one mail."""
    import flows.concern_report as cr

    body = form()
    keyring = load_keyring()

    def once() -> SubmitOnce:
        return SubmitOnce(actor="user:kim.kurator", keyring=keyring, key="retry-1", body=body)

    first = submit(body, actor="user:kim.kurator", once=once())
    again = submit(body, actor="user:kim.kurator", once=once())
    assert again.replayed and not first.replayed
    assert [r.reference for r in again.reports] == [r.reference for r in first.reports]
    for receipt in (first, again):
        await cr.concern_report(receipt.reports[0].report_id)
    rid = first.reports[0].report_id
    print(f"submission sent twice: 1 report, mailed {len(smtp.messages())} time(s)")
    assert len(smtp.messages()) == 1
    assert _sent_events(rid) == 1
    assert _handover_status(rid) == HandoverStatus.NOTIFIED


def _flaky_load(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    """The report's load fails ``failures`` times with a database error, then works; returns
    the list the attempts are counted in."""
    from sqlalchemy.exc import OperationalError

    from orosflow.handover import delivery

    real = delivery.load_and_revalidate
    attempts: list[int] = []

    def flaky(report_id: str, flow_run_id: str | None = None) -> str:
        attempts.append(1)
        if len(attempts) <= failures:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real(report_id, flow_run_id)

    monkeypatch.setattr(delivery, "load_and_revalidate", flaky)
    return attempts


async def test_database_error_while_loading_is_retried_and_one_mail_arrives(
    sqlite_db: str, smtp: MailCapture, prefect_server: Path, office_hours: None, monkeypatch
) -> None:
    """The report cannot be read for a moment (the database drops the connection): the load
    is tried again (twice at most) and the run delivers, once."""
    import flows.concern_report as cr

    monkeypatch.setattr(cr, "REVALIDATE_RETRY_DELAY_S", 0.1)
    attempts = _flaky_load(monkeypatch, failures=2)
    rid = submit(form(), actor="test:counselor").reports[0].report_id
    await cr.concern_report(rid)
    assert len(attempts) == 3
    assert len(smtp.messages()) == 1 and _sent_events(rid) == 1
    assert _handover_status(rid) == HandoverStatus.NOTIFIED


async def test_database_down_past_the_load_retries_fails_the_run_and_keeps_the_mail(
    sqlite_db: str, smtp: MailCapture, prefect_server: Path, office_hours: None, monkeypatch
) -> None:
    """Past its retries the load's error fails the run (the reconciler restarts it); nothing
    was sent and the mail stays queued."""
    from sqlalchemy.exc import OperationalError

    import flows.concern_report as cr

    monkeypatch.setattr(cr, "REVALIDATE_RETRY_DELAY_S", 0.1)
    attempts = _flaky_load(monkeypatch, failures=99)
    rid = submit(form(), actor="test:counselor").reports[0].report_id
    with pytest.raises(OperationalError):
        await cr.concern_report(rid)
    assert len(attempts) == 3
    assert smtp.messages() == [] and _sent_events(rid) == 0
    assert len(outbox.pending_mails(rid)) == 1
