"""Routing of child-concern reports to the right social services unit, with explanations.

Public API::

    from routing import RoutingRequest, Decision, Router, get_router, DirectoryError

Data files are in ``routing/data/`` (see :mod:`routing.directory`), contact channels in a
deployment TOML file (see :mod:`routing.channels`), the rules in :mod:`routing.rules`.
"""

from routing.errors import DirectoryError, UnknownCodeError
from routing.models import Decision, District, Municipality, RoutingRequest, Unit
from routing.router import Router, clear_router_cache, get_router
from routing.rules import RULES

__all__ = [
    "RULES",
    "Decision",
    "DirectoryError",
    "District",
    "Municipality",
    "Router",
    "RoutingRequest",
    "Unit",
    "UnknownCodeError",
    "clear_router_cache",
    "get_router",
]
