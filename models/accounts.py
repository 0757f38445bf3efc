"""Portal accounts, web sessions and API tokens.

Staff identities only: no child data here. Passwords are argon2 hashes; session ids and API
tokens are stored as SHA-256 digests, so a copy of the database lets nobody log in.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Role:
    COUNSELOR = "counselor"
    INTAKE = "intake"
    AUDITOR = "auditor"
    ADMIN = "admin"

    ALL = (COUNSELOR, INTAKE, AUDITOR, ADMIN)


class UserAccount(SQLModel, table=True):
    __tablename__ = "user_account"

    id: str = Field(primary_key=True, max_length=36)
    username: str = Field(unique=True, index=True, max_length=120)
    display_name: str = Field(max_length=120)
    email: str | None = Field(default=None, max_length=254)
    role: str = Field(max_length=16)
    #: JSON list of routing unit ids (intake officers only).
    units: str = Field(default="[]", max_length=4000)
    #: None for an account that signs in through an external identity provider only.
    password_hash: str | None = Field(default=None, max_length=255)
    #: Seam for SAML/OIDC: ``issuer|subject`` of the external identity bound to this account.
    external_id: str | None = Field(default=None, unique=True, max_length=255)
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: A demo account of ``make serve``: signs in without a second factor even when
    #: ``OROSFLOW_REQUIRE_MFA`` is on (never set for a real account).
    demo: bool = False
    #: The TOTP secret, sealed with the master key ring: ``<key id>:<base64 nonce+ciphertext>``.
    #: Set at enrolment; the factor is in force only once ``mfa_enabled_at`` is set.
    totp_secret: str | None = Field(default=None, max_length=255)
    mfa_enabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The last accepted TOTP time step: a code is accepted once (no replay within its window).
    totp_last_step: int | None = None
    #: A counselor's clinic details as last sent in a concern form, to fill in the next one
    #: (migration 0011). Staff data about the counselor, never about a child.
    clinic_name: str | None = Field(default=None, max_length=200)
    clinic_municipality: str | None = Field(default=None, max_length=4)
    work_phone: str | None = Field(default=None, max_length=40)
    work_title: str | None = Field(default=None, max_length=200)


class MfaRecoveryCode(SQLModel, table=True):
    """One single-use recovery code of an account's second factor (argon2 hash only)."""

    __tablename__ = "mfa_recovery_code"

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    #: The code's first two characters (10 of its 50 bits): a typed code is verified against
    #: the one or two hashes it can match, not all ten (each argon2 verification is costly).
    prefix: str = Field(max_length=2)
    code_hash: str = Field(max_length=255)
    created_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    __tablename__ = "web_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    #: None: signed in. ``"totp"``: the password passed, the code step has not;
    #: ``"enrol"``: the password passed and the account must enrol a second factor first.
    #: A pending session opens no page but its own step.
    pending: str | None = Field(default=None, max_length=16)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: str = Field(primary_key=True, max_length=36)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    name: str = Field(max_length=120)
    created_at: datetime = Field(sa_type=UTCDateTime)
    #: Updated at most once a minute (no write per request).
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Refused from then on. None only for tokens older than migration 0012 that it could not
    #: date (it gives every existing token one).
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OidcLogin(SQLModel, table=True):
    """One sign-in through the organisation's OpenID Provider, from redirect to callback.

    Keyed by the digest of a browser cookie, so the callback only completes in the browser that
    started it; ``state`` and ``nonce`` are stored as digests only. The row is consumed when an
    ID token carrying its nonce is accepted, so a nonce (and with it a token) works once; an ID
    token whose nonce has no unconsumed row here is refused.
    """

    __tablename__ = "oidc_login"

    id_hash: str = Field(primary_key=True, max_length=64)
    state_hash: str = Field(max_length=64)
    nonce_hash: str = Field(unique=True, index=True, max_length=64)
    #: The PKCE code verifier (needed for the token request); cleared when the row is consumed.
    code_verifier: str | None = Field(default=None, max_length=128)
    #: Where to go after signing in (a same-site path).
    next_path: str = Field(default="", max_length=2000)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    consumed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
