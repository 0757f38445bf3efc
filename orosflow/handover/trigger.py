"""Start flow runs for stored reports — after the commit, never before.

One flow, ``concern-report``, delivers everything queued for a report: its first
notifications after submission and every mail a later action queues (a re-routed report,
the counselor's notices). Failure here is expected when Prefect is down: the mails are
already in the outbox, and the reconciler starts the run later. The idempotency key makes a
second attempt return the same flow run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from typing import Any
from uuid import UUID

from sqlmodel import col, select

from models.tables import LifecycleMail, Report
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings

log = logging.getLogger("orosflow.handover.trigger")


class _Starter:
    """Creates this process's flow runs from one thread of its own, with one API client per
    Prefect API and each deployment's id read once.

    ``run_deployment`` built a new API client and read the deployment by name for every run
    (two requests, ~20 ms of CPU), on the caller's event loop: in the portal, uvicorn's. After
    a burst of 30 submissions that work held the loop, and the receipts of the next seconds
    took 100–240 ms instead of 25. Here each run is one request, and the portal's loop only
    waits for it. The caller's context (Prefect's settings too) comes along with each call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        self._opening: asyncio.Lock | None = None
        self._deployments: dict[tuple[str, str], UUID] = {}

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:  # a forked process inherits the loop, not the thread that ran it
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._loop, self._clients, self._opening = asyncio.new_event_loop(), {}, None
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="orosflow-flow-runs", daemon=True
                )
                self._thread.start()
            return self._loop

    async def _client(self) -> tuple[str, Any]:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL

        api = str(PREFECT_API_URL.value() or "ephemeral")
        if self._opening is None:
            self._opening = asyncio.Lock()  # made on the starter's loop, used only there
        async with self._opening:
            if api not in self._clients:
                client = get_client()
                await client.__aenter__()
                self._clients[api] = client
        return api, self._clients[api]

    async def create(self, **kwargs: Any) -> Any:
        """Create one flow run (on the starter's loop); the deployment's id is read on the
        first call and again when the server no longer knows it (re-created)."""
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        api, client = await self._client()
        key = (api, kwargs.pop("deployment"))
        for attempt in (1, 2):
            if key not in self._deployments:
                self._deployments[key] = (await client.read_deployment_by_name(key[1])).id
            try:
                return await client.create_flow_run_from_deployment(
                    self._deployments[key], **kwargs
                )
            except (ObjectNotFound, PrefectHTTPStatusError) as exc:
                status = getattr(getattr(exc, "response", None), "status_code", 404)
                if attempt == 2 or status != 404:
                    raise
                self._deployments.pop(key, None)
        raise AssertionError("unreachable")

    async def call(self, **kwargs: Any) -> Any:
        """Run :func:`create_in_prefect` on the starter's thread and wait for it here."""
        loop = self.loop()
        context = contextvars.copy_context()
        done: Future[Any] = Future()

        def begin() -> None:
            task = loop.create_task(create_in_prefect(**kwargs), context=context)
            task.add_done_callback(lambda t: _settle(done, t))
            done.add_done_callback(
                lambda f: f.cancelled() and loop.call_soon_threadsafe(task.cancel)
            )

        loop.call_soon_threadsafe(begin)
        return await asyncio.wrap_future(done)


def _settle(done: Future[Any], task: asyncio.Task[Any]) -> None:
    """Hand the task's outcome to the waiting caller (unless it stopped waiting)."""
    with contextlib.suppress(InvalidStateError):  # the caller cancelled meanwhile
        if task.cancelled():
            done.cancel()
        elif task.exception() is not None:
            done.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            done.set_result(task.result())


_STARTER = _Starter()


def starter_thread() -> None:
    """Start the thread that creates this process's flow runs (warm-up: before the first)."""
    _STARTER.loop()


async def create_in_prefect(**kwargs: Any) -> Any:
    """The flow run as Prefect created it (``.id``); what tests replace to play the server."""
    return await _STARTER.create(**kwargs)


async def start_flow_run(report_id: str, reference: str, attempt: str = "1") -> str | None:
    """Create the report's flow run; return its id, or ``None`` if Prefect could not be reached."""
    from orosflow.core import prefect_client

    # No CA bundle loaded per API client (~45 ms each) for a plain-http API.
    prefect_client.install()
    settings = get_settings()
    try:
        run = await asyncio.wait_for(
            _STARTER.call(
                deployment=settings.deployment,
                parameters={"report_id": report_id},
                name=reference,
                idempotency_key=f"concern-report:{report_id}:{attempt}",
            ),
            timeout=settings.trigger_timeout,
        )
    except Exception as exc:  # Prefect down, deployment missing, timeout: the reconciler retries
        log.warning("flow run for report %s not created: %s", report_id, type(exc).__name__)
        return None
    flow_run_id = str(run.id)
    await asyncio.wrap_future(_RECORDER.record(report_id, flow_run_id))
    return flow_run_id


class _Recorder:
    """Records created runs on the reports from one thread, those that queued up meanwhile in
    one transaction. After a burst of 30 submissions their 30 records, each a transaction of
    its own, queued in the portal ahead of the next counselor's receipt (62 ms measured)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, str, Future[None]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def record(self, report_id: str, flow_run_id: str) -> Future[None]:
        done: Future[None] = Future()
        self._queue.put((report_id, flow_run_id, done))
        with self._lock:  # a forked process inherits the object, not the thread
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="orosflow-flow-run-records", daemon=True
                )
                self._thread.start()
        return done

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                _record([(rid, fid) for rid, fid, _ in batch])
            except Exception as exc:  # noqa: BLE001 - each waiting caller gets the error
                outcome: BaseException | None = exc
            else:
                outcome = None
            for *_, done in batch:
                with contextlib.suppress(InvalidStateError):  # that caller stopped waiting
                    if outcome is None:
                        done.set_result(None)
                    else:
                        done.set_exception(outcome)


_RECORDER = _Recorder()


def _record(runs: list[tuple[str, str]]) -> None:
    """Each report's new flow run, with its ``flow_run.created`` event (one transaction)."""
    with session_scope() as session:
        for report_id, flow_run_id in runs:
            report = session.get(Report, report_id)
            if report is None or report.flow_run_id == flow_run_id:
                continue
            report.flow_run_id, report.flow_triggered_at = flow_run_id, utcnow()
            session.add(report)
            append_event(
                session,
                actor="system:trigger",
                action="flow_run.created",
                report_id=report_id,
                details={"flow_run_id": flow_run_id},
            )


async def start_flow_runs(
    items: list[tuple[str, str]], attempt: dict[str, str] | None = None
) -> dict[str, str | None]:
    """``items`` are ``(report_id, reference)`` pairs; runs are created concurrently.

    ``attempt`` maps a report to its idempotency suffix (default "1"): a restart after a failed
    run uses ``after:<failed run id>``, so two reconcilers restarting it create one run.
    """
    attempt = attempt or {}
    ids = await asyncio.gather(
        *(start_flow_run(rid, ref, attempt.get(rid, "1")) for rid, ref in items)
    )
    return {rid: fid for (rid, _), fid in zip(items, ids, strict=True)}


#: Actions are synchronous (portal handlers run in a thread pool, the CLI is a script): flow
#: runs are created on these threads so the request does not wait for Prefect. At exit the
#: interpreter waits for them, so the CLI's run is created before the process ends.
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="orosflow-trigger")
#: Where the actions of a ``requested_runs()`` block put their pending creations. Only a caller
#: that waits collects them: a portal keeping every one would grow for as long as it runs.
_collector: contextvars.ContextVar[list[Future[str | None]] | None] = contextvars.ContextVar(
    "orosflow_requested_runs", default=None
)


@contextlib.contextmanager
def requested_runs() -> Iterator[list[Future[str | None]]]:
    """Collect the delivery runs that the actions in this block start (the CLI waits for
    them with :func:`wait_for_requested` before it prints)."""
    started: list[Future[str | None]] = []
    token = _collector.set(started)
    try:
        yield started
    finally:
        _collector.reset(token)


def _newest_pending(report_id: str) -> str | None:
    with session_scope() as session:
        return session.exec(
            select(LifecycleMail.id)
            .where(LifecycleMail.report_id == report_id, col(LifecycleMail.sent_at).is_(None))
            .order_by(col(LifecycleMail.created_at).desc(), col(LifecycleMail.id).desc())
        ).first()


def request_delivery(report_id: str, reference: str) -> Future[str | None] | None:
    """Start the report's delivery run for what an action just queued (call after commit).

    Returns the pending creation (``.result()`` is the flow run id, or None when Prefect
    could not be reached), or None when nothing is queued or flow runs are turned off.
    """
    if not get_settings().flow_runs:
        return None
    newest = _newest_pending(report_id)
    if newest is None:
        return None
    future = _POOL.submit(asyncio.run, start_flow_run(report_id, reference, f"mail:{newest}"))
    if (collected := _collector.get()) is not None:
        collected.append(future)
    return future


def wait_for_requested(
    started: list[Future[str | None]], timeout: float | None = None
) -> list[str | None]:
    """Wait for the delivery runs of a :func:`requested_runs` block (the CLI, before it
    prints); None for each that could not be created now."""
    timeout = get_settings().trigger_timeout + 5 if timeout is None else timeout
    out: list[str | None] = []
    for future in started:
        try:
            out.append(future.result(timeout))
        except Exception:  # noqa: BLE001 - not created now: the reconciler starts it
            out.append(None)
    return out
