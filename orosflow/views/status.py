"""Compatibility only: the counselor's status now lives in :mod:`orosflow.views.counselor`.

``orosflow/cli/handover.py`` still imports ``status`` from here; delete this module once it
imports ``from orosflow.views.counselor import status``.
"""

from __future__ import annotations

from orosflow.views.counselor import report_status, status

__all__ = ["report_status", "status"]
