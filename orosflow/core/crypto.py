"""Envelope encryption of personal data at rest (AES-256-GCM from ``cryptography``).

Each report has its own random data key; only that key, wrapped by a master key, is stored.
Erasing a report is deleting its wrapped key, and rotating the master key re-wraps data keys
without touching the data. Master keys come from ``OROSFLOW_SECRET_KEY`` (base64, 32 bytes) or a
key file created with mode 0600 on first start. Under the master wrapping each data key is also
sealed by its month's key-encryption key (``orosflow.core.periodkeys``), destroyed on schedule
so that database backups cannot bring an erased report back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orosflow.core.settings import Settings, get_settings

NONCE_BYTES = 12
KEY_BYTES = 32


class CryptoError(Exception):
    """A key is missing or cannot open the data (wrong key, tampering, or erased report)."""


#: What a valid key looks like, for start-up errors.
KEY_HINT = (
    f"en giltig nyckel är {KEY_BYTES} slumpmässiga byte i base64 (44 tecken som slutar på '='), "
    't.ex. från: python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"'
)
#: Said when a submission cannot read back what it just encrypted (nothing is stored).
UNREADABLE_MESSAGE = (
    "Servern kan inte läsa det den krypterar: huvudnyckeln har bytts eller skiljer sig mellan "
    "processerna (OROSFLOW_SECRET_KEY eller nyckelfilen). Anmälan har inte sparats. Kontakta "
    "driften; försök igen när felet är rättat."
)


class KeyConfigError(CryptoError):
    """The configured master key (setting or key file) is not a valid key: a start-up error,
    shown to the operator in Swedish and naming the setting, never as a traceback."""


class KeyMismatch(CryptoError):
    """What was just encrypted cannot be decrypted with the configured key (misconfiguration)."""

    def __init__(self) -> None:
        super().__init__(UNREADABLE_MESSAGE)


def _b64d(text: str, source: str = "OROSFLOW_SECRET_KEY") -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(
            f"{source} är ogiltig: huvudnyckeln måste vara {KEY_BYTES} byte (base64); {KEY_HINT}."
        )
    return raw


def key_id_of(key: bytes) -> str:
    return "k-" + hashlib.sha256(b"orosflow-kid:" + key).hexdigest()[:12]


@dataclass
class Keyring:
    """Master keys by id; ``active`` wraps new data keys, the others only unwrap."""

    active: str
    keys: dict[str, bytes] = field(default_factory=dict)
    path: Path | None = None

    def wrap(self, data_key: bytes, report_id: str) -> tuple[str, bytes]:
        return self.active, _seal(self.keys[self.active], data_key, f"dek:{report_id}")

    def unwrap(self, key_id: str, wrapped: bytes, report_id: str) -> bytes:
        if key_id not in self.keys:
            raise CryptoError(f"Huvudnyckel {key_id} saknas.")
        return _open(self.keys[key_id], wrapped, f"dek:{report_id}")

    def seal_text(self, text: str, aad: str) -> str:
        """A small secret (a TOTP seed) sealed with the active master key, as
        ``<key id>:<base64>``; ``aad`` binds it to its row so it cannot be moved to another."""
        blob = _seal(self.keys[self.active], text.encode(), aad)
        return f"{self.active}:{base64.b64encode(blob).decode()}"

    def open_text(self, sealed: str, aad: str) -> str:
        """The secret of :meth:`seal_text` (any master key still in the ring opens it)."""
        key_id, _, b64 = sealed.partition(":")
        if key_id not in self.keys:
            raise CryptoError(f"Huvudnyckel {key_id} saknas.")
        return _open(self.keys[key_id], base64.b64decode(b64), aad).decode()

    def add_and_activate(self) -> str:
        """Create a new master key and make it active (the file-based keyring only)."""
        if self.path is None:
            raise CryptoError(
                "Nyckeln kommer från OROSFLOW_SECRET_KEY: byt den där och lägg den gamla i "
                "OROSFLOW_PREVIOUS_SECRET_KEYS."
            )
        key = AESGCM.generate_key(bit_length=256)
        kid = key_id_of(key)
        self.keys[kid] = key
        self.active = kid
        _write_keyfile(self.path, self)
        return kid


def _keyfile_body(ring: Keyring) -> str:
    return json.dumps(
        {
            "active": ring.active,
            "keys": {k: base64.b64encode(v).decode() for k, v in ring.keys.items()},
        },
        indent=2,
    )


def _private_temp(path: Path, body: str) -> Path:
    """A fully written 0600 file with a unique name next to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(name)


def _write_keyfile(path: Path, ring: Keyring) -> None:
    """Replace the key file atomically (rotation): readers see the old or the new file."""
    tmp = _private_temp(path, _keyfile_body(ring))
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def _create_keyfile(path: Path) -> None:
    """Create the key file on a fresh install unless another process got there first.

    The key is written to a private temporary file and hard-linked into place: the link fails
    if the file exists, so two processes starting at once never overwrite each other's key
    (which would leave reports wrapped with a key nobody has), and nobody reads a half-written
    file. The caller re-reads the file, so both end up with the winner's key."""
    key = AESGCM.generate_key(bit_length=256)
    ring = Keyring(active=key_id_of(key), keys={key_id_of(key): key}, path=path)
    tmp = _private_temp(path, _keyfile_body(ring))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def _read_keyfile(path: Path) -> Keyring:
    source = f"Nyckelfilen {path} (OROSFLOW_KEY_FILE)"
    try:
        raw = json.loads(path.read_text())
        keys = {str(k): _b64d(str(v), source) for k, v in raw["keys"].items()}
        active = str(raw["active"])
    except KeyConfigError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise KeyConfigError(
            f'{source} kan inte läsas: den ska vara JSON med "active" och "keys" '
            f"(id → nyckel); {KEY_HINT}."
        ) from None
    if active not in keys:
        raise KeyConfigError(f"{source} är ogiltig: den aktiva nyckeln {active} saknas i filen.")
    return Keyring(active=active, keys=keys, path=path)


def load_keyring(settings: Settings | None = None) -> Keyring:
    """The master keys from ``OROSFLOW_SECRET_KEY`` (plus ``OROSFLOW_PREVIOUS_SECRET_KEYS``) or
    the key file, which is created on first use. Raises :class:`KeyConfigError` when the
    configured key is not valid."""
    settings = settings or get_settings()
    if settings.secret_key is not None:
        key = _b64d(settings.secret_key.get_secret_value())
        ring = Keyring(active=key_id_of(key), keys={key_id_of(key): key})
        for old in filter(None, os.environ.get("OROSFLOW_PREVIOUS_SECRET_KEYS", "").split(",")):
            old_key = _b64d(old, "OROSFLOW_PREVIOUS_SECRET_KEYS")
            ring.keys[key_id_of(old_key)] = old_key
        return ring
    path = settings.resolved_key_file
    if not path.exists():
        _create_keyfile(path)
    return _read_keyfile(path)


def check_key_settings(settings: Settings | None = None) -> None:
    """Start-up check: raise :class:`KeyConfigError` if the configured key (environment or an
    existing key file) is not valid. Creates nothing; a missing key file is made on first use."""
    settings = settings or get_settings()
    if settings.secret_key is not None or settings.resolved_key_file.exists():
        load_keyring(settings)


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _seal(key: bytes, plaintext: bytes, aad: str) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad.encode())


def _open(key: bytes, blob: bytes, aad: str) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad.encode())
    except InvalidTag:
        raise CryptoError(
            "Uppgifterna kunde inte dekrypteras (fel nyckel eller ändrade data)."
        ) from None


def seal_json(data_key: bytes, obj: object, aad: str) -> bytes:
    """Encrypt a JSON-able object; ``aad`` binds the ciphertext to its row and column."""
    return _seal(data_key, json.dumps(obj, ensure_ascii=False, default=str).encode(), aad)


def open_json(data_key: bytes, blob: bytes, aad: str) -> object:
    return json.loads(_open(data_key, blob, aad))


def lookup_digests(ring: Keyring, purpose: str, value: str) -> list[str]:
    """Keyed digests (HMAC-SHA256) of ``value`` for finding rows without storing the value.

    One per master key, the active key's first: store the first, match against all, so a key
    rotation does not hide what was stored just before it. The HMAC key is derived from the
    master key and ``purpose``, so digests for different uses cannot be compared. Unlike a plain
    hash, a digest of a personnummer cannot be brute-forced without the key store.
    """
    order = [ring.active, *sorted(k for k in ring.keys if k != ring.active)]
    out = []
    for kid in order:
        derived = hmac.new(ring.keys[kid], f"orosflow-lookup:{purpose}".encode(), "sha256").digest()
        out.append(hmac.new(derived, value.encode(), "sha256").hexdigest())
    return out
