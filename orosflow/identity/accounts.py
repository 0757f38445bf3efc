"""Staff accounts: who may sign in, with which role and units, and how they prove it.

Local accounts use argon2id hashes (argon2-cffi, the reference implementation's bindings).
Sign-in goes through an :class:`IdentityProvider`; :class:`LocalPasswords` is the only one now,
and a SAML/OIDC provider later only has to map its assertion to an account by ``external_id``.
Failed sign-ins are throttled per (account, client address) pair with growing waits, never by
locking the account (see :mod:`orosflow.identity.throttle`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, select

from models.accounts import ApiToken, MfaRecoveryCode, Role, UserAccount, WebSession
from models.text import text_problem
from orosflow.core.audit import append_event
from orosflow.core.clock import STOCKHOLM, utcnow
from orosflow.core.db import read_scope, session_scope
from orosflow.identity.throttle import LoginThrottle

MIN_PASSWORD_LENGTH = 12
#: Days an API token is valid unless ``--expires`` says otherwise.
DEFAULT_TOKEN_DAYS = 90
#: The longest validity a token may be given.
MAX_TOKEN_DAYS = 2 * 365
#: A token's ``last_used_at`` is written at most this often (no write per API request).
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the account does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """An account operation refused; ``code`` for programs, the message in Swedish."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LoginRefused(AccountError):
    pass


class TokenExpired(AccountError):
    """A bearer token past its expiry: refused with its date, so the operator knows why."""

    def __init__(self, expired_at: datetime) -> None:
        day = expired_at.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")
        super().__init__(
            "token_expired",
            f"API-token gick ut {day}. Be administratören om en ny (orosflow users token).",
        )
        self.expired_at = expired_at


@dataclass(frozen=True)
class Principal:
    """The signed-in person as the portal and the API see them (no secrets)."""

    user_id: str
    username: str
    display_name: str
    role: str
    email: str | None = None
    units: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        """The audit-log actor string."""
        return f"user:{self.username}"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_of(user: UserAccount) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        email=user.email,
        units=frozenset(json.loads(user.units or "[]")),
    )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "password_too_short", f"Lösenordet måste ha minst {MIN_PASSWORD_LENGTH} tecken."
        )


def _check_units(role: str, units: list[str]) -> list[str]:
    from routing import UnknownCodeError, get_router

    if role != Role.INTAKE:
        if units:
            raise AccountError("units_not_allowed", "Bara mottagningshandläggare har enheter.")
        return []
    if not units:
        raise AccountError("units_missing", "En mottagningshandläggare måste ha minst en enhet.")
    router = get_router()
    for unit_id in units:
        try:
            router.unit(unit_id)
        except UnknownCodeError:
            raise AccountError("unit_unknown", f"Okänd enhet: {unit_id}.") from None
    return sorted(set(units))


def check_email(email: str | None) -> str | None:
    """An account's e-mail becomes a mail recipient (the counselor's notices): one plain
    address or nothing, whoever gives it (CLI, admin page, the IdP's claim)."""
    if email is None or not email.strip():
        return None
    try:
        validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise AccountError(
            "email_invalid", "Ange en giltig e-postadress, t.ex. namn@kommun.se."
        ) from None
    return email.strip().lower()


def check_display_name(name: str) -> str:
    """A display name is shown on pages and in the audit trail: the form's text rule applies."""
    problem = text_problem(name)
    if problem is not None or len(name.strip()) > 120:
        message = problem.message if problem else "Namnet får vara högst 120 tecken."
        raise AccountError("display_name_invalid", message)
    return name.strip()


def add_user(
    username: str,
    *,
    display_name: str,
    role: str,
    password: str | None,
    email: str | None = None,
    units: list[str] | None = None,
    external_id: str | None = None,
    demo: bool = False,
    actor: str = "system:accounts",
) -> Principal:
    """Create an account; a counselor needs an e-mail (it finds their reports). ``demo`` marks
    a demo account of ``make serve`` (no second factor required)."""
    username = username.strip().lower()
    if not username or len(username) > 120 or any(c.isspace() for c in username):
        raise AccountError(
            "username_invalid", "Användarnamnet får inte vara tomt eller ha mellanslag."
        )
    if role not in Role.ALL:
        raise AccountError(
            "role_unknown", f"Okänd roll {role!r}; välj bland {', '.join(Role.ALL)}."
        )
    email = check_email(email)
    if role == Role.COUNSELOR and not email:
        raise AccountError("email_missing", "En kurator måste ha en e-postadress.")
    display_name = check_display_name(display_name)
    if password is None and external_id is None:
        raise AccountError("password_missing", "Ange ett lösenord (eller en extern identitet).")
    if password is not None:
        _check_password(password)
    external_id = (external_id or "").strip() or None
    unit_list = _check_units(role, units or [])
    now = utcnow()
    with session_scope() as s:
        if s.exec(select(UserAccount).where(UserAccount.username == username)).first():
            raise AccountError("username_taken", f"Användarnamnet {username} finns redan.")
        if (
            external_id
            and s.exec(select(UserAccount).where(UserAccount.external_id == external_id)).first()
        ):
            raise AccountError(
                "external_id_taken", "Den externa identiteten hör redan till ett annat konto."
            )
        user = UserAccount(
            id=str(uuid.uuid4()),
            username=username,
            display_name=display_name.strip() or username,
            email=email,
            role=role,
            units=json.dumps(unit_list),
            password_hash=hash_password(password) if password is not None else None,
            external_id=external_id,
            demo=demo,
            created_at=now,
        )
        s.add(user)
        append_event(
            s,
            actor=actor,
            action="account.created",
            details={
                "username": username,
                "role": role,
                "units": unit_list,
                "sign_in": "password" if password is not None else "external",
            },
        )
        return principal_of(user)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


#: The clinic details a counselor's account remembers: form field → account column.
CLINIC_DETAILS = {
    "clinic.name": "clinic_name",
    "clinic.municipality": "clinic_municipality",
    "reporter.phone": "work_phone",
    "reporter.title": "work_title",
}


def clinic_details(user_id: str) -> dict[str, str]:
    """The clinic details remembered with the account (form path → value; unset ones left out)."""
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        if user is None:
            return {}
        return {path: v for path, col_ in CLINIC_DETAILS.items() if (v := getattr(user, col_))}


def remember_clinic_details(user_id: str, values: dict[str, str]) -> bool:
    """Keep the details a counselor just sent, for the next form; True when anything changed.

    Only values that were accepted in a stored report come here, so they are valid; blanks
    never overwrite a remembered value.
    """
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        if user is None:
            return False
        changed = False
        for path, column in CLINIC_DETAILS.items():
            value = (values.get(path) or "").strip()
            if value and getattr(user, column) != value:
                setattr(user, column, value)
                changed = True
        if changed:
            s.add(user)
        return changed


def list_users() -> list[dict[str, object]]:
    """Every account with its second factor and its API tokens (never a secret or a hash)."""
    with session_scope() as s:
        users = s.exec(select(UserAccount).order_by(col(UserAccount.username))).all()
        tokens: dict[str, list[dict[str, object]]] = {}
        for t in s.exec(select(ApiToken).order_by(col(ApiToken.created_at))):
            tokens.setdefault(t.user_id, []).append(
                {
                    "name": t.name,
                    "created_at": _iso(t.created_at),
                    "expires_at": _iso(t.expires_at),
                    "last_used_at": _iso(t.last_used_at),
                    "status": _token_status(t),
                }
            )
        return [
            {
                "username": u.username,
                "display_name": u.display_name,
                "role": u.role,
                "email": u.email,
                "units": json.loads(u.units or "[]"),
                "active": u.active,
                "sign_in": "password" if u.password_hash is not None else "external",
                "external_id": u.external_id,
                "mfa": "totp" if u.mfa_enabled_at else None,
                "mfa_enabled_at": _iso(u.mfa_enabled_at),
                "demo": u.demo,
                "locked_until": _iso(u.locked_until),
                "last_login_at": _iso(u.last_login_at),
                "tokens": tokens.get(u.id, []),
            }
            for u in users
        ]


def _token_status(t: ApiToken) -> str:
    if t.revoked_at is not None:
        return "revoked"
    if t.expires_at is not None and t.expires_at <= utcnow():
        return "expired"
    return "active"


def _user(s: Session, username: str) -> UserAccount:
    user = s.exec(
        select(UserAccount).where(UserAccount.username == username.strip().lower())
    ).first()
    if user is None:
        raise AccountError("user_unknown", f"Det finns inget konto {username}.")
    return user


def disable_user(username: str, actor: str = "system:accounts") -> None:
    """Disable the account, end its sessions and revoke its API tokens."""
    now = utcnow()
    with session_scope() as s:
        user = _user(s, username)
        user.active, user.disabled_at = False, now
        s.add(user)
        for ws in s.exec(select(WebSession).where(WebSession.user_id == user.id)):
            s.delete(ws)
        for tok in s.exec(select(ApiToken).where(ApiToken.user_id == user.id)):
            tok.revoked_at = tok.revoked_at or now
            s.add(tok)
        append_event(s, actor=actor, action="account.disabled", details={"username": user.username})


def set_password(username: str, password: str, actor: str = "system:accounts") -> None:
    _check_password(password)
    with session_scope() as s:
        user = _user(s, username)
        user.password_hash = hash_password(password)
        user.failed_logins, user.locked_until = 0, None
        s.add(user)
        append_event(
            s, actor=actor, action="account.password_set", details={"username": user.username}
        )


def reset_mfa(username: str, actor: str = "system:accounts") -> None:
    """Remove the account's second factor and recovery codes and end its sessions (a lost
    phone may be in someone else's hands); under ``OROSFLOW_REQUIRE_MFA`` its next sign-in
    enrols anew."""
    with session_scope() as s:
        user = _user(s, username)
        had = user.mfa_enabled_at is not None
        user.totp_secret, user.mfa_enabled_at, user.totp_last_step = None, None, None
        s.add(user)
        for code in s.exec(select(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id)):
            s.delete(code)
        for ws in s.exec(select(WebSession).where(WebSession.user_id == user.id)):
            s.delete(ws)
        append_event(
            s,
            actor=actor,
            action="mfa.reset",
            details={"username": user.username, "was_enrolled": had},
        )


def set_units(username: str, units: list[str], actor: str = "system:accounts") -> list[str]:
    """Bind an intake officer to routing units (replacing the old set); checked like at
    creation. Takes effect at once: each request reads the account's units."""
    with session_scope() as s:
        user = _user(s, username)
        unit_list = _check_units(user.role, units)
        before = json.loads(user.units or "[]")
        user.units = json.dumps(unit_list)
        s.add(user)
        append_event(
            s,
            actor=actor,
            action="account.units_set",
            details={"username": user.username, "units": unit_list, "before": before},
        )
        return unit_list


def mark_demo(usernames: list[str]) -> None:
    """Mark existing demo accounts (created before the mark existed) as such."""
    with session_scope() as s:
        for user in s.exec(select(UserAccount).where(col(UserAccount.username).in_(usernames))):
            if not user.demo:
                user.demo = True
                s.add(user)


_DAYS = re.compile(r"^(\d{1,4})\s*d$")


def token_expiry(text: str | None) -> datetime:
    """When a token given ``--expires TEXT`` expires: ``90d`` (days from now) or an ISO date
    (valid through that day, Swedish time) or date-time. Default ``DEFAULT_TOKEN_DAYS``."""
    now = utcnow()
    text = (text or f"{DEFAULT_TOKEN_DAYS}d").strip().lower()
    match = _DAYS.match(text)
    if match:
        expires = now + timedelta(days=int(match.group(1)))
    else:
        try:
            if len(text) == 10:
                day = date.fromisoformat(text) + timedelta(days=1)
                expires = datetime.combine(day, time(0), tzinfo=STOCKHOLM)
            else:
                expires = datetime.fromisoformat(text.upper())
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=STOCKHOLM)
        except ValueError:
            raise AccountError(
                "expires_invalid",
                "Ogiltig giltighetstid: ange antal dagar (t.ex. 90d) eller ett datum (2027-03-01).",
            ) from None
    if expires <= now:
        raise AccountError("expires_past", "Giltighetstiden måste sluta i framtiden.")
    if expires > now + timedelta(days=MAX_TOKEN_DAYS):
        raise AccountError(
            "expires_too_far", f"En API-token får gälla högst {MAX_TOKEN_DAYS} dagar."
        )
    return expires


def create_api_token(
    username: str, name: str, actor: str = "system:accounts", expires: str | None = None
) -> str:
    """Issue a bearer token for the JSON API; only its digest is stored, so show it once.
    It expires after ``expires`` (see :func:`token_expiry`) and acts as its account: the
    account's role and units are read at each request, so a change applies at once."""
    token = "ofl_" + secrets.token_urlsafe(32)
    expires_at = token_expiry(expires)
    with session_scope() as s:
        user = _user(s, username)
        if not user.active:
            raise AccountError("user_disabled", f"Kontot {username} är avstängt.")
        s.add(
            ApiToken(
                id=str(uuid.uuid4()),
                token_hash=token_digest(token),
                user_id=user.id,
                name=name,
                created_at=utcnow(),
                expires_at=expires_at,
            )
        )
        append_event(
            s,
            actor=actor,
            action="account.token_created",
            details={
                "username": user.username,
                "token_name": name,
                "expires_at": expires_at.isoformat(),
            },
        )
    return token


def token_info(token: str) -> dict[str, str | None]:
    """A token's name and dates (for the CLI's answer), by the token itself."""
    with session_scope() as s:
        row = s.exec(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).one()
        return {"name": row.name, "expires_at": _iso(row.expires_at)}


def principal_for_token(token: str) -> Principal | None:
    """The active account behind a bearer token (its current role and units), or None.
    Raises :class:`TokenExpired` past the token's expiry. Bearer tokens take no second
    factor: they are issued to a system by an administrator, not typed by a person."""
    now = utcnow()
    # Read without the write lock (SQLite): a request waits for no one's transaction unless
    # the token's last use is due for an update.
    with read_scope() as s:
        row = s.exec(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        user = s.get(UserAccount, row.user_id)
        if user is None or not user.active:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            raise TokenExpired(row.expires_at)
        touch = row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_INTERVAL
        principal, token_id = principal_of(user), row.id
    if touch:
        with session_scope() as s:
            fresh = s.get(ApiToken, token_id)
            if fresh is not None:
                fresh.last_used_at = now
                s.add(fresh)
    return principal


# --- sign-in ---------------------------------------------------------------------------------


class IdentityProvider(Protocol):
    """Proves who someone is. SAML/OIDC providers implement this by ``external_id`` lookup."""

    def authenticate(self, username: str, secret: str, client: str) -> Principal: ...


login_throttle = LoginThrottle()
#: The old name: test fixtures reset it between cases.
address_throttle = login_throttle

#: One answer for an unknown account, a wrong password, a disabled account and a throttled
#: (account, address) pair, so the answer does not tell which accounts exist.
_BAD_CREDENTIALS = (
    "Fel användarnamn eller lösenord, eller för många felaktiga försök i rad. "
    "Kontrollera uppgifterna och försök igen om en stund."
)
_ADDRESS_BLOCKED = (
    "För många misslyckade inloggningsförsök från din adress. Vänta en kvart och försök igen."
)


class LocalPasswords:
    """Username + argon2 password, throttled per (account, address) pair (see ``throttle``).

    Every refusal that names an account costs one argon2 verification (of a dummy hash where
    the account is unknown or the pair has to wait), so its timing does not tell them apart.
    """

    def authenticate(self, username: str, secret: str, client: str) -> Principal:
        name = username.strip().lower()
        if login_throttle.address_blocked(client):
            # Independent of the account name: this answer reveals nothing about accounts.
            raise LoginRefused("too_many_attempts", _ADDRESS_BLOCKED)
        wait_left = login_throttle.wait_left(name, client)
        now = utcnow()
        principal: Principal | None = None
        # Audit events must commit, so the refusal is raised after the transaction.
        with session_scope() as s:
            user = s.exec(select(UserAccount).where(UserAccount.username == name)).first()
            if wait_left > 0:
                _verify(_DUMMY_HASH, secret)  # the same work as a checked attempt
                login_throttle.refused(client)
                _audit_throttled(s, user, refused=True, retry_after_s=wait_left)
            elif user is None or user.password_hash is None:
                _verify(_DUMMY_HASH, secret)
                self._failed(s, user, name, client)
            elif not _verify(user.password_hash, secret) or not user.active:
                self._failed(s, user, name, client)
            else:
                if _hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = hash_password(secret)
                user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
                s.add(user)
                append_event(s, actor=f"user:{user.username}", action="login.succeeded", details={})
                principal = principal_of(user)
        if principal is None:
            raise LoginRefused("bad_credentials", _BAD_CREDENTIALS)
        login_throttle.succeeded(name, client)
        return principal

    @staticmethod
    def _failed(s: Session, user: UserAccount | None, name: str, client: str) -> None:
        failures, wait = login_throttle.failed(name, client)
        if wait > 0:
            _audit_throttled(s, user, refused=False, retry_after_s=wait, failures=failures)


def _audit_throttled(
    s: Session,
    user: UserAccount | None,
    *,
    refused: bool,
    retry_after_s: float,
    failures: int | None = None,
) -> None:
    """Audit a throttled pair: a failure that starts a wait (``refused`` False) or an attempt
    refused during one. The username only of an existing account (a typed name could be
    anything, even a personnummer); never the password or the client address."""
    details: dict[str, object] = {
        "username": user.username if user is not None else None,
        "refused": refused,
        "retry_after_s": max(1, round(retry_after_s)),
    }
    if failures is not None:
        details["failures"] = failures
    append_event(s, actor="system:portal", action="login.throttled", details=details)


def _verify(hashed: str, secret: str) -> bool:
    try:
        return _hasher.verify(hashed, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def identity_provider() -> IdentityProvider:
    return LocalPasswords()


def has_users() -> bool:
    with session_scope() as s:
        return s.exec(select(UserAccount.id).limit(1)).first() is not None
