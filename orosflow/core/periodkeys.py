"""Key-encryption keys per retention period, kept outside the database, destroyed on schedule.

A report's data key is wrapped twice: first by the key of its period (the calendar month of its
submission in Stockholm time), then by the master key ring as before. The period keys live in a
0600 JSON file next to the master key file (``OROSFLOW_PERIOD_KEY_FILE``), never in the
database, so a database backup holds only wrapped keys. When a period's retention plus the
backup life (``OROSFLOW_BACKUP_DAYS``) has passed, the retention sweep deletes its key: every
report of that period is then unreadable in the live database and in every backup, whatever
master key survives.

Reports stored before period keys existed have ``report_key.period`` NULL and are wrapped by
the master key alone; both forms are read (:func:`unwrap_report_key`), and
``orosflow keys rewrap`` moves the old ones into their period.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orosflow.core.clock import STOCKHOLM, utcnow
from orosflow.core.crypto import (
    CryptoError,
    KeyConfigError,
    Keyring,
    _b64d,
    _open,
    _private_temp,
    _seal,
)
from orosflow.core.settings import Settings, get_settings


class PeriodKeyDestroyed(CryptoError):
    """The report's period key has been destroyed: its content is gone for good."""

    def __init__(self, period: str) -> None:
        self.period = period
        super().__init__(
            f"Nyckeln för perioden {period} är förstörd enligt gallringen; anmälan kan inte "
            "läsas (inte heller ur en säkerhetskopia)."
        )


class PeriodKeyMissing(CryptoError):
    """The period has a key somewhere, but not in this process's key file: a second machine
    with its own file instead of the shared one (``OROSFLOW_PERIOD_KEY_FILE``)."""

    def __init__(self, period: str, path: Path) -> None:
        self.period = period
        super().__init__(
            f"Nyckeln för perioden {period} finns inte i periodnyckelfilen {path} och är inte "
            "förstörd: alla processer (portalen, arbetarna, kommandoraden) måste använda samma "
            "fil (OROSFLOW_PERIOD_KEY_FILE). Kontakta driften."
        )


def period_of(at: datetime) -> str:
    """The retention period of a submission time: its month in Stockholm, ``YYYY-MM``."""
    return at.astimezone(STOCKHOLM).strftime("%Y-%m")


def period_end(period: str) -> datetime:
    """The first moment after ``period`` (midnight Stockholm time on the next month's 1st)."""
    year, month = (int(p) for p in period.split("-"))
    first = date(year + month // 12, month % 12 + 1, 1)
    return datetime.combine(first, time(0), tzinfo=STOCKHOLM)


def destroy_after(period: str, settings: Settings | None = None) -> datetime:
    """When the period's key is destroyed: its last report's retention, then the backup life
    (a backup taken the day before that report was erased must expire first)."""
    s = settings or get_settings()
    return period_end(period) + timedelta(days=s.retention_days + s.backup_days)


@dataclass
class PeriodKeys:
    """The key file's content: live keys by period, and when each destroyed one went."""

    keys: dict[str, bytes] = field(default_factory=dict)
    destroyed: dict[str, str] = field(default_factory=dict)


def _path(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).resolved_period_key_file


def _parse(path: Path) -> PeriodKeys:
    source = f"Periodnyckelfilen {path} (OROSFLOW_PERIOD_KEY_FILE)"
    try:
        raw = json.loads(path.read_text())
        keys = {str(k): _b64d(str(v), source) for k, v in raw["keys"].items()}
        destroyed = {str(k): str(v) for k, v in raw.get("destroyed", {}).items()}
    except FileNotFoundError:
        return PeriodKeys()
    except KeyConfigError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise KeyConfigError(
            f'{source} kan inte läsas: den ska vara JSON med "keys" (period → nyckel).'
        ) from None
    return PeriodKeys(keys=keys, destroyed=destroyed)


_cache: dict[Path, tuple[tuple[int, int, int], PeriodKeys]] = {}


def read_period_keys(settings: Settings | None = None) -> PeriodKeys:
    """The period keys as the file holds them now (re-read whenever the file was replaced, so
    a key destroyed by another process is gone here too)."""
    path = _path(settings)
    try:
        st = path.stat()
    except FileNotFoundError:
        _cache.pop(path, None)
        return PeriodKeys()
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _cache.get(path)
    if hit is None or hit[0] != stamp:
        hit = (stamp, _parse(path))
        _cache[path] = hit
    return hit[1]


def _write(path: Path, keys: PeriodKeys) -> None:
    """Replace the file atomically: readers see the old or the new file, never half of one."""
    body = json.dumps(
        {
            "keys": {k: base64.b64encode(v).decode() for k, v in sorted(keys.keys.items())},
            "destroyed": dict(sorted(keys.destroyed.items())),
        },
        indent=2,
    )
    tmp = _private_temp(path, body)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


@contextmanager
def _locked(settings: Settings | None = None) -> Iterator[tuple[Path, PeriodKeys]]:
    """Read-modify-write under an exclusive lock beside the file (processes creating this
    month's key at once must end up with one key, not overwrite each other's)."""
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path, _parse(path)
    finally:
        os.close(fd)


def period_key(period: str, *, create: bool = False) -> bytes:
    """The key of ``period``; with ``create``, made (once) if the period has none yet.
    Raises :class:`PeriodKeyDestroyed` for a destroyed period: a key is never made again for
    it (that would let the sweep destroy fresh reports at once)."""
    keys = read_period_keys()
    if period in keys.keys:
        return keys.keys[period]
    if period in keys.destroyed:
        raise PeriodKeyDestroyed(period)
    if not create:
        raise PeriodKeyMissing(period, _path())
    with _locked() as (path, current):
        if period in current.keys:
            return current.keys[period]
        if period in current.destroyed:
            raise PeriodKeyDestroyed(period)
        current.keys[period] = AESGCM.generate_key(bit_length=256)
        _write(path, current)
        return current.keys[period]


def destroy_period_key(period: str, now: datetime | None = None) -> bool:
    """Delete ``period``'s key from the file; ``False`` if it had none (idempotent)."""
    with _locked() as (path, current):
        if current.keys.pop(period, None) is None:
            return False
        current.destroyed[period] = (now or utcnow()).isoformat(timespec="seconds")
        _write(path, current)
        return True


def _aad(report_id: str, period: str) -> str:
    return f"dek:{report_id}:{period}"


def wrap_report_key(
    ring: Keyring, data_key: bytes, report_id: str, submitted_at: datetime
) -> tuple[str, str, bytes]:
    """``(master_key_id, period, wrapped)`` for a new report: the data key sealed by its
    period's key, that sealed again by the active master key."""
    period = period_of(submitted_at)
    inner = _seal(period_key(period, create=True), data_key, _aad(report_id, period))
    kid, wrapped = ring.wrap(inner, report_id)
    return kid, period, wrapped


def unwrap_report_key(
    ring: Keyring, master_key_id: str, wrapped: bytes, report_id: str, period: str | None
) -> bytes:
    """The report's data key. ``period`` None marks a report stored before period keys
    (master key only); otherwise the period's key must still exist."""
    outer = ring.unwrap(master_key_id, wrapped, report_id)
    if period is None:
        return outer
    return _open(period_key(period), outer, _aad(report_id, period))


def rewrap_into_period(
    ring: Keyring, master_key_id: str, wrapped: bytes, report_id: str, submitted_at: datetime
) -> tuple[str, str, bytes]:
    """Move a report stored before period keys (master key only) into its period."""
    data_key = ring.unwrap(master_key_id, wrapped, report_id)
    return wrap_report_key(ring, data_key, report_id, submitted_at)
