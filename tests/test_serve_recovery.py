"""Fault test on the real embedded set-up (`orosflow serve`, what `make serve` runs):
Prefect is down, 10 reports are submitted and get receipts at once; Orosflow starts, its
reconciler creates the missing flow runs, and every report is notified exactly once."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from factories import child, form, pnr
from support import free_port


def test_reports_submitted_while_prefect_is_down_are_notified_once(tmp_path: Path) -> None:
    t0 = time.monotonic()
    prefect_port, smtp_port = free_port(), free_port()
    env = {
        "OROSFLOW_VAR_DIR": str(tmp_path / "var"),
        "OROSFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'orosflow.db'}",
        "OROSFLOW_SMTP_HOST": "127.0.0.1",
        "OROSFLOW_SMTP_PORT": str(smtp_port),
        "OROSFLOW_PREFECT_PORT": str(prefect_port),
        "OROSFLOW_PORTAL_PORT": str(free_port()),
        "OROSFLOW_TRIGGER_TIMEOUT": "3",
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_HOME": str(tmp_path / "var" / "prefect"),
    }
    # Ten counselors submit at the same moment while Prefect is down.
    procs = []
    for i in range(10):
        path = tmp_path / f"report-{i}.json"
        data = form(children=[child(personal_number=pnr(child_birth(i), serial=f"{100 + i}"))])
        path.write_text(json.dumps(data), encoding="utf-8")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "orosflow.cli.main", "submit", str(path)],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    references = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        receipt = json.loads(stdout)
        assert list(receipt["flow_runs"].values()) == [None]  # Prefect is down
        assert "Prefect kunde inte nås" in stderr
        references.append(receipt["reports"][0]["reference"])
    print(f"receipts after {time.monotonic() - t0:.1f} s", flush=True)
    assert len(set(references)) == 10

    t1 = time.monotonic()
    serve = subprocess.Popen(
        [sys.executable, "-m", "orosflow.cli.main", "serve"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    mail_dir = tmp_path / "var" / "mail"
    try:
        deadline = time.monotonic() + 480  # a loaded 2-core machine: ten runner subprocesses
        while time.monotonic() < deadline and len(list(mail_dir.glob("*.eml"))) < 10:
            assert serve.poll() is None, serve.stdout.read().decode()[-3000:]
            time.sleep(1)
        print(f"10 mails after {time.monotonic() - t1:.1f} s of serve", flush=True)
        time.sleep(5)  # anything extra would arrive now
        files = sorted(mail_dir.glob("*.eml"))
        msgs = [
            email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
        ]
        assert len(msgs) == 10
        assert sorted(m["X-Orosflow-Reference"] for m in msgs) == sorted(references)
        assert len({m["Message-ID"] for m in msgs}) == 10
    finally:
        os.killpg(serve.pid, signal.SIGINT)  # Ctrl-C
        try:
            output = serve.communicate(timeout=60)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            output = serve.communicate()[0].decode()
            raise AssertionError("serve did not stop on Ctrl-C:\n" + output[-3000:]) from None
    assert "Stänger av" in output


def child_birth(i: int):  # noqa: ANN201
    from datetime import date

    return date(2010, 1 + i, 10)
