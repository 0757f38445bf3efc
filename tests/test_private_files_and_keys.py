"""Issue 11, finding 12: everything under ``var/`` is private to Orosflow's user, an invalid
master key stops the start with a Swedish message (no traceback), and two processes creating
the key file at once end up with one key."""

from __future__ import annotations

import os
import smtplib
import stat
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from orosflow.core import crypto
from orosflow.core.db import reset_engine
from orosflow.core.settings import get_settings, reset_settings

from factories import EXAMPLE
from support import free_port, run_cli


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An install's var/ as an earlier version left it: readable to everyone."""
    var = tmp_path / "var"
    for d in (var, var / "log", var / "mail", var / "prefect"):
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
    for f in (
        var / "log" / "portal.log",
        var / "mail" / "000001-a.eml",
        var / "prefect" / "prefect.db",
    ):
        f.write_text("old")
        f.chmod(0o644)
    monkeypatch.setenv("OROSFLOW_VAR_DIR", str(var))
    monkeypatch.setenv("OROSFLOW_DATABASE_URL", f"sqlite:///{var / 'orosflow.db'}")
    monkeypatch.delenv("OROSFLOW_KEY_FILE", raising=False)
    reset_settings()
    reset_engine()
    yield var
    reset_engine()
    reset_settings()


def test_serve_setup_makes_var_private_and_new_files_are_private(var: Path) -> None:
    from orosflow.cli.serve import open_log, prepare
    from orosflow.core.smtp_capture import MailCapture

    old_umask = os.umask(0o022)  # what a login shell usually has
    try:
        prepare(get_settings())
        for d in (var, var / "log", var / "mail", var / "prefect"):
            assert mode(d) == 0o700, d
        for f in (
            var / "orosflow.db",
            var / "master-keys.json",
            var / "log" / "portal.log",
            var / "mail" / "000001-a.eml",
            var / "prefect" / "prefect.db",
        ):
            assert mode(f) == 0o600, f
        # What is created after the set-up (umask 077, inherited by the children) is private.
        with open_log(var / "log" / "prefect-server.log") as log:
            log.write(b"x")
        assert mode(var / "log" / "prefect-server.log") == 0o600
        (var / "prefect" / "new.db").write_text("x")  # as the Prefect server would
        assert mode(var / "prefect" / "new.db") == 0o600
        capture = MailCapture(var / "mail" / "new", port=free_port()).start()
        try:
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "a@example.se", "b@example.se", "Test"
            msg["Message-ID"] = "<t1@example.se>"
            msg.set_content("x")
            with smtplib.SMTP("127.0.0.1", capture.port, timeout=10) as smtp:
                smtp.send_message(msg)
        finally:
            capture.stop()
        [mail] = list((var / "mail" / "new").glob("*.eml"))
        assert mode(mail) == 0o600 and mode(var / "mail" / "new") == 0o700
    finally:
        os.umask(old_umask)


def test_mail_capture_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    from orosflow.core.smtp_capture import MailCapture

    old_umask = os.umask(0o022)
    try:
        capture = MailCapture(tmp_path / "mail", port=free_port()).start()
        try:
            with smtplib.SMTP("127.0.0.1", capture.port, timeout=10) as smtp:
                smtp.sendmail("a@example.se", ["b@example.se"], b"Subject: x\r\n\r\nx\r\n")
        finally:
            capture.stop()
    finally:
        os.umask(old_umask)
    [mail] = list((tmp_path / "mail").glob("*.eml"))
    assert mode(mail) == 0o600 and mode(tmp_path / "mail") == 0o700


# --- an invalid key ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["submit", str(EXAMPLE), "--no-flow"], ["serve"], ["portal"]])
def test_invalid_secret_key_is_a_swedish_start_error(command: list[str], tmp_path: Path) -> None:
    out = run_cli(
        *command,
        env={
            "OROSFLOW_SECRET_KEY": "inte-en-nyckel",
            "OROSFLOW_VAR_DIR": str(tmp_path / "var"),
            "OROSFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'orosflow.db'}",
            "OROSFLOW_PREFECT_PORT": str(free_port()),
            "OROSFLOW_PORTAL_PORT": str(free_port()),
            "OROSFLOW_SMTP_PORT": str(free_port()),
        },
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr + out.stdout
    assert "OROSFLOW_SECRET_KEY är ogiltig" in out.stderr
    assert "32 byte" in out.stderr and "base64" in out.stderr
    assert not (tmp_path / "var" / "orosflow.db").exists()  # stopped before anything was written


def test_unreadable_key_file_names_the_file_and_the_setting(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text("{trasig")
    out = run_cli(
        "submit",
        str(EXAMPLE),
        "--no-flow",
        env={
            "OROSFLOW_KEY_FILE": str(key_file),
            "OROSFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'orosflow.db'}",
        },
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"Nyckelfilen {key_file} (OROSFLOW_KEY_FILE) kan inte läsas" in out.stderr


def test_invalid_previous_key_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    monkeypatch.setenv("OROSFLOW_SECRET_KEY", base64.b64encode(b"k" * 32).decode())
    monkeypatch.setenv("OROSFLOW_PREVIOUS_SECRET_KEYS", "kort")
    reset_settings()
    with pytest.raises(crypto.KeyConfigError, match="OROSFLOW_PREVIOUS_SECRET_KEYS är ogiltig"):
        crypto.check_key_settings()
    reset_settings()


# --- creating the key file --------------------------------------------------------------------


def test_processes_creating_the_key_file_at_once_get_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh install where several starters load the keyring at the same moment: every one
    gets the same key, the one in the file (before: each could write its own, and reports
    wrapped with an overwritten key could never be opened)."""
    path = tmp_path / "keys.json"
    monkeypatch.setenv("OROSFLOW_KEY_FILE", str(path))
    reset_settings()
    real_exists = Path.exists
    starters = 8
    barrier = threading.Barrier(starters, timeout=30)

    def exists_then_wait(self: Path, *args: object, **kwargs: object) -> bool:
        found = real_exists(self, *args, **kwargs)  # type: ignore[arg-type]
        if self == path:
            barrier.wait()  # all starters saw "no key file" before any of them writes one
        return found

    monkeypatch.setattr(Path, "exists", exists_then_wait)
    rings: list[crypto.Keyring] = []
    threads = [
        threading.Thread(target=lambda: rings.append(crypto.load_keyring())) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    monkeypatch.setattr(Path, "exists", real_exists)
    assert len(rings) == starters
    on_disk = crypto.load_keyring()
    assert {r.active for r in rings} == {on_disk.active}
    assert {r.keys[r.active] for r in rings} == {on_disk.keys[on_disk.active]}
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temporary files left
    reset_settings()
