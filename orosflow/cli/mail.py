"""``orosflow mail test ADDRESS``: one test mail through the configured SMTP relay.

The operator's check of the relay step in docs/deploy.md: the same transport, settings,
STARTTLS and AUTH as the notifications, so a wrong port, an untrusted certificate (an internal
CA needs ``SSL_CERT_FILE``) or a wrong password shows here, in Swedish, and not as a report
whose mail never leaves. The mail carries no personal data: a fixed text and the sender.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from orosflow.core.mail import send
from orosflow.core.settings import Settings, get_settings

TEST_SUBJECT = "Orosflow: testmeddelande"
TEST_BODY = (
    "Detta är ett testmeddelande från Orosflow (orosflow mail test).\n"
    "Det innehåller inga uppgifter om någon anmälan eller person.\n"
    "Kom det fram, så når Orosflows aviseringar er via detta SMTP-relä.\n"
)


class RelayError(Exception):
    """A failed test send: a stable code for programs and a Swedish message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def build_test_mail(address: str, settings: Settings) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = TEST_SUBJECT
    msg["From"] = settings.mail_from
    msg["To"] = address
    msg["Message-ID"] = make_msgid("orosflow-test", domain=settings.mail_domain)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg.set_content(TEST_BODY)
    return msg


def _explain(exc: BaseException, s: Settings) -> RelayError:
    """Tell the operator which part of the relay set-up failed."""
    relay = f"{s.smtp_host}:{s.smtp_port}"
    # The TLS handshake's own error may be wrapped by aiosmtplib: look down the chain.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return RelayError(
                "tls_certificate",
                f"TLS mot {relay} misslyckades: reläets certifikat godtas inte "
                f"({seen.verify_message}). Är det utfärdat av en intern CA, sätt SSL_CERT_FILE "
                "till CA-certifikatet i inställningsfilen.",
            )
        if isinstance(seen, ssl.SSLError):
            return RelayError("tls_failed", f"TLS mot {relay} misslyckades: {seen}.")
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return RelayError(
            "auth_failed",
            f"Reläet {relay} godtog inte inloggningen som {s.smtp_username!r}: "
            f"{exc.code} {exc.message}. Kontrollera OROSFLOW_SMTP_USERNAME och "
            "OROSFLOW_SMTP_PASSWORD.",
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        answers = "; ".join(f"{e.code} {e.message}" for e in exc.recipients)
        return RelayError("recipient_refused", f"Reläet {relay} vägrade mottagaren: {answers}.")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return RelayError(
            "sender_refused",
            f"Reläet {relay} vägrade avsändaren {exc.sender}: {exc.code} {exc.message}. "
            "Kontrollera OROSFLOW_MAIL_FROM.",
        )
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError | TimeoutError):
        return RelayError("timeout", f"Reläet {relay} svarade inte inom {s.smtp_timeout:.0f} s.")
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionError | OSError):
        return RelayError(
            "connection_failed",
            f"Kunde inte ansluta till reläet {relay}: {exc}. Kontrollera OROSFLOW_SMTP_HOST, "
            "OROSFLOW_SMTP_PORT och brandväggen.",
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return RelayError("relay_refused", f"Reläet {relay} svarade {exc.code} {exc.message}.")
    text = str(exc)
    if "STARTTLS" in text.upper():
        return RelayError(
            "starttls_unsupported",
            f"Reläet {relay} erbjuder inte STARTTLS. Kontrollera porten (oftast 587) eller "
            "OROSFLOW_SMTP_STARTTLS.",
        )
    if "AUTH" in text.upper():
        return RelayError(
            "auth_unsupported",
            f"Reläet {relay} erbjuder ingen inloggning (AUTH) här"
            + ("" if s.smtp_starttls else "; många relän kräver STARTTLS först")
            + ".",
        )
    return RelayError("smtp_failed", f"Testbrevet kunde inte skickas via {relay}: {text}.")


async def send_test_mail(address: str, settings: Settings | None = None) -> str:
    """Send the test mail; returns the relay's answer to it, raises ``RelayError``."""
    s = settings or get_settings()
    try:
        return await send(build_test_mail(address, s), s)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise _explain(exc, s) from exc


def cmd_mail_test(args: argparse.Namespace) -> int:
    s = get_settings()
    relay = f"{s.smtp_host}:{s.smtp_port}"
    try:
        reply = asyncio.run(send_test_mail(args.address, s))
    except RelayError as exc:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message, "fields": []}}))
        print(exc.message, file=sys.stderr)
        return 1
    print(
        json.dumps(
            {"relay": relay, "starttls": s.smtp_starttls, "reply": reply}, ensure_ascii=False
        )
    )
    print(
        f"Testbrevet till {args.address} är lämnat till reläet {relay}"
        f"{' (STARTTLS)' if s.smtp_starttls else ''}. Reläet svarade: {reply}",
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("mail", help="e-post: pröva SMTP-reläet")
    msub = m.add_subparsers(dest="mail_command", required=True, metavar="KOMMANDO")
    t = msub.add_parser(
        "test", help="skicka ett testbrev (utan personuppgifter) via det inställda reläet"
    )
    t.add_argument("address", help="mottagarens e-postadress")
    t.set_defaults(func=cmd_mail_test)
