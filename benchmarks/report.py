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
    sustained: list[dict] | None = None,
) -> None:
    """Write ``docs/benchmarks.md`` (generated: edit ``benchmarks/``, not the file). The
    sustained-load runs already on the page stay, ``sustained`` replacing those it repeats."""
    previous = sustained_runs(DOC.read_text(encoding="utf-8")) if DOC.exists() else []
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
        *sustained_section(merge_runs(previous, sustained or [])),
    ]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


# --- the sustained section (benchmarks.sustained) -----------------------------------------------

SUSTAINED_HEADING = "## Sustained load"
#: The section's markers, as the other sections written apart (serve_burst, before_after).
SUSTAINED_BEGIN, SUSTAINED_END = "<!-- sustained: begin -->", "<!-- sustained: end -->"
#: The runs behind the section, kept in the page itself (a Markdown comment), so that a new
#: run replaces its own column and ``make bench`` without ``BENCH_SUSTAINED`` keeps the rest.
SUSTAINED_DATA = "<!-- sustained-runs: "

SUSTAINED_METHOD = """\
- `python -m benchmarks.sustained` starts, in a temp dir, a Prefect server (`prefect server
  start`, UI off, every service on) on a scratch PostgreSQL database, the portal (`orosflow
  portal`) on a second one, an aiosmtpd capture on loopback, and the flow side: `orosflow
  runner` (prefect.yaml's deployments, flow runs forked from its preloaded fork server, the
  reconciler inside) or, with `--worker process`, docs/deploy.md steps 5, 7 and 9 (`prefect
  deploy --all`, `prefect worker start --limit`, `orosflow reconcile`). The settings are
  deploy step 3's, for loopback; the mail relay is plain SMTP (no STARTTLS).
- Load: the example form through `POST /api/v1/reports` with a counselor's API token, each
  report about another child, open loop — report *i* is due at start + *i*/rate whatever
  became of the ones before — after 3 warm-up reports, 10 s of idle measurement and 10
  reports one at a time (each waited for: what one report costs through its own flow run).
  Receipt and time-to-notify count from when a report was due; "mailed" is when the capture
  has written the `.eml`. Then it waits (bounded) until every report is mailed and no
  `concern-report` run is unfinished, and 5 s more.
- Two paths mail a report: its own `concern-report` run, started at submission, and the
  `escalate-overdue` sweep (every 5 minutes, one process), which also sends whatever is still
  queued — the backstop. A mail the sweep sent has no owner in the outbox; "by their own run"
  counts the others. `--no-sweep` pauses the sweep, so that every mail comes from its own run.
  The measured ceiling is the rate of reports mailed by their own run in the window's second
  half, when the mails fell behind.
- Lost = a receipt and no mail by the end, with no mail left queued in the outbox; "still
  queued" ones were late, not lost. Duplicates = a report (`X-Orosflow-Reference`) mailed more
  than once, and any Message-ID accepted more than once. Held = nothing lost, refused or
  duplicated, and the last mail within 30 s of the last report due (at 10 minutes a 5 %
  shortfall leaves it 30 s behind).
- CPU per report: user + system time over the load and drain (and over the one-at-a-time
  reports), less the idle rate measured before, over the reports mailed, from `/proc`: each
  process tree with the children it reaped (so forked or spawned flow runs count), PostgreSQL
  as its whole server (other jobs' queries included). "Other jobs" is the machine's busy time
  not ours. What the CPU allows: the cores left by idle work and other jobs over the
  one-at-a-time cost of a report. Memory: the peaks of the summed RSS and PSS (shared pages
  once) of the trees, sampled every 2 s.
- Bytecode: the children write `.pyc` files to a cache in the temp dir (this machine sets
  `PYTHONDONTWRITEBYTECODE=1`, under which every new Python compiles what it imports; a
  deployment has `.pyc` files).
"""


def _key(run: dict) -> tuple:
    c = run["config"]
    return (
        c["worker"],
        c["runners"],
        c["limit"],
        c.get("sweep", True),
        float(c["rate"]),
        float(c["duration"]),
    )


def merge_runs(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` with each of ``new`` replacing the run of the same set-up, rate and duration;
    longest and fastest first."""
    runs = {_key(r): r for r in old}
    runs.update({_key(r): r for r in new})
    return sorted(runs.values(), key=lambda r: (-r["config"]["duration"], -r["config"]["rate"]))


def sustained_runs(text: str) -> list[dict]:
    """The runs stored in a page written by :func:`sustained_section` (none if absent)."""
    import json

    start = text.find(SUSTAINED_DATA)
    if start < 0:
        return []
    end = text.index(" -->", start)
    return json.loads(text[start + len(SUSTAINED_DATA) : end])


def _secs(value: float) -> str:
    if value is None or value != value:  # None or nan
        return "–"
    return ms(value) if value < 1 else f"{value:.1f} s"


def _run_title(r: dict) -> str:
    c = r["config"]
    side = "runner" if c["worker"] == "runner" else "process worker"
    sweep = "" if c.get("sweep", True) else ", sweep paused"
    return (
        f"{c['rate']:g}/s × {c['duration']:.0f} s, {c['runners']} {side}, limit {c['limit']}"
        + sweep
    )


def _verdict_cell(r: dict) -> str:
    if r["reached"]:
        return "**held**"
    if not r["kept_up"]:
        return f"**not held**: ceiling ≈ {r.get('run_rate', r['steady_rate']):.2f}/s"
    return f"**not held**: {r['unmailed']} not mailed, {r['duplicates']} duplicated"


def sustained_rows(runs: list[dict]) -> list[list[str]]:
    mib = 2**20

    def cpu_of(per: dict[str, float]) -> str:
        parts = sorted(per.items(), key=lambda kv: -kv[1])[:3]
        top = ", ".join(f"{k} {v * 1000:.0f}" for k, v in parts)
        return f"{sum(per.values()) * 1000:.0f} ms ({top} ms)"

    def rates(r: dict) -> str:
        if "cpu_rate" not in r:
            return "–"
        parts = sorted(r["cpu_rate"].items(), key=lambda kv: -kv[1])[:4]
        return ", ".join(f"{k} {v:.2f}" for k, v in parts)

    def q(values: list[float]) -> str:
        return " / ".join(_secs(v) for v in values)

    rows = [
        ("measured", lambda r: f"{r['measured']['date']}, {r['measured']['commit']}"),
        (
            "load average at start (1 / 5 / 15 min)",
            lambda r: " / ".join(f"{x:.1f}" for x in r["config"]["load_at_start"]),
        ),
        ("reports offered (open loop)", lambda r: f"{r['offered']} at {r['offered_rate']:.2f}/s"),
        ("receipts / refused", lambda r: f"{r['accepted']} / {r['failed']}"),
        (
            "mailed per s: whole run / second half of the window / of it by their own run",
            lambda r: (
                f"{r['achieved_rate']:.2f} / {r['steady_rate']:.2f} / "
                f"{r.get('run_rate', r['steady_rate']):.2f}"
            ),
        ),
        (
            "mailed by the escalation sweep (every 5 min) instead of their own run",
            lambda r: (
                str(r.get("by_sweep", "–"))
                + ("" if r["config"].get("sweep", True) else " (paused)")
            ),
        ),
        ("last mail after the last report was due", lambda r: _secs(r["tail"])),
        ("receipt (HTTP) p50 / p95", lambda r: q(r["receipt"][:2])),
        ("time-to-notify p50 / p95 / max", lambda r: q(r["notify"])),
        ("  due → run created p50 / p95", lambda r: q(r["phases"]["create"][:2])),
        ("  created → started p50 / p95", lambda r: q(r["phases"]["wait"][:2])),
        ("  run p50 / p95", lambda r: q(r["phases"]["run"][:2])),
        (
            "not mailed by the end / still queued / lost",
            lambda r: f"{r['unmailed']} / {r['queued']} / {r['lost']}",
        ),
        (
            "duplicates: reports / Message-IDs",
            lambda r: f"{r['duplicates']} / {r['duplicate_messages']}",
        ),
        (
            "portal trigger timeouts / runs the reconciler started / reports with a second run",
            lambda r: (
                f"{r['trigger_timeouts']} / {r.get('reconciler_starts', '–')} / "
                f"{r['phases']['reports_with_restarts']}"
            ),
        ),
        ("HTTP 503 from the Prefect server", lambda r: str(r["http_503"])),
        (
            "peak RSS / PSS, Orosflow processes",
            lambda r: (
                f"{r['peak_rss'].get('orosflow', 0) / mib:.0f} / "
                f"{r['peak_pss'].get('orosflow', 0) / mib:.0f} MiB"
            ),
        ),
        (
            "peak RSS / PSS, Prefect server",
            lambda r: (
                f"{r['peak_rss'].get('prefect-server', 0) / mib:.0f} / "
                f"{r['peak_pss'].get('prefect-server', 0) / mib:.0f} MiB"
            ),
        ),
        ("flow runs at once (peak)", lambda r: str(r["peak_runs"])),
        (
            "one at a time before the load (10 reports): time-to-notify p50",
            lambda r: _secs(r["calibration"]["notify"][0]) if "calibration" in r else "–",
        ),
        (
            "  CPU per report, one at a time (largest parts)",
            lambda r: cpu_of(r["calibration"]["cpu_per_report"]) if "calibration" in r else "–",
        ),
        ("CPU-s/s over load and drain (largest parts)", rates),
        (
            "  a flow run's process: user / system CPU",
            lambda r: (
                f"{r['flow_run_detail'].get('user', 0) * 1000:.0f} / "
                f"{r['flow_run_detail'].get('system', 0) * 1000:.0f} ms"
            ),
        ),
        (
            "CPU-s/s: idle work / other jobs; machine busy",
            lambda r: (
                f"{r['cpu_idle_rate']:.2f} / {r['cpu_others_rate']:.2f}; "
                f"{r['machine_busy'] * 100:.0f} %"
            ),
        ),
        (
            "reports/s the CPU allows at the one-at-a-time cost (see below)",
            lambda r: f"{r['cpu_ceiling']:.1f}",
        ),
        ("verdict", _verdict_cell),
    ]
    return [[label, *(cell(r) for r in runs)] for label, cell in rows]


def _shares(r: dict) -> str:
    """Who had the cores, for a run whose mails fell behind (``benchmarks.sustained.shares``)."""
    if r.get("kept_up", True) or "cpu_rate" not in r:
        return ""
    from benchmarks.sustained import shares

    return shares(r)


def sustained_section(runs: list[dict]) -> list[str]:
    """The page's sustained-load section, with its data comment."""
    import json

    if not runs:
        return []
    table = render_table(["", *(_run_title(r) for r in runs)], sustained_rows(runs))
    out = [
        SUSTAINED_BEGIN,
        SUSTAINED_HEADING,
        "",
        "Issue 13, item 5: at least 5 reports/s for 10 minutes on PostgreSQL (app and Prefect), "
        "0 lost and 0 duplicates. `make bench-sustained` (`python -m benchmarks.sustained`); "
        "`BENCH_SUSTAINED=1 make bench` runs it after the sections above. Each column is one "
        "run; a new run replaces the column of the same set-up, rate and duration.",
        "",
        table,
        "",
        "What bounds each run:",
        "",
        *(f"- {_run_title(r)}: {r['bound']}{_shares(r)}." for r in runs),
        "",
        "How it is measured:",
        "",
        SUSTAINED_METHOD.rstrip(),
        "",
        f"{SUSTAINED_DATA}{json.dumps(runs, separators=(',', ':'))} -->",
        SUSTAINED_END,
    ]
    return out


def replace_sustained(text: str, runs: list[dict]) -> str:
    """``text`` (the page) with its sustained section replaced by ``runs``' (or appended)."""
    section = "\n".join(sustained_section(runs))
    if SUSTAINED_BEGIN in text and SUSTAINED_END in text:
        start, end = text.index(SUSTAINED_BEGIN), text.index(SUSTAINED_END) + len(SUSTAINED_END)
        return text[:start] + section + text[end:]
    return text.rstrip("\n") + "\n\n" + section + "\n"


def update_sustained(new: list[dict]) -> None:
    """Put ``new`` runs into docs/benchmarks.md, keeping the other sections and runs."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    DOC.write_text(replace_sustained(text, merge_runs(sustained_runs(text), new)), encoding="utf-8")
