"""A burst larger than serve's flow-run limit (issue 13): ``orosflow serve`` with
``OROSFLOW_FLOW_RUN_LIMIT=2`` takes 6 reports at once through the API, and every report is
mailed exactly once (real SMTP capture) while no more than 2 flow-run processes are ever alive
(serve's process tree sampled from /proc while the burst drains).

The harness is the one ``benchmarks/serve_burst.py`` times; here nothing is timed."""

from __future__ import annotations

import email
import email.policy
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmarks.proc_tree import Sampler
from benchmarks.serve_burst import start_serve, stop_serve

pytestmark = pytest.mark.prefect_server

LIMIT, REPORTS = 2, 6


def test_a_burst_larger_than_the_limit_is_mailed_with_at_most_the_limit_running(
    tmp_path: Path,
) -> None:
    serve = start_serve(tmp_path, {"OROSFLOW_FLOW_RUN_LIMIT": str(LIMIT)})
    sampler = Sampler(serve.proc.pid, interval=0.2)
    try:
        with ThreadPoolExecutor(REPORTS) as pool:
            refs = {ref for ref, _, _ in pool.map(lambda _: serve.submit(), range(REPORTS))}
        assert len(refs) == REPORTS
        got = serve.wait_for_mails(refs, 900)  # a loaded 2-core machine: runs take a while
        time.sleep(3)  # a duplicate would arrive now
        peak_runs = sampler.peak_runs
    finally:
        sampler.stop()
        stop_serve(serve)
    assert set(got) == refs, f"not mailed: {sorted(refs - set(got))}"
    msgs = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in serve.mail_dir.glob("*.eml")
    ]
    per_ref = Counter(str(m["X-Orosflow-Reference"]) for m in msgs)
    assert per_ref == dict.fromkeys(refs, 1), per_ref  # exactly one mail each
    assert 1 <= peak_runs <= LIMIT, f"{peak_runs} flow-run processes at once"


def test_the_benchmark_names_the_probes_that_make_its_p95_and_when_they_were_sent() -> None:
    from benchmarks.serve_burst import Burst

    b = Burst(
        notify=[],
        receipts=[],
        probe_receipts=[0.020, 0.176, 0.015, 0.079, 0.087],
        missing=0,
        drain=0.0,
        peak_rss=0,
        peak_pss=0,
        peak_runs=0,
        peak_run_rss=0,
        http_503=0,
        probe_at=[2.0, 0.0, 4.0, 14.4, 0.1],
    )
    assert b.slowest_probes() == "176 ms at +0.0 s, 87 ms at +0.1 s, 79 ms at +14.4 s"


def test_repeated_bursts_pool_their_probes_into_one_p95() -> None:
    from benchmarks.serve_burst import Burst, Case, pooled_probes

    def case(probes: list[float]) -> Case:
        b = Burst([], [], probes, 0, 0.0, 0, 0, 0, 0, 0, probe_answers=probes)
        return Case("serve", {}, burst=b)

    # Alone, the one slow probe of the first burst is its p95; among 20 it is not.
    first = case([0.020] * 9 + [0.300])
    assert "300 ms" in pooled_probes([first])
    line = pooled_probes([first, case([0.020] * 10)])
    assert line.startswith("probes of 2 bursts pooled (20): p50 / p95 20 ms / 20 ms")
