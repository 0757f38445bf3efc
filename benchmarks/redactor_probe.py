"""How the log redactor's cost grows with the number of reports a process has read.

``orosflow.redaction.register_sensitive`` rebuilds one regular expression over every sensitive
value seen so far (up to 20,000) whenever a report brings new ones, and every log line is
matched against it. Run in its own interpreter (``python -m benchmarks.redactor_probe``) so the
registry it fills never touches the other measurements; prints one JSON object.
"""

from __future__ import annotations

import json
import time

SIZES = (1_000, 5_000, 20_000)


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


def main() -> None:
    from orosflow import redaction

    out: dict[str, dict[str, float]] = {}
    filled = 0
    for size in SIZES:
        fill: list[str] = []
        while filled + len(fill) < size - 10:
            fill += report_values(100_000 + filled + len(fill))
        redaction.register_sensitive(fill)
        filled += len(fill)
        started = time.perf_counter()
        redaction.register_sensitive(report_values(filled))  # one more report arrives
        register = time.perf_counter() - started
        filled += 10
        line = "handover 7d1c0f2e-5a8b-4c7e-9f1d-2b3c4d5e6f70 notified (OA-2026-000123)"
        started = time.perf_counter()
        for _ in range(20):
            redaction.redact(line)
        out[str(size)] = {
            "register_s": register,
            "redact_line_s": (time.perf_counter() - started) / 20,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
