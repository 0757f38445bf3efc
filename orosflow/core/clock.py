"""The one source of "now", so tests can drive deadlines without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from routing.hours import TZ

#: Europe/Stockholm: every wall-clock time users see, and every office hour, is in this zone.
STOCKHOLM = TZ

_now: Callable[[], datetime] = lambda: datetime.now(tz=UTC)  # noqa: E731


def utcnow() -> datetime:
    return _now()


def set_clock(fn: Callable[[], datetime] | None) -> None:
    """Replace the clock (``None`` restores the real one). Returned datetimes must be aware."""
    global _now
    _now = fn or (lambda: datetime.now(tz=UTC))
