"""The log redactor's cost against the number of distinct reports a process has read.

Fills ``orosflow.core.redaction`` the way a long-lived worker does — each report's values registered
inside its own finished scope (one flow run) — to 1,000, 5,000 and 20,000 values, and at each
size times one more report's registration, a log line without personal data, a log line that
carries some (through a real logger, so the record factory runs), and the same figures for the
previous implementation (one regular expression over every value, recompiled on each new
report) for comparison.

Run in its own interpreter, since it fills a process-wide registry:
``uv run python -m benchmarks.redaction`` prints a table; ``--json`` prints one JSON object
(what ``make bench`` reads).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import OrderedDict

SIZES = (1_000, 5_000, 20_000)
CLEAN = "handover 7d1c0f2e-5a8b-4c7e-9f1d-2b3c4d5e6f70 notified (OA-2026-000123)"
REPEAT = 200


def report_values(n: int) -> list[str]:
    """About what one report registers: names, personnummer forms, address, phone, texts."""
    return [
        f"Förnamn{n} Efternamnsson",
        f"2012031{n % 10}{n:04d}"[:12],
        f"12031{n % 10}-{n % 10000:04d}",
        f"Exempelvägen {n}, 118 00 Stockholm",
        f"Skolan nummer {n}",
        f"Vårdnadshavare {n} Efternamnsson",
        f"070-{n:03d} 00 00",
        f"Observation om barn {n}: saknar mat hemma och har stor skolfrånvaro.",
        f"Barnet {n} sa: det finns ingen hemma på kvällarna.",
        f"Barnets syn {n}: vill ha hjälp men är oroligt.",
    ]


def pii_line(n: int) -> str:
    v = report_values(n)
    return f"child {v[0]} at {v[3]} said {v[8]!r} (report OA-2026-000123)"


class Legacy:
    """The implementation this replaced: one alternation over all values, rebuilt per change."""

    def __init__(self) -> None:
        self.values: OrderedDict[str, None] = OrderedDict()
        self.pattern: re.Pattern[str] | None = None

    def register(self, values: list[str]) -> None:
        for v in values:
            self.values[v] = None
        while len(self.values) > 20_000:
            self.values.popitem(last=False)
        ordered = sorted(self.values, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def redact(self, text: str) -> str:
        assert self.pattern is not None
        return self.pattern.sub("[skyddat]", text)


def _per_call(fn, repeat: int = REPEAT) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def measure(legacy: bool = True) -> dict[str, dict[str, float]]:
    from orosflow.core import redaction

    redaction.install()
    log = logging.getLogger("benchmarks.redaction")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    log.setLevel(logging.INFO)
    old = Legacy()
    out: dict[str, dict[str, float]] = {}
    n = 0
    for size in SIZES:
        bulk: list[str] = []
        while redaction.held_count() < size - 10:
            with redaction.scope():  # one finished flow run per report
                redaction.register_sensitive(report_values(100_000 + n))
            bulk += report_values(100_000 + n)
            n += 1
        if legacy:
            old.register(bulk)
        n += 1
        with redaction.scope():  # one more report arrives in a flow run, which logs
            started = time.perf_counter()
            redaction.register_sensitive(report_values(100_000 + n))
            register = time.perf_counter() - started
            line = pii_line(100_000 + n)
            assert "Förnamn" not in redaction.redact(line)
            row = {
                "held": float(redaction.held_count()),
                "register_s": register,
                "redact_line_s": _per_call(lambda: redaction.redact(CLEAN)),
                "redact_pii_line_s": _per_call(lambda line=line: redaction.redact(line)),
                "log_line_s": _per_call(lambda: log.info("report %s routed", CLEAN)),
            }
        if legacy:
            started = time.perf_counter()
            old.register(report_values(100_000 + n))
            row["legacy_register_s"] = time.perf_counter() - started
            row["legacy_redact_line_s"] = _per_call(lambda: old.redact(CLEAN), 20)
        out[str(size)] = row
    return out


def _us(seconds: float) -> str:
    value = seconds * 1e6
    return f"{value / 1000:.1f} ms" if value >= 1000 else f"{value:.0f} µs"


def main() -> None:
    result = measure()
    if "--json" in sys.argv:
        print(json.dumps(result))
        return
    print(
        f"{'values held':>12} | {'register 1 report':>17} | {'clean line':>10} | "
        f"{'line with PII':>13} | {'log.info':>9} || {'before: register':>16} | "
        f"{'before: line':>12}"
    )
    for row in result.values():
        print(
            f"{int(row['held']):>12,} | {_us(row['register_s']):>17} | "
            f"{_us(row['redact_line_s']):>10} | {_us(row['redact_pii_line_s']):>13} | "
            f"{_us(row['log_line_s']):>9} || {_us(row['legacy_register_s']):>16} | "
            f"{_us(row['legacy_redact_line_s']):>12}"
        )


if __name__ == "__main__":
    main()
