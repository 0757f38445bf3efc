"""The objects a long-lived process loads at start, kept out of the cyclic garbage collector.

A flow run forked from the preloaded fork server (``core.flow_processes``) inherits ~125 000
objects: Prefect, SQLAlchemy, our flows, the routing data. The first full collection in each
run walked all of them: 86–88 ms of CPU per run on the 2-core reference machine, often inside
a write transaction (a ``_claim`` held SQLite's write lock 87–107 ms in a fresh run against 3–4
ms without it), and every page it touched was copied out of the memory the runs share.
``gc.freeze()`` moves them to a permanent generation that collections skip; the objects a run
makes itself are collected as before. The portal freezes what it loaded at start for the same
reason: a full collection there falls inside some counselor's receipt.

Once per process: objects frozen stay out of collection even once they are garbage, so a
process that builds several apps (the tests) freezes only the first snapshot.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("orosflow.core.heap")
_frozen = False


def freeze_startup_objects() -> int:
    """Collect once, then freeze what is left (the first call in a process; a forked child
    keeps its parent's); returns how many objects are frozen now."""
    global _frozen
    if _frozen:
        return gc.get_freeze_count()
    _frozen = True
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("%d objects frozen out of the garbage collector", frozen)
    return frozen
