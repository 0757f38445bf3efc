"""The ID token checks refuse what they must (issue 14): a wrong audience, an expired token, a
replayed nonce, a wrong signing key, a missing ``amr`` when MFA is required, and a few more.
Tokens are signed here with a local key (joserfc), since a real provider will not make bad ones;
the end-to-end sign-in against the real provider is ``tests/e2e/test_oidc_sign_in.py``. Each
refusal through :func:`oidc.complete` is audited with its reason code and no personal data.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlmodel import col, select

from models.accounts import OidcLogin, UserAccount
from models.tables import AuditEvent
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.identity import accounts, oidc
from orosflow.identity.accounts import token_digest

ISSUER = "https://idp.kommun.example.se"
CLIENT = "orosflow"
KEY = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})  # same kid, other key
KEYS = KeySet([KEY])


def config(**changes: Any) -> oidc.OidcConfig:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT,
        "client_secret": "s",
        "scopes": "openid email profile",
        "subject_claim": "sub",
        "email_claim": "email",
        "groups_claim": "groups",
        "group_map": oidc.load_group_map(
            '{"mottagning-sod": {"role": "intake", "units": ["sdf-sodermalm"]},'
            ' "granskare": {"role": "auditor"}}'
        ),
        "jit": False,
        "require_mfa": False,
        "mfa_amr": ("mfa",),
        "mfa_acr": (),
        "portal_url": "https://orosflow.kommun.example.se",
    }
    values.update(changes)
    return oidc.OidcConfig(**values)


def token(key: RSAKey = KEY, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "subject-1",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
        "amr": ["pwd", "mfa"],
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": "idp-1"}, payload, key)


def refused(id_token: str, cfg: oidc.OidcConfig | None = None) -> str:
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.check_id_token(id_token, cfg or config(), KEYS)
    return caught.value.code


def test_a_good_token_passes() -> None:
    claims = oidc.check_id_token(token(), config(require_mfa=True), KEYS)
    assert claims["sub"] == "subject-1"


def test_a_wrong_audience_is_refused() -> None:
    assert refused(token(aud="another-app")) == "audience_invalid"
    # Several audiences: ours must be among them and be the authorised party.
    assert refused(token(aud=[CLIENT, "another-app"], azp="another-app")) == "audience_invalid"
    assert oidc.check_id_token(token(aud=[CLIENT, "x"], azp=CLIENT), config(), KEYS)


def test_an_expired_token_is_refused() -> None:
    now = int(time.time())
    assert refused(token(iat=now - 900, exp=now - 120)) == "token_expired"
    # Within the minute of allowed clock skew it still passes.
    assert oidc.check_id_token(token(iat=now - 300, exp=now - 30), config(), KEYS)


def test_a_token_signed_with_another_key_is_refused() -> None:
    assert refused(token(key=OTHER_KEY)) == "signature_invalid"
    unknown_kid = jwt.encode({"alg": "RS256", "kid": "nope"}, {"iss": ISSUER}, OTHER_KEY)
    assert refused(unknown_kid) == "signature_invalid"


def test_unsigned_and_symmetric_tokens_are_refused() -> None:
    from joserfc.jwk import OctKey

    secret = OctKey.import_key(b"s" * 32)
    hs = jwt.encode({"alg": "HS256"}, {"iss": ISSUER, "aud": CLIENT, "sub": "x"}, secret)
    assert refused(hs) == "signature_invalid"
    header, payload, _ = token().split(".")
    assert refused(f"{header}.{payload}.") == "signature_invalid"


def test_a_wrong_issuer_or_missing_claims_are_refused() -> None:
    assert refused(token(iss="https://evil.example")) == "issuer_invalid"
    assert refused(token(nonce=None)) == "claims_invalid"
    assert refused(token(sub=None)) == "claims_invalid"


def test_a_missing_second_factor_is_refused_when_mfa_is_required() -> None:
    cfg = config(require_mfa=True)
    assert refused(token(amr=None), cfg) == "mfa_missing"
    assert refused(token(amr=["pwd"]), cfg) == "mfa_missing"
    # Off by default: the same token passes.
    assert oidc.check_id_token(token(amr=None), config(), KEYS)
    # An acr value of a level with two factors counts (e.g. SITHS eID's LoA 3).
    loa3 = "http://id.elegnamnden.se/loa/1.0/loa3"
    cfg_acr = config(require_mfa=True, mfa_acr=(loa3,))
    assert oidc.check_id_token(token(amr=None, acr=loa3), cfg_acr, KEYS)
    assert refused(token(amr=None, acr="loa2"), cfg_acr) == "mfa_missing"


def _open_flow(nonce: str) -> str:
    """A flow row as :func:`oidc.begin` leaves it; returns its nonce digest."""
    now = utcnow()
    with session_scope() as s:
        s.add(
            OidcLogin(
                id_hash=token_digest(str(uuid.uuid4())),
                state_hash=token_digest("state"),
                nonce_hash=token_digest(nonce),
                code_verifier="v" * 43,
                created_at=now,
                expires_at=now + timedelta(minutes=15),
            )
        )
    return token_digest(nonce)


def test_a_replayed_nonce_is_refused(db: str) -> None:
    nonce_hash = _open_flow("n-1")
    id_token = token(nonce="n-1")
    claims = oidc.accept_id_token(id_token, config(), keys=KEYS, flow_nonce_hash=nonce_hash)
    assert claims["nonce"] == "n-1"
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.accept_id_token(id_token, config(), keys=KEYS, flow_nonce_hash=nonce_hash)
    assert caught.value.code == "nonce_replayed"
    # Nor through a flow of its own: the nonce is spent whoever brings it.
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.accept_id_token(id_token, config(), keys=KEYS)
    assert caught.value.code == "nonce_replayed"


def test_a_nonce_of_no_flow_or_of_another_flow_is_refused(db: str) -> None:
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.accept_id_token(token(nonce="never-issued"), config(), keys=KEYS)
    assert caught.value.code == "nonce_invalid"
    _open_flow("n-a")
    other = _open_flow("n-b")
    with pytest.raises(oidc.OidcRefused) as caught:  # n-a's token in n-b's browser
        oidc.accept_id_token(token(nonce="n-a"), config(), keys=KEYS, flow_nonce_hash=other)
    assert caught.value.code == "nonce_invalid"


def _events(action: str) -> list[dict[str, Any]]:
    with session_scope() as s:
        rows = s.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        ).all()
        return [json.loads(e.details) for e in rows]


def test_a_callback_without_its_flow_is_refused_and_audited(db: str) -> None:
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.complete(config(), "no-such-cookie", {"code": "c", "state": "s"})
    assert caught.value.code == "flow_unknown"
    assert _events("login.refused") == [{"via": "oidc", "reason": "flow_unknown"}]


def test_groups_map_to_role_and_units_and_jit_creates_the_account(db: str) -> None:
    claims = {
        "sub": "subject-9",
        "email": "Mona@Kommun.example.se",
        "name": "Mona",
        "groups": ["alla", "mottagning-sod"],
    }
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.sign_in(config(), claims)  # JIT off: unknown subject
    assert caught.value.code == "account_unknown"
    principal = oidc.sign_in(config(jit=True), claims)
    assert (principal.username, principal.role, principal.units) == (
        "mona@kommun.example.se",
        "intake",
        frozenset({"sdf-sodermalm"}),
    )
    with session_scope() as s:
        user = s.exec(select(UserAccount).where(UserAccount.id == principal.user_id)).one()
        assert user.external_id == f"{ISSUER}|subject-9" and user.password_hash is None
    # Moved to the auditors' group at the IdP: the next sign-in follows.
    again = oidc.sign_in(config(), {**claims, "groups": ["granskare"]})
    assert (again.role, again.units) == ("auditor", frozenset())
    # No mapped group any more: refused, naming only the account.
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.sign_in(config(), {**claims, "groups": ["alla"]})
    assert (caught.value.code, caught.value.username) == (
        "group_not_mapped",
        "mona@kommun.example.se",
    )


def test_groups_giving_two_roles_are_refused() -> None:
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.map_groups(config().group_map, ["mottagning-sod", "granskare"])
    assert caught.value.code == "groups_conflict"


def test_a_pre_provisioned_account_signs_in_by_subject_and_a_disabled_one_does_not(
    db: str,
) -> None:
    accounts.add_user(
        "lena", display_name="Lena", role="auditor", password=None, external_id="subject-7"
    )
    cfg = config(group_map={})  # no mapping: the account keeps its own role
    principal = oidc.sign_in(cfg, {"sub": "subject-7"})
    assert (principal.username, principal.role) == ("lena", "auditor")
    accounts.disable_user("lena")
    with pytest.raises(oidc.OidcRefused) as caught:
        oidc.sign_in(cfg, {"sub": "subject-7"})
    assert caught.value.code == "account_disabled"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"g": {"role": "boss"}}', "behöver role"),
        ('{"g": {"role": "intake"}}', "intake kräver units"),
        ('{"g": {"role": "intake", "units": ["no-such-unit"]}}', "okänd enhet"),
        ('{"g": {"role": "auditor", "units": ["sdf-sodermalm"]}}', "bara mottagning"),
        ("/no/such/file.toml", "kan inte läsas"),
    ],
)
def test_a_broken_group_map_is_named_at_start(value: str, message: str) -> None:
    with pytest.raises(oidc.OidcConfigError, match=message):
        oidc.load_group_map(value)


def test_a_group_map_file_in_toml(tmp_path: Any) -> None:
    path = tmp_path / "groups.toml"
    path.write_text('[g1]\nrole = "intake"\nunits = ["sdf-sodermalm"]\n', encoding="utf-8")
    assert oidc.load_group_map(str(path)) == {"g1": oidc.GroupGrant("intake", ("sdf-sodermalm",))}
