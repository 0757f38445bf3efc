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
    #: A counselor's clinic details as last sent in a concern form, to fill in the next one
    #: (migration 0011). Staff data about the counselor, never about a child.
    clinic_name: str | None = Field(default=None, max_length=200)
    clinic_municipality: str | None = Field(default=None, max_length=4)
    work_phone: str | None = Field(default=None, max_length=40)
    work_title: str | None = Field(default=None, max_length=200)


class WebSession(SQLModel, table=True):
    __tablename__ = "web_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: str = Field(primary_key=True, max_length=36)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    name: str = Field(max_length=120)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
