"""Looking inside Prefect: API round trips, server CPU, and a profile of one flow run.

The round-trip recorder wraps httpx's ``send`` (every attempt, so a 503 and its retry are two
calls); that is how the benchmark found that the SQLite-backed server answers 503 when its
database is busy and the client then backs off for about two seconds.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class ApiCall:
    started: float
    seconds: float
    method: str
    path: str
    status: int | None


@dataclass
class ApiRecorder:
    """Records every HTTP request the Prefect client makes while installed."""

    calls: list[ApiCall] = field(default_factory=list)
    _originals: dict[type, Any] = field(default_factory=dict)

    def install(self) -> ApiRecorder:
        recorder = self
        async_send = httpx.AsyncClient.send
        sync_send = httpx.Client.send

        async def send_async(client, request, *args, **kwargs):  # type: ignore[no-untyped-def]
            started, response = time.perf_counter(), None
            try:
                response = await async_send(client, request, *args, **kwargs)
                return response
            finally:
                recorder._record(started, request, response)

        def send_sync(client, request, *args, **kwargs):  # type: ignore[no-untyped-def]
            started, response = time.perf_counter(), None
            try:
                response = sync_send(client, request, *args, **kwargs)
                return response
            finally:
                recorder._record(started, request, response)

        self._originals = {httpx.AsyncClient: async_send, httpx.Client: sync_send}
        httpx.AsyncClient.send = send_async  # type: ignore[method-assign]
        httpx.Client.send = send_sync  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        for cls, original in self._originals.items():
            cls.send = original  # type: ignore[attr-defined]
        self._originals = {}

    def _record(self, started: float, request: httpx.Request, response: Any) -> None:
        path = _ID.sub("{id}", request.url.path)
        status = getattr(response, "status_code", None)
        self.calls.append(
            ApiCall(started, time.perf_counter() - started, request.method, path, status)
        )

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> list[ApiCall]:
        return self.calls[mark:]


def server_cpu_seconds(pgid: int) -> float:
    """User+system CPU of every live process in the server's process group (from /proc)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class FlowProfile:
    """One warm, isolated flow run taken apart."""

    wall: float
    api_calls: list[ApiCall]
    loop_cpu: float
    top_own: list[tuple[str, float]]
    client_builds: int
    client_build_seconds: float


def _label(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    short = filename.split("site-packages/")[-1].replace("/work/main/", "")
    return f"{short}:{line}({name})"


async def profile_flow_run(
    run: Callable[[], Awaitable[None]], recorder: ApiRecorder
) -> FlowProfile:
    """cProfile the event-loop thread during one flow run, plus its API round trips.

    Time in the worker threads (our service steps) is not in the profile; it shows as the
    event loop waiting, which is excluded from ``loop_cpu``.
    """
    mark = recorder.mark()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    try:
        await run()
    finally:
        profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    idle = {
        "<method 'poll' of 'select.epoll' objects>",
        "<method 'acquire' of '_thread.lock' objects>",
    }
    own = [(f, v[2]) for f, v in raw.items() if _label(f) not in idle]
    loop_cpu = sum(t for _, t in own)
    top_own = [(_label(f), t) for f, t in sorted(own, key=lambda x: -x[1])[:6]]
    builds = [v for f, v in raw.items() if "load_verify_locations" in _label(f)]
    return FlowProfile(
        wall=wall,
        api_calls=recorder.since(mark),
        loop_cpu=loop_cpu,
        top_own=top_own,
        client_builds=sum(v[1] for v in builds),
        client_build_seconds=sum(v[2] for v in builds),
    )
