"""Notification e-mail: rendered from ``templates/email`` and sent with aiosmtplib.

A message is a pure function of its handover, so a retried send produces the same message with
the same Message-ID (``<handover-id@domain>``) and receivers can discard the duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from orosflow.core.settings import PROJECT_ROOT, Settings, get_settings

TEMPLATES = PROJECT_ROOT / "templates"


@lru_cache
def template_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class Notification:
    """Everything a notification may say. Deliberately no field about the child."""

    handover_id: str
    reference: str
    urgency: str
    clinic_name: str
    unit_name: str
    to: str
    phone_required: bool
    created_at_rfc2822: str
    report_url: str


def message_id(handover_id: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"<{handover_id}@{settings.mail_domain}>"


def render(n: Notification, settings: Settings | None = None) -> EmailMessage:
    settings = settings or get_settings()
    env = template_env()
    ctx = {**n.__dict__, "wrong_recipient_hint": True}
    msg = EmailMessage()
    msg["Subject"] = env.get_template("email/notification_subject.txt.j2").render(ctx).strip()
    msg["From"] = settings.mail_from
    msg["To"] = n.to
    msg["Message-ID"] = message_id(n.handover_id, settings)
    msg["Date"] = n.created_at_rfc2822
    msg["X-Orosflow-Reference"] = n.reference
    msg.set_content(env.get_template("email/notification.txt.j2").render(ctx))
    msg.add_alternative(env.get_template("email/notification.html.j2").render(ctx), subtype="html")
    return msg


def rfc2822(dt) -> str:  # type: ignore[no-untyped-def]
    return format_datetime(dt)


async def send(msg: EmailMessage, settings: Settings | None = None) -> None:
    """Hand the message to the SMTP server; raises on refusal so the task can retry."""
    s = settings or get_settings()
    await aiosmtplib.send(
        msg,
        hostname=s.smtp_host,
        port=s.smtp_port,
        start_tls=s.smtp_starttls,
        username=s.smtp_username,
        password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        timeout=s.smtp_timeout,
    )
