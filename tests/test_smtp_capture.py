"""The embedded mail capture (``orosflow serve``'s SMTP server): whoever lists ``var/mail/*.eml``
while mail arrives reads whole mails only. A reader that met a half-written file (created, not
yet filled) took it for a mail without a reference; the serve benchmark then waited for ever."""

from __future__ import annotations

import smtplib
import threading
from pathlib import Path

from orosflow.core.smtp_capture import MailCapture

from support import free_port

BODY = ("x" * 998 + "\r\n") * 4000  # about 4 MB: written in more than a moment


def test_a_listed_mail_is_always_whole(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    capture = MailCapture(directory, port=free_port()).start()
    raw = f"Subject: stor\r\nX-Orosflow-Reference: OA-2026-000001\r\n\r\n{BODY}".encode()
    seen: list[int] = []
    done = threading.Event()

    def read_while_it_arrives() -> None:
        while not done.is_set():
            for path in directory.glob("*.eml"):
                seen.append(len(path.read_bytes()))

    reader = threading.Thread(target=read_while_it_arrives)
    reader.start()
    try:
        with smtplib.SMTP("127.0.0.1", capture.port, timeout=30) as smtp:
            for _ in range(3):
                smtp.sendmail("a@example.se", ["b@example.se"], raw)
    finally:
        done.set()
        reader.join()
        capture.stop()
    stored = sorted(p.name for p in directory.iterdir())
    assert len(stored) == 3 and all(name.endswith(".eml") for name in stored)  # nothing left over
    whole = len((directory / stored[0]).read_bytes())
    assert whole >= len(raw)
    assert seen and set(seen) == {whole}
