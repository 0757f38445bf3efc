"""Turning results into the console table and ``docs/benchmarks.md``.

One table is printed and written, so what a developer sees in the terminal is what lands in
the docs.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from benchmarks.overhead import Overhead
from benchmarks.probes import FlowProfile
from benchmarks.sections import Burst, Notify
from benchmarks.stats import mean, ms, p50_p95, percentile

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


@dataclass
class Column:
    """One configuration: the app database and the database behind the Prefect server."""

    app_db: str  # sqlite | postgres
    prefect_db: str  # sqlite | postgres
    receipts: list[float] | None = None
    notify: Notify | None = None
    plain_burst: Burst | None = None
    prefect_burst: Burst | None = None
    shared_client_burst: Burst | None = None
    prefect_burst_note: str = "–"  # what the cells say when there is no burst sample
    profile: FlowProfile | None = None
    overhead: Overhead | None = None
    server_start: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        name = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
        return f"app {name[self.app_db]} · Prefect {name[self.prefect_db]}"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = "?"
    return {
        "date": datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPUs": f"{os.cpu_count()} × {cpu}",
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0],
        "Prefect": version("prefect"),
        "SQLAlchemy": version("sqlalchemy"),
        "commit": commit or "?",
        # Other work on the machine shifts every figure; this says how busy it was.
        "load average at start (1/5/15 min)": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def _burst_cell(b: Burst | None) -> list[str]:
    if b is None:
        return ["–"] * 4
    return [
        f"{b.drain:.1f} s",
        f"{b.throughput:.1f}/s",
        f"{b.receipts_done:.1f} s",
        f"{b.check.lost} / {b.check.duplicates}"
        + (f" ({len(b.errors)} errors)" if b.errors else ""),
    ]


def rows(columns: list[Column], n: dict[str, int]) -> list[list[str]]:
    """Table rows: label first, then one cell per column."""
    out: list[list[str]] = []

    def add(label: str, cells: list[str]) -> None:
        out.append([label, *cells])

    add(
        f"(a) receipt latency p50 / p95 (N={n['receipts']}, no Prefect)",
        [p50_p95(c.receipts) if c.receipts else "same app DB as col. 2" for c in columns],
    )
    add(
        "(b) time-to-notify p50 / p95, through Prefect (sequential)",
        [p50_p95(c.notify.prefect_to_mail) if c.notify else "–" for c in columns],
    )
    add(
        "    time-to-notify p50 / p95, plain async (same run)",
        [p50_p95(c.notify.plain_to_mail) if c.notify else "–" for c in columns],
    )
    add(
        "(b)/(d) N: reports one after another, per path",
        [str(len(c.notify.prefect_pipeline)) if c.notify else "–" for c in columns],
    )
    plain = [_burst_cell(c.plain_burst) for c in columns]
    pref = [_burst_cell(c.prefect_burst) for c in columns]
    same = "same app DB as col. 2"
    labels = ["drain", "throughput", "all receipts given after", "lost / duplicates"]
    for i, what in enumerate(labels):
        add(
            f"(c) burst {n['burst']}, plain async: {what}",
            [cell[i] if c.plain_burst else same for c, cell in zip(columns, plain, strict=True)],
        )
    add(
        "(c) burst sample through Prefect: reports",
        [str(c.prefect_burst.n) if c.prefect_burst else c.prefect_burst_note for c in columns],
    )
    for i, what in enumerate(labels):
        add(
            f"(c) burst sample through Prefect (≤{n['flow_concurrency']} flows at once): {what}",
            [
                cell[i] if c.prefect_burst else c.prefect_burst_note
                for c, cell in zip(columns, pref, strict=True)
            ],
        )
    shared = [c.shared_client_burst for c in columns]
    add(
        "(c) same burst sample through Prefect, one API client reused: drain / throughput",
        [
            f"{b.drain:.1f} s / {b.throughput:.1f}/s (lost {b.check.lost}, dup. "
            f"{b.check.duplicates})"
            if b
            else "–"
            for b in shared
        ],
    )
    add(
        "(d) per report, plain async mean",
        [ms(mean(c.notify.plain_pipeline)) if c.notify else "–" for c in columns],
    )
    add(
        "(d) per report, Prefect flow mean",
        [ms(mean(c.notify.prefect_pipeline)) if c.notify else "–" for c in columns],
    )
    add(
        "(d) overhead ratio Prefect / plain",
        [
            f"{mean(c.notify.prefect_pipeline) / mean(c.notify.plain_pipeline):.1f}×"
            if c.notify
            else "–"
            for c in columns
        ],
    )
    add(
        "    this process's CPU per report, plain / Prefect",
        [
            f"{ms(c.notify.plain_cpu_per_run)} / {ms(c.notify.prefect_cpu_per_run)}"
            if c.notify
            else "–"
            for c in columns
        ],
    )
    add(
        "    Prefect API requests per flow run / HTTP 503 answers",
        [
            f"{c.notify.api_calls_per_run:.1f} / {c.notify.api_503}" if c.notify else "–"
            for c in columns
        ],
    )
    add(
        "    Prefect server CPU per flow run (sequential)",
        [ms(c.notify.server_cpu_per_run) if c.notify else "–" for c in columns],
    )
    add(
        "    Prefect server CPU per flow run (burst sample)",
        [
            ms(c.prefect_burst.server_cpu_per_run)
            if c.prefect_burst and c.prefect_burst.server_cpu_per_run is not None
            else "–"
            for c in columns
        ],
    )
    add(
        "    HTTP 503 answers during the Prefect burst sample",
        [str(c.prefect_burst.api_503) if c.prefect_burst else "–" for c in columns],
    )
    add(
        "    Prefect server start-up",
        [f"{c.server_start:.0f} s" if c.server_start else "–" for c in columns],
    )
    return out


def overhead_section(columns: list[Column]) -> list[str]:
    """The interleaved A/B (``benchmarks/overhead.py``), when the run had PostgreSQL."""
    out: list[str] = []
    for c in columns:
        if c.overhead is not None:
            out += [
                f"## Overhead, interleaved A/B ({c.title})",
                "",
                "Plain, Prefect, plain, Prefect … one report at a time "
                "(`python -m benchmarks.run --section overhead`; where a Prefect run's time "
                "goes: `benchmarks/PROFILE.md`).",
                "",
                *c.overhead.lines(),
                "",
            ]
    return out


def render_table(header: list[str], body: list[list[str]]) -> str:
    """A Markdown table that also reads well in a terminal."""
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in body)])


def profile_section(columns: list[Column]) -> list[str]:
    """'Where the time goes' from the profiled flow runs."""
    out: list[str] = []
    for c in columns:
        p = c.profile
        if p is None:
            continue
        api = sum(a.seconds for a in p.api_calls if not a.path.endswith("/logs/"))
        ours = mean(c.notify.plain_pipeline) if c.notify else float("nan")
        out.append(f"### One warm flow run, {c.title}: {ms(p.wall)} wall")
        out.append("")
        out.append(
            f"Roughly: {ms(api)} waiting for the API, {ms(ours)} our own steps (the plain "
            f"pipeline's mean), and the remaining {ms(p.wall - api - ours)} in Prefect's "
            f"client (engine, task runs, API clients), slowed by the profiler."
        )
        out.append("")
        out.append(
            f"- {len(p.api_calls)} HTTP requests to the Prefect API, {ms(api)} waited in all "
            f"(statuses: {', '.join(sorted({str(a.status) for a in p.api_calls}))}):"
        )
        for a in sorted(p.api_calls, key=lambda a: -a.seconds):
            aside = " (log shipper thread, off the run's path)" if a.path.endswith("/logs/") else ""
            out.append(f"  - {a.method} {a.path} → {a.status}: {ms(a.seconds)}{aside}")
        out.append(
            f"- CPU in the event-loop thread, under cProfile (which inflates it; our service "
            f"steps run in worker threads and are not in it): {ms(p.loop_cpu)}; of that, "
            f"TLS contexts for new API clients (`load_verify_locations`, {p.client_builds}×): "
            f"{ms(p.client_build_seconds)}"
        )
        out.append("- Top own-time functions in the event-loop thread:")
        for label, seconds in p.top_own:
            out.append(f"  - `{label}`: {ms(seconds)}")
        out.append("")
    return out


METHOD = """\
- Everything runs on this machine in one process plus the servers it starts: a Prefect
  server (`prefect server start`, its own `PREFECT_HOME` in a temp dir, telemetry and UI off)
  on its default SQLite or on a dedicated PostgreSQL database (created and dropped by the
  run), the app database (a SQLite file in the temp dir, or a fresh PostgreSQL schema), and an
  aiosmtpd capture (`orosflow.core.smtp_capture`) per section.
- The form is `examples/report.json`; the clock is pinned to a Monday 10:00 in Stockholm, so
  every report routes to one office-hours unit (one handover, one e-mail).
- A flow run is the real `concern-report` flow awaited in-process (`await concern_report(id)`):
  no deployment, worker or poll interval is in these figures.
- "Plain async" is the same service calls in the same worker threads without Prefect:
  `load_and_revalidate` → `outbox.deliver` (claim and render each queued mail, `mail.send`,
  mark it sent and the handover notified), as the flow does. The route itself is decided in
  `submit()` (a).
- (a) `submit()` one after another after 5 warm-ups. (b) submit → mail accepted, where
  "accepted" is the moment the capture has written the `.eml` file (stamped in its DATA handler
  before it answers 250); reports one after another, back to back. (d) the same loop's
  pipeline time (after submit); first the plain block, then the Prefect block, each after 2
  warm-ups. (c) all submissions started at once with `asyncio.gather` (≤ {submit} submits in
  worker threads at a time, ≤ {flows} pipelines or flows at a time); drain = start → last mail
  accepted; lost = a report without a notified handover or a handover without exactly one
  `.eml`; duplicates = Message-IDs stored more than once.
- Server CPU is the Prefect server's process group's user+system time (from `/proc`),
  including 2 s after the last run so its follow-up work (events, logs) counts.
"""


def _fmt(value: float | None, fmt: str = "{:.0f}") -> str:
    return "–" if value is None else fmt.format(value)


def findings(columns: list[Column], redactor: dict[str, dict[str, float]]) -> list[str]:
    """The bottlenecks, with this run's numbers filled in."""
    by = {(c.app_db, c.prefect_db): c for c in columns}
    lite = by.get(("sqlite", "sqlite"))
    pg = by.get(("postgres", "postgres"))
    out: list[str] = []
    if lite and lite.notify:
        nt = lite.notify
        burst = lite.prefect_burst
        in_burst = f" ({burst.api_503} times in the {burst.n}-report burst)" if burst else ""
        on_pg = ""
        if pg and pg.notify:
            p95 = ms(percentile(pg.notify.prefect_to_mail, 95))
            on_pg = f" On PostgreSQL: {pg.notify.api_503} × 503, p95 {p95}."
        out.append(
            "1. **The Prefect server on SQLite answers HTTP 503 under load, and the client then "
            "waits 2 s (then 4, 8 …).** While the server is still writing the previous runs' "
            "events and task runs, `POST /api/flow_runs/` finds its database busy "
            "(`SQLITE_BUSY`, which the server maps to 503); Prefect's client backs off and "
            "retries. "
            f"{nt.api_503} of {len(nt.prefect_pipeline)} back-to-back runs hit it{in_burst}: "
            "that is what pushes (b) towards 2 s and most of (d)'s ratio on SQLite." + on_pg
        )
    ref = pg or lite
    if ref and ref.notify:
        nt = ref.notify
        client = nt.prefect_cpu_per_run - nt.plain_cpu_per_run
        total = client + nt.server_cpu_per_run
        line = (
            f"2. **CPU is the ceiling: Prefect spends about {ms(total)} of CPU per flow run** "
            f"({ms(client)} in the client on top of our own {ms(nt.plain_cpu_per_run)} for "
            f"submit + pipeline, "
            f"{ms(nt.server_cpu_per_run)} in the server; {ref.title}). On 2 cores that allows "
            f"at most about {2 / (total + nt.plain_cpu_per_run):.1f} runs/s, however many run "
            "at once"
        )
        if ref.prefect_burst:
            line += f"; the burst sample reached {ref.prefect_burst.throughput:.1f}/s"
        out.append(line + ". More concurrency on this machine does not help; more machines do.")
    prof = next((c.profile for c in columns if c.profile), None)
    if prof:
        shared = next((c for c in columns if c.shared_client_burst and c.prefect_burst), None)
        line = (
            f"3. **API clients: {prof.client_builds} CA-bundle loads per run "
            f"({ms(prof.client_build_seconds)} under the profiler).** Prefect 3.9.1 builds each "
            "API client with certifi's CA bundle in a TLS context (16–19 ms of CPU, three per "
            "run until now) even for a "
            "plain-HTTP API; `orosflow.core.prefect_client.install()` gives the clients of an "
            "`http://` API one shared context that loads none (https is left as Prefect has "
            "it), and the flow names its result storage, so no sync client asks "
            "`GET /api/admin/storage` per run. Keeping one client pair open around many runs "
            "(`prefect_client.shared_clients()`) saves the rest of the client set-up"
        )
        if shared:
            line += (
                f": burst {shared.prefect_burst.drain:.1f} s → "
                f"{shared.shared_client_burst.drain:.1f} s ({shared.title})"
            )
        out.append(line + ".")
        tasks = sum(1 for a in prof.api_calls if "task_runs" in a.path)
        out.append(
            f"4. Task runs cost {tasks} API requests (their states travel as events over the "
            f"websocket); a run's requests are the flow's own: create flow and flow run, set the "
            f"name, Running, read back, Completed. The final `set_state` is the slowest request."
        )
    if redactor:

        def us(seconds: float) -> str:
            return f"{seconds * 1e6:.0f} µs"

        def before(v: dict[str, float]) -> str:
            if "legacy_register_s" not in v:
                return ""
            return f" (before: {ms(v['legacy_register_s'])} and {us(v['legacy_redact_line_s'])})"

        out.append(
            "5. **Ours, not Prefect's: the log redactor used to slow down with every distinct "
            "report a process read** (it recompiled one pattern over all values seen, up to "
            "20,000). It now keeps the values in a trie of 4-character chunks (no pattern, no "
            "recompiling), holds a `redaction.scope()`'s values while it lasts and the most "
            "recent 20,000 after: one new report's values and one log line cost, with "
            + ", ".join(
                f"{int(k):,} values held: {us(v['register_s'])} and {us(v['redact_line_s'])}"
                + before(v)
                for k, v in redactor.items()
            )
            + " (`python -m benchmarks.redaction`). The figures above use identical reports."
        )
    return out


def write_doc(
    info: dict[str, str],
    columns: list[Column],
    table: str,
    n: dict[str, int],
    total: float,
    redactor: dict[str, dict[str, float]],
) -> None:
    """Write ``docs/benchmarks.md`` (generated: edit ``benchmarks/``, not the file)."""
    notes = [f"- {c.title}: {note}" for c in columns for note in c.notes]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`benchmarks/run.py`); do not edit by hand.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        f"- whole run: {total:.0f} s",
        "",
        "## Figures",
        "",
        table,
        "",
        *(["Skipped:", "", *notes, ""] if notes else []),
        *overhead_section(columns),
        "## How it is measured",
        "",
        METHOD.format(submit=8, flows=n["flow_concurrency"]).rstrip(),
        "",
        "## Where the time goes",
        "",
        *findings(columns, redactor),
        "",
        *profile_section(columns),
    ]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
