"""The lifecycle subcommands, through an argparse parser built by ``register`` (in process)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator

import pytest
from helpers_lifecycle import Clock, frozen_clock, hand_over, local, submit_report

from orosflow.cli.handover import register
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover.lifecycle import outbox


@pytest.fixture
def clock() -> Iterator[Clock]:
    with frozen_clock(local(2026, 11, 23, 10, 0)) as c:
        yield c


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, object, str]:
    parser = argparse.ArgumentParser(prog="orosflow")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_cli_confirm_status_feedback(
    sqlite_db: str, smtp: MailCapture, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = submit_report(clock)
    asyncio.run(hand_over(ref))  # the CLI runs its own event loop, so this test is sync
    code, out, err = run(
        ["handover", "confirm", ref, "--unit", "sdf-sodermalm", "--by", "Eva"], capsys
    )
    assert code == 0 and out["changed"] and "bekräftat" in err
    code, out, err = run(
        ["handover", "confirm", ref, "--unit", "sdf-sodermalm", "--by", "Eva"], capsys
    )
    assert code == 0 and not out["changed"] and "redan bekräftat" in err

    code, out, err = run(["status", ref], capsys)
    assert code == 0 and out["state"] == "handed_over" and "överlämnad" in err

    code, out, err = run(
        ["handover", "confirm", "OA-2026-999999", "--unit", "x", "--by", "E"], capsys
    )
    assert code == 2 and out[0]["code"] == "report_not_found" and "Det finns ingen anmälan" in err

    with pytest.raises(SystemExit) as exc:
        run(
            ["feedback", ref, "--unit", "sdf-sodermalm", "--outcome", "kanske", "--by", "E"], capsys
        )
    assert exc.value.code == 2

    argv = ["feedback", ref, "--unit", "sdf-sodermalm", "--outcome", "not_opened", "--by", "Eva"]
    code, out, err = run(argv, capsys)
    assert code == 0 and "kuratorn får besked" in err
    # Flow runs are off here (no Prefect server): the notice waits in the outbox, and the
    # CLI says so; tests/test_delivery_at_once.py shows the run delivering it.
    assert out["delivery"] == {"flow_runs": []} and "ligger kvar" in err
    [queued] = outbox.pending_mails()
    assert queued.endswith(".feedback-1")
    # Another outcome is a correction: refused without --correct, audited with it.
    other = ["feedback", ref, "--unit", "sdf-sodermalm", "--outcome", "opened", "--by", "Eva"]
    code, out, err = run(other, capsys)
    assert code != 0 and "Rätta återkopplingen" in err
    code, out, err = run([*other, "--correct"], capsys)
    assert code == 0 and out["changed"] and out["details"]["corrected"] and "rättad" in err

    argv = ["handover", "phone", ref, "--answered-by", "Sam", "--at", "2026-11-23T10:05"]
    code, out, err = run([*argv, "--by", "Kim"], capsys)
    assert code == 0 and out["changed"]
    code, out, _ = run(["status", ref], capsys)
    assert out["phone"]["recorded"][0]["called_at"] == "2026-11-23T10:05:00+01:00"
