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
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from models.accounts import ApiToken, Role, UserAccount
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.identity.throttle import LoginThrottle

MIN_PASSWORD_LENGTH = 12

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


def add_user(
    username: str,
    *,
    display_name: str,
    role: str,
    password: str | None,
    email: str | None = None,
    units: list[str] | None = None,
    external_id: str | None = None,
    actor: str = "system:accounts",
) -> Principal:
    """Create an account; a counselor needs an e-mail (it finds their reports)."""
    username = username.strip().lower()
    if not username or len(username) > 120 or any(c.isspace() for c in username):
        raise AccountError(
            "username_invalid", "Användarnamnet får inte vara tomt eller ha mellanslag."
        )
    if role not in Role.ALL:
        raise AccountError(
            "role_unknown", f"Okänd roll {role!r}; välj bland {', '.join(Role.ALL)}."
        )
    if role == Role.COUNSELOR and not email:
        raise AccountError("email_missing", "En kurator måste ha en e-postadress.")
    if password is None and external_id is None:
        raise AccountError("password_missing", "Ange ett lösenord (eller en extern identitet).")
    if password is not None:
        _check_password(password)
    unit_list = _check_units(role, units or [])
    now = utcnow()
    with session_scope() as s:
        if s.exec(select(UserAccount).where(UserAccount.username == username)).first():
            raise AccountError("username_taken", f"Användarnamnet {username} finns redan.")
        user = UserAccount(
            id=str(uuid.uuid4()),
            username=username,
            display_name=display_name.strip() or username,
            email=email.strip().lower() if email else None,
            role=role,
            units=json.dumps(unit_list),
            password_hash=hash_password(password) if password is not None else None,
            external_id=external_id,
            created_at=now,
        )
        s.add(user)
        append_event(
            s,
            actor=actor,
            action="account.created",
            details={"username": username, "role": role, "units": unit_list},
        )
        return principal_of(user)


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
    with session_scope() as s:
        users = s.exec(select(UserAccount).order_by(col(UserAccount.username))).all()
        return [
            {
                "username": u.username,
                "display_name": u.display_name,
                "role": u.role,
                "email": u.email,
                "units": json.loads(u.units or "[]"),
                "active": u.active,
                "locked_until": u.locked_until.isoformat() if u.locked_until else None,
                "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in users
        ]


def _user(s: Session, username: str) -> UserAccount:
    user = s.exec(
        select(UserAccount).where(UserAccount.username == username.strip().lower())
    ).first()
    if user is None:
        raise AccountError("user_unknown", f"Det finns inget konto {username}.")
    return user


def disable_user(username: str, actor: str = "system:accounts") -> None:
    """Disable the account, end its sessions and revoke its API tokens."""
    from models.accounts import WebSession

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


def create_api_token(username: str, name: str, actor: str = "system:accounts") -> str:
    """Issue a bearer token for the JSON API; only its digest is stored, so show it once."""
    token = "ofl_" + secrets.token_urlsafe(32)
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
            )
        )
        append_event(
            s,
            actor=actor,
            action="account.token_created",
            details={"username": user.username, "token_name": name},
        )
    return token


def principal_for_token(token: str) -> Principal | None:
    """The active account behind a bearer token, or None."""
    with session_scope() as s:
        row = s.exec(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        user = s.get(UserAccount, row.user_id)
        if user is None or not user.active:
            return None
        row.last_used_at = utcnow()
        s.add(row)
        return principal_of(user)


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
