"""E-mail: one builder over ``templates/email`` and the SMTP transport (aiosmtplib).

What a mail says is decided by the outbox (``orosflow.handover.lifecycle.outbox``); here it is
only rendered and sent. Receivers can discard a duplicate by its stable Message-ID.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

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


def message_id(handover_id: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"<{handover_id}@{settings.mail_domain}>"


def rfc2822(dt: datetime) -> str:
    return format_datetime(dt)


def build(
    template: str,
    ctx: dict[str, Any],
    *,
    to: str,
    message_id: str,
    date: datetime,
    reference: str,
    in_reply_to: str | None = None,
    settings: Settings | None = None,
) -> EmailMessage:
    """The one mail builder: ``email/<template>_subject.txt.j2`` and ``<template>.txt.j2``, plus
    ``<template>.html.j2`` as an alternative when it exists. A pure function of its inputs, so a
    retried send is the same message with the same Message-ID."""
    settings = settings or get_settings()
    env = template_env()
    subject = env.get_template(f"email/{template}_subject.txt.j2").render(ctx)
    msg = EmailMessage()
    msg["Subject"] = " ".join(subject.split())
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Message-ID"] = message_id
    msg["Date"] = rfc2822(date)
    msg["X-Orosflow-Reference"] = reference
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content(env.get_template(f"email/{template}.txt.j2").render(ctx))
    if (TEMPLATES / "email" / f"{template}.html.j2").exists():
        html = env.get_template(f"email/{template}.html.j2").render(ctx)
        msg.add_alternative(html, subtype="html")
    return msg


async def send(msg: EmailMessage, settings: Settings | None = None) -> str:
    """Hand the message to the SMTP server; raises on refusal so the task can retry. Returns
    the server's answer to the message (``orosflow mail test`` shows it)."""
    s = settings or get_settings()
    _refused, reply = await aiosmtplib.send(
        msg,
        hostname=s.smtp_host,
        port=s.smtp_port,
        start_tls=s.smtp_starttls,
        username=s.smtp_username,
        password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        timeout=s.smtp_timeout,
    )
    return reply
