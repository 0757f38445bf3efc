"""What every flow run would otherwise load for itself, loaded once by the fork server.

``orosflow/core/flow_processes.py`` imports this module in the fork server before it forks
any run, so each run starts with the routing directory, the public holidays and the compiled
mail templates already in memory (see ``orosflow.handover.warm`` for what each costs). As for
the code, a runner keeps what it loaded at its start: restart it after editing the channels
file (the portal caches the same data the same way).
"""

from __future__ import annotations

from orosflow.core import heap
from orosflow.handover import warm

warm.warm()
# Last in the fork server's preload list: what every run inherits, out of the collector's way.
heap.freeze_startup_objects()
