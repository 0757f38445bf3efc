"""Placeholder: pages and API for this role are added in issue #5."""

from __future__ import annotations

from fastapi import APIRouter

pages = APIRouter()
api = APIRouter()
