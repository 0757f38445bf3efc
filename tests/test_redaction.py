"""The log filter masks personal data in every record, whichever logger prints it."""

from __future__ import annotations

import logging

import pytest

from orosflow.core import redaction


@pytest.fixture(autouse=True)
def installed() -> None:
    redaction.install()


def test_registered_values_personnummer_and_email_are_masked(caplog) -> None:
    redaction.register_sensitive(["Zelmira Quistgaard", "Hemligvägen 77B"])
    log = logging.getLogger("some.library.future_change")
    with caplog.at_level(logging.INFO):
        log.info(
            "child %s at %s, pnr %s, mail %s",
            "Zelmira Quistgaard",
            "Hemligvägen 77B",
            "120315-1236",
            "kim@example.se",
        )
        log.info("12-digit 201203151236 and reference OA-2026-000123 stays")
    text = caplog.text
    for secret in ("Zelmira", "Hemligvägen", "120315-1236", "201203151236", "kim@example.se"):
        assert secret not in text
    assert text.count(redaction.MASK) == 5
    assert "OA-2026-000123" in text


def test_exception_text_is_masked(caplog) -> None:
    redaction.register_sensitive(["Ottilia Quistgaard"])
    with caplog.at_level(logging.ERROR):
        try:
            raise ValueError("bad child Ottilia Quistgaard")
        except ValueError:
            logging.getLogger("orosflow.x").exception("failed")
    assert "Ottilia" not in caplog.text
    assert "ValueError" in caplog.text


def test_install_is_idempotent() -> None:
    factory = logging.getLogRecordFactory()
    redaction.install()
    assert logging.getLogRecordFactory() is factory


def _masked(text: str) -> str:
    return redaction.redact(text)


def test_overlapping_values_mask_the_longest_and_every_line_of_a_multiline_value() -> None:
    redaction.register_sensitive(["Quistbergsgatan 12", "Quistbergsgatan", "rad ett\nrad två"])
    assert _masked("på Quistbergsgatan 12B") == f"på {redaction.MASK}B"
    assert _masked("Quistbergsgatanx") == f"{redaction.MASK}x"
    assert _masked("sa: rad två") == f"sa: {redaction.MASK}"
    assert _masked("abc") == "abc"  # shorter than any value


async def test_value_registered_in_a_scope_is_masked_in_that_scope_whatever_else_comes(
    caplog, monkeypatch
) -> None:
    """A flow run's values stay masked in its own log lines — in its tasks, in worker threads —
    however many other values are registered meanwhile (here past a cap of 50)."""
    import asyncio

    monkeypatch.setattr(redaction, "_MAX_VALUES", 50)
    log = logging.getLogger("orosflow.flowrun")

    def read_in_thread() -> None:  # what handovers.* does under asyncio.to_thread
        redaction.register_sensitive(["Ingeborg Scopesson"])

    with redaction.scope():
        await asyncio.to_thread(read_in_thread)
        for n in range(200):  # other reports read outside this scope push the recent list
            redaction.register_sensitive([f"Annan Person {n:04d}"])
        with caplog.at_level(logging.INFO):
            await asyncio.create_task(asyncio.to_thread(log.info, "Ingeborg Scopesson routed"))
            log.info("child Ingeborg Scopesson notified")
    assert "Ingeborg" not in caplog.text
    assert caplog.text.count(redaction.MASK) == 2
    assert redaction.held_count() <= 50 + 1


def test_values_of_finished_scopes_stay_masked_until_newer_ones_push_them_out(
    monkeypatch,
) -> None:
    monkeypatch.setattr(redaction, "_MAX_VALUES", 100)
    with redaction.scope():
        redaction.register_sensitive(["Valborg Avslutad"])
    assert _masked("Valborg Avslutad") == redaction.MASK  # still masked everywhere after
    for n in range(150):
        with redaction.scope():
            redaction.register_sensitive([f"Senare Rapport {n:04d}"])
    assert redaction.held_count() <= 100
    assert _masked("Senare Rapport 0149") == redaction.MASK
    assert _masked("Valborg Avslutad") == "Valborg Avslutad"  # memory is bounded


def test_twenty_thousand_values_from_finished_scopes_are_held_bounded_and_still_masked() -> None:
    """What a long-lived worker reaches after ~2,000 reports (cost: benchmarks/redaction.py)."""
    for n in range(2_000):
        with redaction.scope():
            redaction.register_sensitive(
                [f"Barn{n} Efternamnsson", f"Gatan {n}, 118 00 Stockholm", f"070-{n:04d} 00 00"]
            )
    assert 6_000 <= redaction.held_count() <= redaction._MAX_VALUES
    line = "child Barn1999 Efternamnsson at Gatan 1999, 118 00 Stockholm, OA-2026-000123"
    assert _masked(line) == f"child {redaction.MASK} at {redaction.MASK}, OA-2026-000123"


def test_trie_masks_exactly_what_one_alternation_over_all_values_would() -> None:
    """The matcher against the obvious (slow) reference, on values that share prefixes."""
    import random
    import re

    rng = random.Random(7)
    alphabet = "abAB 12-ö"

    def word(lo: int, hi: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))

    for _ in range(40):
        trie = redaction._Trie()
        values = sorted({word(4, 18) for _ in range(rng.randint(1, 150))}, key=len, reverse=True)
        for v in values:
            trie.add(v)
        for v in values[::3]:  # removal keeps it exact too
            trie.remove(v)
        kept = [v for i, v in enumerate(values) if i % 3]
        ref = re.compile("|".join(map(re.escape, kept))) if kept else None
        for _ in range(40):
            text = "".join(rng.choice([word(0, 5), rng.choice(values)]) for _ in range(6))
            expected = ref.sub(redaction.MASK, text) if ref else text
            assert trie.mask(text) == expected, text


def test_a_logged_address_keeps_references_and_route_words_and_masks_everything_else() -> None:
    """What a person typed into an address may be a personnummer, a samordningsnummer or a
    name in any shape the personnummer pattern does not catch."""
    redaction.register_path_words(["inbox", "intake", "reports", "print", "status", "open"])
    ref, uid = "OA-2026-000123", "0b8f2c1e-1d2a-4c3b-9a8e-7f6d5c4b3a21"
    cases = {
        "/api/v1/inbox/20130407-1234": "/api/v1/inbox/[skyddat]",
        "/api/v1/inbox/130467-1234": "/api/v1/inbox/[skyddat]",  # samordningsnummer
        "/api/v1/inbox/2013040712345678": "/api/v1/inbox/[skyddat]",
        "/intake/reports/Anna%20Andersson/print": "/intake/reports/[skyddat]/print",
        f"/intake/reports/{ref}/print": f"/intake/reports/{ref}/print",
        f"/api/v1/inbox/{uid}": f"/api/v1/inbox/{uid}",
        "/intake?status=open&barn=2": "/intake?status=open&[skyddat]=2",
        "/intake?status=130407-1234": "/intake?status=[skyddat]",
        "/nowhere/inbox": "/[skyddat]/inbox",
    }
    for path, logged in cases.items():
        assert redaction.redact_path(path) == logged


def test_uvicorns_own_access_formatter_still_gets_its_arguments_masked() -> None:
    """Run as ``uvicorn --factory orosflow.portal.app:app`` (access log on), uvicorn's access
    formatter unpacks ``record.args``: flattening them to ``None`` made every request a
    "--- Logging error ---"."""
    from uvicorn.logging import AccessFormatter

    redaction.register_path_words(["inbox", "status"])
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/inbox/20130407-1234?status=kim@example.se", "1.1", 404),
        None,
    )
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
    line = formatter.format(record)
    masked = "/api/v1/inbox/[skyddat]?status=[skyddat]"
    assert line == f'127.0.0.1:5000 - "GET {masked} HTTP/1.1" 404 Not Found'
