"""Fixtures for the routing tests: one shared router on the example channels, and helpers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from routing import Decision, Router, RoutingRequest
from routing.channels import EXAMPLE_CHANNELS
from routing.directory import DATA_DIR
from routing.hours import TZ

# An ordinary working Tuesday, inside office hours.
OFFICE_TIME = datetime(2026, 11, 24, 10, 0, tzinfo=TZ)


@pytest.fixture(scope="session")
def router() -> Router:
    """One router on the shipped data and example channels (loading is the slow part)."""
    return Router(channels_path=EXAMPLE_CHANNELS)


@pytest.fixture
def route(router: Router) -> Callable[..., Decision]:
    """route(at=..., **fields) with a clinic in Stockholm by default."""

    def _route(**fields: Any) -> Decision:
        fields.setdefault("clinic_municipality", "0180")
        fields.setdefault("at", OFFICE_TIME)
        return router.route(RoutingRequest(**fields))

    return _route


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A writable copy of routing/data for corrupting in a test."""
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target
