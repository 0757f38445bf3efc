"""Sign-in through the organisation's OpenID Provider: Entra ID, ADFS, Inera's IdP (SITHS eID).

The authorization-code flow with PKCE, ``state`` and ``nonce`` through Authlib's OAuth2 client
(it builds the request, the S256 challenge and the token request with client authentication),
and the ID token checked with joserfc (Authlib's JOSE library): signature against the IdP's
JWKS, ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``, a one-time ``nonce``, and optionally a
second factor (``amr``/``acr``). The IdP's identity is then mapped to an account by
``external_id`` (the subject, or ``issuer|subject``), with role and units from the groups when a
group map is configured. Just-in-time provisioning is off unless turned on.

Each flow in flight is a row of ``oidc_login`` keyed by a digest of a browser cookie, so a
callback only completes in the browser that started it (no login CSRF); ``state`` and the nonce
are stored as digests. Every sign-in, refusal (with a reason code) and sign-out is an audit
event naming at most the account, never the subject, e-mail or groups.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import authlib.deprecate  # noqa: E402,F401  (installs its "always" filter before ours below)
import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from sqlmodel import col, delete, select, update

from models.accounts import OidcLogin, Role, UserAccount
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings
from orosflow.identity.accounts import (
    AccountError,
    LoginRefused,
    Principal,
    add_user,
    check_email,
    principal_of,
    token_digest,
)

with warnings.catch_warnings():
    # Authlib 1.9 prefers the httpx2 package and warns when it falls back to httpx, which is
    # the one this project has (and the same API).
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client

log = logging.getLogger("orosflow.identity.oidc")

#: Redirect → callback must finish within this (the IdP's own sign-in included).
FLOW_TTL = timedelta(minutes=15)
#: Ended flows (used or not) are pruned this long after they expire; a nonce without an open
#: flow is refused anyway (``nonce_invalid``), so pruning never lets a replay through.
ENDED_KEPT = timedelta(hours=1)
#: Clock skew allowed between the IdP and us, in seconds.
LEEWAY_S = 60
#: Asymmetric signatures only: never ``none`` nor an HMAC keyed with the client secret.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
METADATA_TTL_S = 3600
CALLBACK_PATH = "/login/oidc/callback"

#: One Swedish answer per refusal; the code goes to the audit trail.
REFUSALS: dict[str, str] = {
    "flow_unknown": "Inloggningen hade gått ut eller startades i en annan webbläsare. "
    "Börja om från inloggningssidan.",
    "state_mismatch": "Svaret från identitetsleverantören hörde inte till den här inloggningen. "
    "Börja om från inloggningssidan.",
    "idp_error": "Identitetsleverantören avbröt inloggningen.",
    "idp_unreachable": "Identitetsleverantören kunde inte nås. Försök igen om en stund.",
    "token_exchange_failed": "Identitetsleverantören lämnade ingen giltig inloggning.",
    "signature_invalid": "Inloggningsbeviset från identitetsleverantören var inte giltigt.",
    "issuer_invalid": "Inloggningsbeviset kom inte från organisationens identitetsleverantör.",
    "audience_invalid": "Inloggningsbeviset var inte utfärdat för Orosflow.",
    "token_expired": "Inloggningsbeviset hade gått ut. Logga in igen.",
    "claims_invalid": "Inloggningsbeviset saknade uppgifter som krävs.",
    "nonce_invalid": "Inloggningsbeviset hörde inte till den här inloggningen.",
    "nonce_replayed": "Inloggningsbeviset har redan använts. Logga in igen.",
    "mfa_missing": "Inloggningen måste göras med två faktorer (till exempel SITHS-kort eller "
    "autentiseringsapp). Logga in igen med en andra faktor.",
    "account_unknown": "Det finns inget Orosflow-konto för din organisationsidentitet. "
    "Kontakta er administratör.",
    "account_disabled": "Ditt Orosflow-konto är avstängt. Kontakta er administratör.",
    "group_not_mapped": "Din organisationsidentitet är inte med i någon grupp som ger "
    "behörighet till Orosflow. Kontakta er administratör.",
    "groups_conflict": "Dina grupper ger olika roller i Orosflow. Kontakta er administratör.",
    "email_missing": "Identitetsleverantören skickade ingen e-postadress, som en kurator behöver.",
}


class OidcRefused(LoginRefused):
    """A refused sign-in through the IdP; ``code`` is one of :data:`REFUSALS`."""

    def __init__(self, code: str, username: str | None = None) -> None:
        super().__init__(code, REFUSALS[code])
        self.username = username


class OidcConfigError(ValueError):
    """The OIDC settings cannot work (Swedish message, raised at start)."""


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupGrant:
    """What one IdP group gives: a role, and routing units for intake officers."""

    role: str
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    subject_claim: str
    email_claim: str
    groups_claim: str
    group_map: Mapping[str, GroupGrant]
    jit: bool
    require_mfa: bool
    mfa_amr: tuple[str, ...]
    mfa_acr: tuple[str, ...]
    portal_url: str

    @property
    def redirect_uri(self) -> str:
        return self.portal_url.rstrip("/") + CALLBACK_PATH

    @property
    def post_logout_uri(self) -> str:
        return self.portal_url.rstrip("/") + "/login?logged_out=1"


def oidc_config() -> OidcConfig | None:
    """The configured provider, or None when ``OROSFLOW_OIDC_ISSUER`` is empty."""
    s = get_settings()
    if not s.oidc_issuer.strip():
        return None
    if not s.oidc_client_id:
        raise OidcConfigError("OROSFLOW_OIDC_CLIENT_ID saknas (krävs med OROSFLOW_OIDC_ISSUER).")
    if "openid" not in s.oidc_scopes.split():
        raise OidcConfigError("OROSFLOW_OIDC_SCOPES måste innehålla openid.")
    return OidcConfig(
        issuer=s.oidc_issuer.strip(),
        client_id=s.oidc_client_id,
        client_secret=s.oidc_client_secret.get_secret_value() if s.oidc_client_secret else "",
        scopes=s.oidc_scopes,
        subject_claim=s.oidc_subject_claim,
        email_claim=s.oidc_email_claim,
        groups_claim=s.oidc_groups_claim,
        group_map=load_group_map(s.oidc_group_map),
        jit=s.oidc_jit,
        require_mfa=s.oidc_require_mfa,
        mfa_amr=tuple(s.oidc_mfa_amr),
        mfa_acr=tuple(s.oidc_mfa_acr),
        portal_url=s.portal_url,
    )


def load_group_map(value: str) -> dict[str, GroupGrant]:
    """``OROSFLOW_OIDC_GROUP_MAP``: inline JSON, or the path of a ``.toml`` or ``.json`` file.

    Each entry is ``group → {role, units}``; roles and units are checked here, so a typo stops
    the portal at start instead of refusing people later.
    """
    from routing import UnknownCodeError, get_router

    text = value.strip()
    if not text:
        return {}
    try:
        if text.startswith("{"):
            raw = json.loads(text)
        else:
            path = Path(text)
            content = path.read_text(encoding="utf-8")
            raw = tomllib.loads(content) if path.suffix == ".toml" else json.loads(content)
    except (OSError, ValueError) as exc:
        raise OidcConfigError(f"OROSFLOW_OIDC_GROUP_MAP kan inte läsas: {exc}") from None
    if not isinstance(raw, dict):
        raise OidcConfigError("OROSFLOW_OIDC_GROUP_MAP: väntade grupp → {role, units}.")
    router = get_router()
    out: dict[str, GroupGrant] = {}
    for group, entry in raw.items():
        if not isinstance(entry, dict) or entry.get("role") not in Role.ALL:
            raise OidcConfigError(
                f"OROSFLOW_OIDC_GROUP_MAP: gruppen {group!r} behöver role, en av "
                f"{', '.join(Role.ALL)}."
            )
        units = entry.get("units") or []
        if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
            raise OidcConfigError(f"OROSFLOW_OIDC_GROUP_MAP: units för {group!r} är ingen lista.")
        if units and entry["role"] != Role.INTAKE:
            raise OidcConfigError(
                f"OROSFLOW_OIDC_GROUP_MAP: {group!r}: bara mottagning (intake) har enheter."
            )
        if entry["role"] == Role.INTAKE and not units:
            raise OidcConfigError(f"OROSFLOW_OIDC_GROUP_MAP: {group!r}: intake kräver units.")
        for unit in units:
            try:
                router.unit(unit)
            except UnknownCodeError:
                raise OidcConfigError(
                    f"OROSFLOW_OIDC_GROUP_MAP: okänd enhet {unit!r} för {group!r}."
                ) from None
        out[str(group)] = GroupGrant(entry["role"], tuple(sorted(set(units))))
    return out


def map_groups(group_map: Mapping[str, GroupGrant], groups: list[str]) -> GroupGrant | None:
    """The role and units the groups give; None if none is mapped. Groups that give different
    roles are refused rather than guessed; intake units from several groups add up."""
    grants = [group_map[g] for g in groups if g in group_map]
    if not grants:
        return None
    roles = {g.role for g in grants}
    if len(roles) > 1:
        raise OidcRefused("groups_conflict")
    units = sorted({u for g in grants for u in g.units})
    return GroupGrant(grants[0].role, tuple(units))


# --- the provider's metadata and keys ----------------------------------------------------------


_cache_lock = threading.Lock()
_metadata: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, tuple[float, KeySet]] = {}


def _get_json(url: str) -> dict[str, Any]:
    """A public JSON document of the IdP (httpx honours ``SSL_CERT_FILE`` for an internal CA)."""
    with httpx.Client(timeout=10.0, trust_env=True) as client:
        response = client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"{url}: not a JSON object")
    return data


def provider_metadata(cfg: OidcConfig, *, refresh: bool = False) -> dict[str, Any]:
    """The issuer's discovery document (cached an hour); its ``issuer`` must be ours."""
    with _cache_lock:
        cached = _metadata.get(cfg.issuer)
    if cached and not refresh and time.monotonic() - cached[0] < METADATA_TTL_S:
        return cached[1]
    try:
        data = _get_json(cfg.issuer.rstrip("/") + "/.well-known/openid-configuration")
    except Exception as exc:  # noqa: BLE001  (network, TLS, HTTP status, JSON)
        log.warning("OIDC discovery failed: %s", type(exc).__name__)
        raise OidcRefused("idp_unreachable") from None
    if data.get("issuer") != cfg.issuer:
        log.warning("OIDC discovery names another issuer than OROSFLOW_OIDC_ISSUER")
        raise OidcRefused("issuer_invalid")
    with _cache_lock:
        _metadata[cfg.issuer] = (time.monotonic(), data)
    return data


def provider_keys(cfg: OidcConfig, *, refresh: bool = False) -> KeySet:
    """The IdP's signing keys (JWKS), cached; refetched when a token names an unknown key."""
    with _cache_lock:
        cached = _jwks.get(cfg.issuer)
    if cached and not refresh and time.monotonic() - cached[0] < METADATA_TTL_S:
        return cached[1]
    try:
        keys = KeySet.import_key_set(_get_json(provider_metadata(cfg)["jwks_uri"]))  # type: ignore[arg-type]
    except OidcRefused:
        raise
    except Exception as exc:  # noqa: BLE001
        log.warning("OIDC JWKS fetch failed: %s", type(exc).__name__)
        raise OidcRefused("idp_unreachable") from None
    with _cache_lock:
        _jwks[cfg.issuer] = (time.monotonic(), keys)
    return keys


def forget_provider() -> None:
    """Drop cached metadata and keys (tests start providers with new keys)."""
    with _cache_lock:
        _metadata.clear()
        _jwks.clear()


# --- the ID token --------------------------------------------------------------------------------


def check_id_token(id_token: str, cfg: OidcConfig, keys: KeySet) -> dict[str, Any]:
    """The ID token's claims once its signature and claims hold, else :class:`OidcRefused`.

    Signature by one of ``keys`` (asymmetric algorithms only); ``iss`` is the issuer; ``aud``
    holds our client id (and ``azp`` is ours when there are several audiences); ``exp`` has not
    passed and ``iat`` is not in the future (one minute's leeway); ``sub`` and ``nonce`` are
    present; with ``require_mfa``, ``amr`` or ``acr`` shows a second factor. The nonce's
    one-time use is :func:`consume_nonce`'s.
    """
    try:
        token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
    except (BadSignatureError, InvalidKeyIdError):
        raise OidcRefused("signature_invalid") from None
    except (JoseError, ValueError):
        raise OidcRefused("signature_invalid") from None
    claims = dict(token.claims)
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY_S,
        iss={"essential": True, "value": cfg.issuer},
        aud={"essential": True, "value": cfg.client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise OidcRefused("token_expired") from None
    except (InvalidClaimError, MissingClaimError) as exc:
        claim = getattr(exc, "claim", "")
        if claim == "iss":
            raise OidcRefused("issuer_invalid") from None
        if claim == "aud":
            raise OidcRefused("audience_invalid") from None
        raise OidcRefused("claims_invalid") from None
    except JoseError:
        raise OidcRefused("claims_invalid") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != cfg.client_id:
        raise OidcRefused("audience_invalid")
    if cfg.require_mfa and not has_second_factor(claims, cfg):
        raise OidcRefused("mfa_missing")
    return claims


def has_second_factor(claims: Mapping[str, Any], cfg: OidcConfig) -> bool:
    """``amr`` names one of ``OROSFLOW_OIDC_MFA_AMR``, or ``acr`` is one of ``…_MFA_ACR``."""
    amr = claims.get("amr")
    methods = set(amr) if isinstance(amr, list) else set()
    return bool(methods & set(cfg.mfa_amr)) or (
        bool(cfg.mfa_acr) and claims.get("acr") in cfg.mfa_acr
    )


def consume_nonce(nonce: str, flow_nonce_hash: str | None = None) -> None:
    """Use up the nonce: it must be the one of an open flow (this browser's, when given), and
    is accepted once. A conditional update, so two requests racing with one token cannot both
    win."""
    digest = token_digest(nonce)
    if flow_nonce_hash is not None and not secrets.compare_digest(digest, flow_nonce_hash):
        raise OidcRefused("nonce_invalid")
    now = utcnow()
    with session_scope() as s:
        result = s.exec(  # type: ignore[call-overload]
            update(OidcLogin)
            .where(
                col(OidcLogin.nonce_hash) == digest,
                col(OidcLogin.consumed_at).is_(None),
                col(OidcLogin.expires_at) > now,
            )
            .values(consumed_at=now, code_verifier=None)
        )
        if result.rowcount == 1:
            return
        known = s.exec(select(OidcLogin.id_hash).where(OidcLogin.nonce_hash == digest)).first()
    raise OidcRefused("nonce_replayed" if known else "nonce_invalid")


# --- the flow -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """A started sign-in: the cookie binding it to this browser, and where to send it."""

    cookie: str
    authorization_url: str


def begin(cfg: OidcConfig, next_path: str = "") -> Started:
    """Start a sign-in: fresh state, nonce and PKCE verifier; the IdP's authorization URL."""
    metadata = provider_metadata(cfg)
    cookie = secrets.token_urlsafe(32)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters (RFC 7636: 43–128)
    extra: dict[str, str] = {"nonce": nonce}
    if cfg.require_mfa and cfg.mfa_acr:
        extra["acr_values"] = " ".join(cfg.mfa_acr)
    client = OAuth2Client(
        client_id=cfg.client_id,
        scope=cfg.scopes,
        redirect_uri=cfg.redirect_uri,
        code_challenge_method="S256",
    )
    url, _ = client.create_authorization_url(
        metadata["authorization_endpoint"], state=state, code_verifier=verifier, **extra
    )
    now = utcnow()
    with session_scope() as s:
        s.exec(  # type: ignore[call-overload]
            delete(OidcLogin).where(col(OidcLogin.expires_at) < now - ENDED_KEPT)
        )
        s.add(
            OidcLogin(
                id_hash=token_digest(cookie),
                state_hash=token_digest(state),
                nonce_hash=token_digest(nonce),
                code_verifier=verifier,
                next_path=next_path[:2000],
                created_at=now,
                expires_at=now + FLOW_TTL,
            )
        )
    return Started(cookie, url)


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    next_path: str


def complete(cfg: OidcConfig, cookie: str, params: Mapping[str, str]) -> SignedIn:
    """Finish a sign-in from the IdP's redirect: ``code``, ``state`` (and ``iss``) or
    ``error``. Every outcome is audited; a refusal raises :class:`OidcRefused`."""
    try:
        signed_in = _complete(cfg, cookie, params)
    except OidcRefused as exc:
        _audit_refusal(exc)
        raise
    return signed_in


def _complete(cfg: OidcConfig, cookie: str, params: Mapping[str, str]) -> SignedIn:
    now = utcnow()
    with session_scope() as s:
        flow = s.get(OidcLogin, token_digest(cookie)) if cookie else None
        if flow is None or flow.consumed_at is not None or flow.expires_at <= now:
            raise OidcRefused("flow_unknown")
        state_hash, nonce_hash = flow.state_hash, flow.nonce_hash
        verifier, next_path = flow.code_verifier, flow.next_path
    if not secrets.compare_digest(token_digest(params.get("state", "")), state_hash):
        raise OidcRefused("state_mismatch")
    if params.get("error"):
        raise OidcRefused("idp_error")
    if "iss" in params and params["iss"] != cfg.issuer:  # RFC 9207 mix-up defence
        raise OidcRefused("issuer_invalid")
    code = params.get("code", "")
    if not code or not verifier:
        raise OidcRefused("token_exchange_failed")
    metadata = provider_metadata(cfg)
    try:
        with OAuth2Client(
            client_id=cfg.client_id,
            client_secret=cfg.client_secret,
            redirect_uri=cfg.redirect_uri,
            timeout=10.0,
            trust_env=True,
        ) as client:
            token = client.fetch_token(
                metadata["token_endpoint"], code=code, code_verifier=verifier
            )
    except Exception as exc:  # noqa: BLE001  (the IdP's error answer or the network)
        log.warning("OIDC token request failed: %s", type(exc).__name__)
        raise OidcRefused("token_exchange_failed") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OidcRefused("token_exchange_failed")
    claims = accept_id_token(id_token, cfg, flow_nonce_hash=nonce_hash)
    return SignedIn(sign_in(cfg, claims), next_path)


def accept_id_token(
    id_token: str,
    cfg: OidcConfig,
    *,
    keys: KeySet | None = None,
    flow_nonce_hash: str | None = None,
) -> dict[str, Any]:
    """Check the ID token (:func:`check_id_token`, with the IdP's keys refetched once if it
    names a key we do not know: key rotation) and use up its nonce."""
    try:
        claims = check_id_token(id_token, cfg, keys or provider_keys(cfg))
    except OidcRefused as exc:
        if exc.code != "signature_invalid" or keys is not None:
            raise
        claims = check_id_token(id_token, cfg, provider_keys(cfg, refresh=True))
    consume_nonce(str(claims["nonce"]), flow_nonce_hash)
    return claims


# --- from claims to an account ---------------------------------------------------------------


def _groups(claims: Mapping[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def sign_in(cfg: OidcConfig, claims: Mapping[str, Any]) -> Principal:
    """The account for these (already checked) claims, its role and units brought in line with
    the groups when a group map is configured; created when just-in-time provisioning is on."""
    subject = claims.get(cfg.subject_claim)
    if not isinstance(subject, str) or not subject:
        raise OidcRefused("claims_invalid")
    claimed = claims.get(cfg.email_claim)
    try:  # it becomes a mail recipient: a plain address, or none
        email = check_email(claimed) if isinstance(claimed, str) else None
    except AccountError:
        email = None
    grant = map_groups(cfg.group_map, _groups(claims, cfg.groups_claim))
    external_id = f"{cfg.issuer}|{subject}"
    with session_scope() as s:
        user = s.exec(
            select(UserAccount).where(col(UserAccount.external_id).in_([external_id, subject]))
        ).first()
        user_id = user.id if user else None
    if user_id is None:
        if not cfg.jit:
            raise OidcRefused("account_unknown")
        if grant is None:
            raise OidcRefused("group_not_mapped")
        user_id = _provision(cfg, claims, external_id, email, grant)
    now = utcnow()
    with session_scope() as s:
        user = s.get(UserAccount, user_id)
        assert user is not None
        if not user.active:
            raise OidcRefused("account_disabled", user.username)
        if cfg.group_map:
            if grant is None:
                raise OidcRefused("group_not_mapped", user.username)
            units = json.dumps(list(grant.units))
            if (user.role, user.units) != (grant.role, units):
                user.role, user.units = grant.role, units
                append_event(
                    s,
                    actor="system:oidc",
                    action="account.groups_applied",
                    details={
                        "username": user.username,
                        "role": grant.role,
                        "units": list(grant.units),
                    },
                )
        if user.role == Role.COUNSELOR and not (user.email or email):
            raise OidcRefused("email_missing", user.username)
        if email and not user.email:
            user.email = email
        user.last_login_at = now
        s.add(user)
        append_event(
            s, actor=f"user:{user.username}", action="login.succeeded", details={"via": "oidc"}
        )
        return principal_of(user)


def _provision(
    cfg: OidcConfig,
    claims: Mapping[str, Any],
    external_id: str,
    email: str | None,
    grant: GroupGrant,
) -> str:
    """Create the account at its first sign-in (``OROSFLOW_OIDC_JIT``); its id."""
    if grant.role == Role.COUNSELOR and not email:
        raise OidcRefused("email_missing")
    name = claims.get("name")
    with session_scope() as s:
        taken = (
            email is not None
            and s.exec(select(UserAccount.id).where(UserAccount.username == email)).first()
        )
    username = email if email and not taken else "oidc-" + token_digest(external_id)[:12]
    try:
        principal = add_user(
            username,
            display_name=name if isinstance(name, str) and name.strip() else username,
            role=grant.role,
            password=None,
            email=email,
            units=list(grant.units),
            external_id=external_id,
            actor="system:oidc",
        )
    except AccountError as exc:
        log.warning("OIDC provisioning refused: %s", exc.code)
        raise OidcRefused("claims_invalid") from None
    return principal.user_id


def _audit_refusal(exc: OidcRefused) -> None:
    """``login.refused`` with the reason code and at most the account's username."""
    details: dict[str, Any] = {"via": "oidc", "reason": exc.code}
    if exc.username:
        details["username"] = exc.username
    with session_scope() as s:
        append_event(s, actor="system:oidc", action="login.refused", details=details)
    log.info("OIDC sign-in refused: %s", exc.code)


# --- signing out ---------------------------------------------------------------------------------


def record_logout(principal: Principal, via: str) -> None:
    """Audit the end of a session (``via``: ``local`` or ``oidc``)."""
    with session_scope() as s:
        append_event(s, actor=principal.actor, action="logout", details={"via": via})


def end_session_url(cfg: OidcConfig) -> str | None:
    """RP-initiated logout at the IdP, when it offers it (``end_session_endpoint``); back to
    our sign-in page afterwards."""
    try:
        endpoint = provider_metadata(cfg).get("end_session_endpoint")
    except OidcRefused:
        return None
    if not isinstance(endpoint, str) or not re.match(r"^https?://", endpoint):
        return None
    query = urlencode({"client_id": cfg.client_id, "post_logout_redirect_uri": cfg.post_logout_uri})
    return endpoint + ("&" if "?" in endpoint else "?") + query
