"""Server-side web sessions: the cookie holds a random id, the database only its digest.

Sessions end after ``session_idle_minutes`` without a request and after ``session_max_hours``
in all; each carries its own CSRF token for the forms rendered in it. That token is a keyed
digest of the cookie (:func:`session_csrf`), so a form posted after its session ended can still
be proven to come from the page that session rendered in this browser (:func:`csrf_belongs_to`).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import delete

from models.accounts import UserAccount, WebSession
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring, lookup_digests
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings
from orosflow.identity.accounts import Principal, principal_of, token_digest

#: A session whose password passed but whose second step has not ends this soon.
PENDING_MINUTES = 10


@dataclass(frozen=True)
class ActiveSession:
    principal: Principal
    csrf_token: str


@dataclass(frozen=True)
class PendingSession:
    """A sign-in half done: the password passed, ``step`` (code or enrolment) has not."""

    principal: Principal
    csrf_token: str
    step: str


def session_csrf(token: str) -> str:
    """The CSRF token of the session whose cookie is ``token`` (HMAC with the master key)."""
    return lookup_digests(load_keyring(), "session-csrf", token)[0]


def csrf_belongs_to(token: str, sent: str) -> bool:
    """Whether ``sent`` is the CSRF token of the session with cookie ``token``, live or ended.

    Only a page of that session in the browser holding that cookie has both; another site
    can neither read the token nor send the (SameSite=Strict) cookie.
    """
    if not token or not sent:
        return False
    return any(
        hmac.compare_digest(sent, digest)
        for digest in lookup_digests(load_keyring(), "session-csrf", token)
    )


def open_session(principal: Principal, pending: str | None = None) -> tuple[str, str]:
    """Create a session; return ``(cookie value, csrf token)``. With ``pending`` it is not
    signed in (no page but that step opens) and ends after ``PENDING_MINUTES``."""
    settings = get_settings()
    token = secrets.token_urlsafe(32)
    csrf = session_csrf(token)
    now = utcnow()
    with session_scope() as s:
        s.exec(delete(WebSession).where(WebSession.expires_at < now))  # type: ignore[call-overload]
        s.add(
            WebSession(
                id_hash=token_digest(token),
                user_id=principal.user_id,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=now
                + (
                    timedelta(minutes=PENDING_MINUTES)
                    if pending
                    else timedelta(hours=settings.session_max_hours)
                ),
                pending=pending,
            )
        )
    return token, csrf


def load_session(token: str) -> ActiveSession | None:
    """The live session for this cookie, touched; None if unknown, idle too long or expired."""
    settings = get_settings()
    now = utcnow()
    with session_scope() as s:
        row = s.get(WebSession, token_digest(token))
        if row is None or row.pending is not None:
            return None
        idle = now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
        user = s.get(UserAccount, row.user_id)
        if idle or row.expires_at <= now or user is None or not user.active:
            s.delete(row)
            return None
        if now - row.last_seen_at > timedelta(seconds=30):  # fewer writes on busy pages
            row.last_seen_at = now
            s.add(row)
        return ActiveSession(principal_of(user), row.csrf_token)


def close_session(token: str) -> None:
    with session_scope() as s:
        row = s.get(WebSession, token_digest(token))
        if row is not None:
            s.delete(row)


def load_pending(token: str) -> PendingSession | None:
    """The half-done sign-in of this cookie, or None (unknown, signed in, or expired)."""
    now = utcnow()
    with session_scope() as s:
        row = s.get(WebSession, token_digest(token))
        if row is None or row.pending is None:
            return None
        user = s.get(UserAccount, row.user_id)
        if row.expires_at <= now or user is None or not user.active:
            s.delete(row)
            return None
        return PendingSession(principal_of(user), row.csrf_token, row.pending)
