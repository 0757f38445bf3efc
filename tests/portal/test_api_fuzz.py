"""Schemathesis against the real app: the OpenAPI document served by a real uvicorn on loopback,
every operation called with the counselor's, the intake officer's and the auditor's bearer
token, generated (valid and invalid) input, and no answer may be a server error or a status the
document does not declare.

Bounded by count (``EXAMPLES`` per operation and role) and by time (``BUDGET_S`` for the whole
run); the number of cases is printed (``pytest -s``) so a run that generated little shows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from orosflow.identity import accounts

from portal_support import create_accounts, hand_over, submit_example
from support import free_port

#: Cases per run (operation, role, valid or invalid input, random or real reference): the first
#: pass runs in full, a token of another role gets one case per operation. Deeper passes (own
#: role only, new seeds) follow while the budget lasts, at most ``DEPTH_PASSES``; on a busy
#: machine the first pass alone may use the budget.
EXAMPLES = {"own": 3, "foreign": 1, "deeper": 10}
DEPTH_PASSES = 6
BUDGET_S = 45.0
CHECKS = [not_a_server_error, status_code_conformance]
ROLES = {"counselor": "kim.kurator", "intake": "sara.sodermalm", "audit": "anna.revisor"}


@pytest.fixture
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)


@pytest.fixture
def server(db: str, no_prefect: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The portal app in a real uvicorn on loopback (same process, so same test database)."""
    from orosflow.core.settings import reset_settings
    from orosflow.portal.app import create_app

    monkeypatch.setenv("OROSFLOW_TRIGGER_TIMEOUT", "0.5")
    reset_settings()
    accounts.address_throttle.reset()
    create_accounts()
    port = free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
async def reference(server: str, smtp: Any, office_hours: None) -> str:
    """A report notified to Södermalm (sara.sodermalm's unit), so path parameters can hit one."""
    ref = submit_example()
    await hand_over(ref)
    return ref


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_api_fuzz_no_server_errors_and_only_declared_statuses(server: str, reference: str) -> None:
    """A sweep over every operation, role and mode (valid and invalid input; random and real
    report references), then deeper passes with the token's own role while time is left."""
    schema = schemathesis.openapi.from_url(f"{server}/api/openapi.json")
    tokens = {
        tag: {"Authorization": f"Bearer {accounts.create_api_token(user, 'fuzz')}"}
        for tag, user in ROLES.items()
    }
    runs: list[tuple[Any, str, str, dict[str, str] | None]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        fixed = {"reference": reference} if "{reference}" in operation.path else None
        for tag in tokens:
            if tag != operation.tags[0]:  # another role: refused before the input is read
                runs.append((operation, tag, GenerationMode.POSITIVE, None))
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for path_parameters in (None, fixed) if fixed else (None,):
                    runs.append((operation, tag, mode, path_parameters))
    assert {op.tags[0] for op, *_ in runs} >= set(ROLES), "an area's API is missing"

    session = requests.Session()
    cases, passes, failures = 0, 0, []
    started = time.monotonic()
    for depth in range(DEPTH_PASSES + 1):
        for operation, tag, mode, path_parameters in runs:
            own = operation.tags[0] == tag
            if depth and not own:
                continue
            if time.monotonic() - started > BUDGET_S and depth:
                break
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            count = EXAMPLES["deeper" if depth else "own" if own else "foreign"]
            who = f"as {tag} ({mode.value}, pass {depth})"
            cases += _fuzz(strategy, count, depth, session, tokens[tag], who, failures)
        else:
            passes += 1
            continue
        break

    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {cases} cases ({len(runs)} operation/role/mode runs, "
        f"{passes} full passes) in {elapsed:.1f} s; {len(failures)} failures"
    )
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    assert cases >= len(runs), f"only {cases} cases ran"


def _fuzz(
    strategy: Any,
    count: int,
    seed: int,
    session: requests.Session,
    headers: dict[str, str],
    who: str,
    failures: list[str],
) -> int:
    """Run ``count`` generated cases through the real server; failures are collected."""
    ran = 0

    @hypothesis.seed(seed)
    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal ran
        ran += 1
        response = case.call(session=session, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # collected, reported together
            failures.append(
                f"{case.operation.label} {who}: {response.status_code} "
                f"{type(exc).__name__}: {str(exc)[:600]}"
            )

    run()
    return ran
