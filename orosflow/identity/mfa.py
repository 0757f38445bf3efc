"""The second factor of local accounts: TOTP (RFC 6238, pyotp) and single-use recovery codes.

After the password (:class:`orosflow.identity.accounts.LocalPasswords`) an account with the
factor passes a code; under ``OROSFLOW_REQUIRE_MFA`` one without it (except the demo accounts
of ``make serve``) enrols first. The TOTP secret is sealed with the master key ring (never
stored in clear) and bound to its account; recovery codes are stored as argon2 hashes only and
each works once. Wrong codes are throttled exactly like wrong passwords (same
:class:`~orosflow.identity.throttle.LoginThrottle`, its own pair per account), and each
enrolment, success, failure and throttled attempt is an audit event without the code or secret.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlmodel import Session, select

from models.accounts import MfaRecoveryCode, UserAccount
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings
from orosflow.identity.accounts import (
    _DUMMY_HASH,
    AccountError,
    LoginRefused,
    Principal,
    _hasher,
    _verify,
    login_throttle,
    principal_of,
)

ISSUER = "Orosflow"
#: Recovery codes issued at enrolment (shown once).
RECOVERY_CODES = 10
#: Accepted clock drift either way, in 30-second steps.
VALID_WINDOW = 1
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed by hand

#: Step names of a pending sign-in (``web_session.pending``).
STEP_CODE = "totp"
STEP_ENROL = "enrol"

_BAD_CODE = (
    "Koden stämde inte, eller så har det varit för många felaktiga försök i rad. "
    "Kontrollera koden i appen och försök igen om en stund."
)
_ADDRESS_BLOCKED = (
    "För många misslyckade inloggningsförsök från din adress. Vänta en kvart och försök igen."
)


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret in text, and as a QR code (inline SVG)."""

    secret: str
    uri: str
    qr_svg: str


def _aad(user_id: str) -> str:
    return f"totp:{user_id}"


def step_after_password(principal: Principal) -> str | None:
    """Which second step this account takes after its password, or None (signed in)."""
    with session_scope() as s:
        user = s.get(UserAccount, principal.user_id)
        if user is None:
            return None
        if user.mfa_enabled_at is not None:
            return STEP_CODE
        if get_settings().require_mfa and not user.demo and user.password_hash is not None:
            return STEP_ENROL
        return None


def is_enrolled(user_id: str) -> bool:
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        return bool(user and user.mfa_enabled_at)


def begin_enrolment(user_id: str) -> Enrolment:
    """The account's pending secret (a new one unless it has one): reloading the page keeps
    the secret already scanned. Refused once the factor is in force (an admin resets it)."""
    ring = load_keyring()
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        if user is None or not user.active:
            raise AccountError("user_unknown", "Kontot finns inte.")
        if user.mfa_enabled_at is not None:
            raise AccountError("mfa_enrolled", "Tvåstegsverifiering är redan aktiverad för kontot.")
        if user.totp_secret:
            secret = ring.open_text(user.totp_secret, _aad(user.id))
        else:
            secret = pyotp.random_base32()
            user.totp_secret = ring.seal_text(secret, _aad(user.id))
            s.add(user)
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    qr = segno.make(uri, error="m")
    # Inline SVG: no inline style (the CSP allows none), a white quiet zone for dark themes.
    svg = qr.svg_inline(scale=5, dark="#000", light="#fff", title="QR-kod för autentiseringsappen")
    return Enrolment(
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)), uri=uri, qr_svg=svg
    )


def confirm_enrolment(user_id: str, code: str, client: str) -> list[str]:
    """Turn the factor on with a first correct code; return the recovery codes (shown once)."""
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        if user is None or not user.active or not user.totp_secret:
            raise AccountError("mfa_not_started", "Börja om registreringen.")
        if user.mfa_enabled_at is not None:
            raise AccountError("mfa_enrolled", "Tvåstegsverifiering är redan aktiverad för kontot.")
        username = user.username
    _guard(username, client)
    codes: list[str] = []
    ok = False
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        assert user is not None
        if _totp_matches(s, user, code):
            ok = True
            now = utcnow()
            user.mfa_enabled_at = now
            s.add(user)
            for old in s.exec(select(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id)):
                s.delete(old)
            codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
            for c in codes:
                s.add(
                    MfaRecoveryCode(
                        id=str(uuid.uuid4()),
                        user_id=user.id,
                        prefix=_normal(c)[:2],
                        code_hash=_hasher.hash(_normal(c)),
                        created_at=now,
                    )
                )
            append_event(
                s,
                actor=f"user:{username}",
                action="mfa.enrolled",
                details={"username": username, "method": "totp", "recovery_codes": len(codes)},
            )
        else:
            _failed(s, user, client, method="totp", stage="enrolment")
    if not ok:
        raise LoginRefused("bad_code", _BAD_CODE)
    login_throttle.succeeded(_pair(username), client)
    return codes


def verify_code(user_id: str, code: str, client: str) -> Principal:
    """The code step of sign-in: a TOTP code, or an unused recovery code (then spent)."""
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        if user is None or not user.active or user.mfa_enabled_at is None:
            raise LoginRefused("bad_code", _BAD_CODE)
        username = user.username
    _guard(username, client)
    principal: Principal | None = None
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        assert user is not None
        method = "totp" if _normal(code).isdigit() else "recovery"
        if method == "totp":
            ok = _totp_matches(s, user, code)
        else:
            ok = _spend_recovery(s, user, code)
        if ok:
            remaining = _unused_recovery(s, user.id)
            user.failed_logins, user.last_login_at = 0, utcnow()
            s.add(user)
            append_event(
                s,
                actor=f"user:{username}",
                action="mfa.succeeded",
                details={"username": username, "method": method, "recovery_left": remaining},
            )
            principal = principal_of(user)
        else:
            _failed(s, user, client, method=method, stage="sign-in")
    if principal is None:
        raise LoginRefused("bad_code", _BAD_CODE)
    login_throttle.succeeded(_pair(username), client)
    return principal


def recovery_left(user_id: str) -> int:
    with session_scope() as s:
        return _unused_recovery(s, user_id)


# --- internals --------------------------------------------------------------------------------


def _pair(username: str) -> str:
    """The throttle's account key for codes: its own pair, apart from the password's."""
    return f"mfa:{username}"


def _guard(username: str, client: str) -> None:
    """Refuse before checking while the address or the (account, address) pair must wait."""
    if login_throttle.address_blocked(client):
        raise LoginRefused("too_many_attempts", _ADDRESS_BLOCKED)
    wait = login_throttle.wait_left(_pair(username), client)
    if wait > 0:
        login_throttle.refused(client)
        with session_scope() as s:
            append_event(
                s,
                actor="system:portal",
                action="mfa.throttled",
                details={
                    "username": username,
                    "refused": True,
                    "retry_after_s": max(1, round(wait)),
                },
            )
        raise LoginRefused("bad_code", _BAD_CODE)


def _failed(s: Session, user: UserAccount, client: str, *, method: str, stage: str) -> None:
    failures, wait = login_throttle.failed(_pair(user.username), client)
    details: dict[str, object] = {
        "username": user.username,
        "method": method,
        "stage": stage,
        "failures": failures,
    }
    if wait > 0:
        details["retry_after_s"] = max(1, round(wait))
    append_event(s, actor="system:portal", action="mfa.failed", details=details)


def _normal(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _totp_matches(s: Session, user: UserAccount, code: str) -> bool:
    """A code of this or a neighbouring time step, newer than the last accepted one."""
    digits = _normal(code)
    if not user.totp_secret or len(digits) != 6 or not digits.isdigit():
        return False
    ring = load_keyring()
    secret = ring.open_text(user.totp_secret, _aad(user.id))
    totp = pyotp.TOTP(secret)
    now: datetime = utcnow()
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue  # that code (or an older one) was used already
        if hmac.compare_digest(totp.generate_otp(step), digits):
            user.totp_last_step = step
            if not user.totp_secret.startswith(ring.active + ":"):
                user.totp_secret = ring.seal_text(secret, _aad(user.id))  # after a key rotation
            s.add(user)
            return True
    return False


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _spend_recovery(s: Session, user: UserAccount, code: str) -> bool:
    """Mark the matching unused code used. Only codes with the typed prefix are verified
    (usually one argon2 verification; a dummy one when none has it, so every attempt costs
    about the same); the throttle bounds how often that can be asked for."""
    typed = _normal(code)
    if len(typed) != 10:
        return False
    rows = s.exec(
        select(MfaRecoveryCode).where(
            MfaRecoveryCode.user_id == user.id,
            MfaRecoveryCode.prefix == typed[:2],
            MfaRecoveryCode.used_at.is_(None),  # type: ignore[union-attr]
        )
    ).all()
    if not rows:
        _verify(_DUMMY_HASH, typed)
    for row in rows:
        if _verify(row.code_hash, typed):
            row.used_at = utcnow()
            s.add(row)
            return True
    return False


def _unused_recovery(s: Session, user_id: str) -> int:
    return len(
        s.exec(
            select(MfaRecoveryCode.id).where(
                MfaRecoveryCode.user_id == user_id,
                MfaRecoveryCode.used_at.is_(None),  # type: ignore[union-attr]
            )
        ).all()
    )
