"""A loopback SMTP server (aiosmtpd) that keeps every accepted message as a file.

Used by ``make serve`` (mail lands in ``var/mail/``) and by the tests, which read what a real
SMTP client really sent. Files are named by arrival order and Message-ID.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import threading
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class _Store:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._count = len(list(directory.glob("*.eml")))

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        mid = re.sub(r"[^A-Za-z0-9.@-]", "", str(msg.get("Message-ID", "")))[:80] or "no-id"
        with self._lock:
            self._count += 1
            name = f"{self._count:06d}-{mid}.eml"
        # Mail holds names and references: readable by Orosflow's user only.
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        return "250 Message accepted for delivery"


class MailCapture:
    """Start/stop wrapper; ``messages()`` parses what has arrived so far."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.directory = directory
        self.controller = Controller(_Store(directory), hostname=host, port=port)

    @property
    def port(self) -> int:
        return self.controller.port

    def start(self) -> MailCapture:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def messages(self) -> list[EmailMessage]:
        out = []
        for path in sorted(self.directory.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out
