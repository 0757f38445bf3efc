"""Legal references and deadlines, read from data files so that text never hard-codes law."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

DATA = Path(__file__).resolve().parents[1] / "data"


class LegalReference(BaseModel):
    label: str
    reference: str
    previous: str | None = None
    verified: bool
    note: str | None = None


@lru_cache
def legal_references() -> dict[str, LegalReference]:
    raw = tomllib.loads((DATA / "legal.toml").read_text(encoding="utf-8"))
    return {key: LegalReference(**value) for key, value in raw.items()}


def legal_text(key: str) -> str:
    """Swedish citation for user-facing text, flagged when the paragraph is unverified."""
    ref = legal_references()[key]
    if ref.verified:
        return ref.reference
    text = ref.reference
    if ref.previous:
        text += f", tidigare {ref.previous}"
    return text + "; hänvisningen är inte verifierad"


@lru_cache
def deadlines() -> dict[str, Any]:
    return tomllib.loads((DATA / "deadlines.toml").read_text(encoding="utf-8"))
