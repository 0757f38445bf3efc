"""A loopback SMTP server (aiosmtpd) that keeps every accepted message as a file.

Used by ``make serve`` (mail lands in ``var/mail/``) and by the tests, which read what a real
SMTP client really sent. Files are named by arrival order and Message-ID. With ``tls`` and
``credentials`` it stands in for a county relay that requires STARTTLS and AUTH
(tests/test_mail_test_cli.py, docs/check_deploy.py), with a certificate from
``self_signed_certificate``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import os
import re
import ssl
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate (and key) for 127.0.0.1 and localhost, as an internal CA's would be:
    trusted only by a process whose ``SSL_CERT_FILE`` holds it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp-relay.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "relay.pem", directory / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_file, key_file


def password_authenticator(user: str, password: str):  # noqa: ANN201 - aiosmtpd's callable
    """AUTH LOGIN/PLAIN that accepts exactly one user and password."""

    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:  # noqa: ANN001
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (user, password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


def relay_options(
    tls: tuple[Path, Path] | None, credentials: tuple[str, str] | None
) -> dict[str, Any]:
    """aiosmtpd Controller options for a relay that requires STARTTLS and, after it, AUTH."""
    options: dict[str, Any] = {}
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        options.update(tls_context=context, require_starttls=True)
    if credentials:
        options.update(
            authenticator=password_authenticator(*credentials),
            auth_required=True,
            auth_require_tls=bool(tls),
        )
    return options


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
        # Mail holds names and references: readable by Orosflow's user only. Written beside
        # and renamed, so whoever lists *.eml never reads a mail half-written.
        partial = self.directory / f".{name}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.rename(partial, self.directory / name)
        return "250 Message accepted for delivery"


class MailCapture:
    """Start/stop wrapper; ``messages()`` parses what has arrived so far."""

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 8025,
        *,
        tls: tuple[Path, Path] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.controller = Controller(
            _Store(directory), hostname=host, port=port, **relay_options(tls, credentials)
        )

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
