"""Envelope encryption: per-report keys, key file mode, rotation, tamper detection."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from orosflow.core.crypto import CryptoError, load_keyring, new_data_key, open_json, seal_json
from orosflow.core.db import session_scope
from orosflow.core.keys import rotate_master_key
from orosflow.core.settings import get_settings, reset_settings
from orosflow.handover.content import read_report
from orosflow.handover.submission import submit

from factories import form


def test_key_file_is_created_private(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OROSFLOW_KEY_FILE", str(tmp_path / "keys.json"))
    reset_settings()
    ring = load_keyring()
    mode = stat.S_IMODE(os.stat(tmp_path / "keys.json").st_mode)
    assert mode == 0o600
    assert load_keyring().active == ring.active  # same key on the next start
    reset_settings()


def test_secret_key_from_environment_wins(monkeypatch) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    monkeypatch.setenv("OROSFLOW_SECRET_KEY", key)
    reset_settings()
    ring = load_keyring()
    assert ring.path is None and ring.keys[ring.active] == b"k" * 32
    monkeypatch.setenv("OROSFLOW_SECRET_KEY", "too-short")
    reset_settings()
    with pytest.raises(CryptoError, match="32 byte"):
        load_keyring()
    reset_settings()


def test_ciphertext_is_bound_to_its_row() -> None:
    key = new_data_key()
    blob = seal_json(key, {"name": "x"}, "child:a")
    assert open_json(key, blob, "child:a") == {"name": "x"}
    with pytest.raises(CryptoError):
        open_json(key, blob, "child:b")  # moved to another report
    with pytest.raises(CryptoError):
        open_json(key, blob[:-1] + bytes([blob[-1] ^ 1]), "child:a")  # flipped bit


def test_rotation_rewraps_every_key_and_content_stays_readable(db: str) -> None:
    ids = [r.report_id for r in submit(form(), actor="t").reports]
    before = load_keyring().active
    result = rotate_master_key()
    ring = load_keyring()
    assert ring.active == result["active"] != before
    assert result["rewrapped"] >= 1
    with session_scope() as s:
        content = read_report(s, ids[0], keyring=ring, actor="t", purpose="t")
    assert content.child.name
    assert get_settings().resolved_key_file.exists()
