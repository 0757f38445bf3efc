"""``orosflow mail test ADDRESS`` against a real relay on loopback: aiosmtpd requiring STARTTLS
(a self-signed certificate made here) and AUTH, as the relay step of docs/deploy.md.

The command runs as an operator runs it (a subprocess with the settings in its environment);
the relay is the real SMTP server the notifications would meet.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from orosflow.core.smtp_capture import relay_options, self_signed_certificate

from support import run_cli

USER, PASSWORD = "orosflow", "rätt:lösen@ord 1"


class Relay:
    """Keeps what it accepted, with who logged in."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str | None, bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        self.accepted.append(
            (session.auth_data and session.auth_data.login.decode(), envelope.content)
        )
        return "250 2.0.0 Ok: queued as TEST42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Relay, int, Path]]:
    cert, key = self_signed_certificate(tmp_path)
    handler = Relay()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        **relay_options((cert, key), (USER, PASSWORD)),
    )
    controller.start()
    yield handler, controller.port, cert
    controller.stop()


def settings_env(port: int, cert: Path | None, password: str = PASSWORD) -> dict[str, str]:
    env = {
        "OROSFLOW_SMTP_HOST": "127.0.0.1",
        "OROSFLOW_SMTP_PORT": str(port),
        "OROSFLOW_SMTP_STARTTLS": "true",
        "OROSFLOW_SMTP_USERNAME": USER,
        "OROSFLOW_SMTP_PASSWORD": password,
        "OROSFLOW_MAIL_FROM": "orosflow@kommun.example.se",
        "SSL_CERT_FILE": str(cert) if cert else "/nonexistent-ca.pem",
    }
    return env


def test_mail_test_sends_one_mail_over_starttls_and_auth(relay) -> None:  # noqa: ANN001
    handler, port, cert = relay
    out = run_cli("mail", "test", "drift@kommun.example.se", env=settings_env(port, cert))
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["reply"] == "2.0.0 Ok: queued as TEST42"
    assert "Reläet svarade: 2.0.0 Ok: queued as TEST42" in out.stderr
    assert len(handler.accepted) == 1
    login, raw = handler.accepted[0]
    assert login == USER  # AUTH happened, and only after STARTTLS (auth_require_tls)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == "drift@kommun.example.se"
    assert msg["Subject"] == "Orosflow: testmeddelande"
    # A fixed text: nothing from any report, no personnummer-like digits.
    body = msg.get_body().get_content()
    assert "inga uppgifter om någon anmälan" in body
    assert not any(ch.isdigit() for ch in body)


def test_mail_test_says_when_the_password_is_wrong(relay) -> None:  # noqa: ANN001
    handler, port, cert = relay
    out = run_cli(
        "mail", "test", "drift@kommun.example.se", env=settings_env(port, cert, "fel-lösen-XQZ")
    )
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"]["code"] == "auth_failed"
    assert "godtog inte inloggningen som 'orosflow'" in out.stderr
    assert "OROSFLOW_SMTP_PASSWORD" in out.stderr
    assert "XQZ" not in out.stdout + out.stderr  # the password itself is never shown
    assert handler.accepted == []


def test_mail_test_says_when_the_certificate_is_not_trusted(relay) -> None:  # noqa: ANN001
    handler, port, _cert = relay
    out = run_cli("mail", "test", "drift@kommun.example.se", env=settings_env(port, None))
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"]["code"] == "tls_certificate"
    assert "SSL_CERT_FILE" in out.stderr and "certifikat" in out.stderr
    assert handler.accepted == []


def test_mail_test_says_when_the_relay_refuses_the_connection() -> None:
    port = free_port()  # nothing listens there
    out = run_cli("mail", "test", "drift@kommun.example.se", env=settings_env(port, None))
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"]["code"] == "connection_failed"
    assert f"Kunde inte ansluta till reläet 127.0.0.1:{port}" in out.stderr
