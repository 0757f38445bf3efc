"""What a long-lived process loads before its first report instead of during it.

Much of a report's first-time cost falls inside a write transaction, where every other writer
waits (on SQLite, the one write lock, the counselor's receipt included). Measured on the
2-core reference machine, in a fresh process:

- the routing directory and the channels file: 0.65 s;
- Swedish public holidays, first lookup: 0.31 s (the ``holidays`` package loads its
  catalogs). A handover's deadline needs it when its notification is recorded as sent: every
  forked flow run paid it holding the lock (``mark_sent`` held it 375 ms at p50 in a burst);
- the mail templates: compiled on first use, while the mail is claimed;
- Prefect's API client (the portal starts runs): ~1 s on the first receipt.

The fork server of the flow runs (``flows/preload.py``) and the portal (at start) call these.
"""

from __future__ import annotations

import logging
import time

from orosflow.core.clock import STOCKHOLM, utcnow

log = logging.getLogger("orosflow.handover.warm")


def routing_data() -> None:
    """The routing directory, and the public holidays of this year and the next."""
    from routing import get_router

    router = get_router()
    year = utcnow().astimezone(STOCKHOLM).year
    for y in (year, year + 1):
        router.calendar.public_holidays(y)


def mail_templates() -> None:
    """Every e-mail template, compiled into the shared template environment."""
    from orosflow.core.mail import template_env

    env = template_env()
    for name in env.list_templates(filter_func=lambda n: n.startswith("email/")):
        env.get_template(name)


def flow_run_trigger() -> None:
    """Prefect's API client and the thread that starts flow runs (the portal starts them)."""
    import prefect.client.orchestration  # noqa: F401 - imported for its side effect
    import prefect.exceptions  # noqa: F401

    from orosflow.core import prefect_client
    from orosflow.handover import trigger

    prefect_client.install()
    trigger.starter_thread()


def warm(*, trigger: bool = False) -> float:
    """Load what the report path needs; returns the seconds it took (logged). A failure is
    logged, not raised: the first report then pays for it, as it did before."""
    started = time.perf_counter()
    steps = [routing_data, mail_templates, *([flow_run_trigger] if trigger else [])]
    for step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - warming is an optimisation, never a failure
            log.warning("warm-up step %s failed: %s", step.__name__, type(exc).__name__)
    took = time.perf_counter() - started
    log.info("warmed up in %.2f s", took)
    return took
