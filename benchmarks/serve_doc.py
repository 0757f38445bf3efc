"""The serve section of docs/benchmarks.md (``make bench-serve`` with ``--doc``): the cases it
runs and the Markdown table of what ``benchmarks.serve_burst`` measured in each."""

from __future__ import annotations

from pathlib import Path

from benchmarks.serve_burst import PROBE_EVERY, ROOT, Case, mib, secs

#: What ``make bench`` runs: serve as it ships, serve as it was before issue 13 (a new Python
#: per flow run, no limit), and a burst of 200 as it ships.
DOC_CASES = [
    ("now: forked runs, at most 4 at once", {}, 5, 20),
    (
        "before: a new Python per run, no limit",
        {"OROSFLOW_FLOW_RUN_START": "spawn", "OROSFLOW_FLOW_RUN_LIMIT": "1000"},
        5,
        20,
    ),
    ("now: a burst of 200", {}, 0, 200),
]
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- serve-burst: begin -->", "<!-- serve-burst: end -->"


def section(cases: list[Case], load: str) -> str:
    """The Markdown section for docs/benchmarks.md."""

    def cell(case: Case, row: str) -> str:
        b = case.burst
        if row == "ready":
            return f"{case.ready_after:.0f} s"
        if row == "single":
            if not case.single:
                return "–"
            return f"{secs(case.single)} (max {max(case.single):.1f} s)"
        if row == "single_receipts":
            return secs(case.single_receipts)
        if b is None:
            return "–"
        return {
            "notified": f"{len(b.notify)} of {len(b.notify) + b.missing} receipted, all within "
            f"{b.drain:.1f} s",
            "notify": secs(b.notify),
            "receipts": secs(b.receipts),
            "probes": f"{secs(b.probe_receipts)} ({len(b.probe_receipts)} probes)",
            "answers": secs(b.probe_answers),
            "sweeps": "not known (Prefect did not answer)" if b.sweeps is None else str(b.sweeps),
            "503": str(b.http_503),
            "no_receipt": str(b.no_receipt),
            "memory": f"{mib(b.peak_rss)} / {mib(b.peak_pss)}",
            "runs": f"{b.peak_runs} (largest {mib(b.peak_run_rss)})",
        }[row]

    rows = [
        ("serve takes reports after", "ready"),
        ("one at a time: time-to-notify p50 / p95", "single"),
        ("one at a time: receipt p50 / p95 (HTTP)", "single_receipts"),
        ("burst at once: notified", "notified"),
        ("burst: time-to-notify p50 / p95", "notify"),
        ("burst: receipts of the burst itself p50 / p95", "receipts"),
        (f"burst: receipts while it drains, one every {PROBE_EVERY:.0f} s, p50 / p95", "probes"),
        ("burst: the same, as the portal's access log times them", "answers"),
        ("burst: escalation sweeps while it drained (each sends all queued mail)", "sweeps"),
        ("burst: HTTP 503 from the Prefect server", "503"),
        ("burst: submissions with no receipt within 60 s (portal starved)", "no_receipt"),
        ("burst: peak memory of serve and all it started, RSS / PSS", "memory"),
        ("burst: most flow-run processes at once", "runs"),
    ]
    head = ["", *(f"{c.title} (burst {c.burst_size})" if c.burst_size else c.title for c in cases)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key in rows:
        lines.append("| " + " | ".join([label, *(cell(c, key) for c in cases)]) + " |")
    return "\n".join(
        [
            BEGIN,
            "## Under `orosflow serve` (`make bench-serve`)",
            "",
            "The embedded default as a user meets it: `orosflow serve` on a fresh `var/` "
            "(Prefect server and app on SQLite), reports sent to `POST /api/v1/reports` with an "
            "API token, each about a different child (one child's form again and again would "
            "measure the duplicate guard, which makes them wait for each other by design); "
            "time-to-notify ends when the SMTP capture has stored the mail. RSS counts a page "
            "shared by forked runs once per process, PSS once in all. Load average at the "
            f"start: {load}.",
            "",
            *lines,
            END,
        ]
    )


def write_doc(text: str, doc: Path = DOC) -> None:
    """Put ``text`` in place of the section between the markers, or append it."""
    old = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    doc.write_text(new, encoding="utf-8")
