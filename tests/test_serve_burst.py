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
