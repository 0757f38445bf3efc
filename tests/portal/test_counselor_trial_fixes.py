"""Issue 12, the counselor's side: one consistent receipt (what was sent, whether the call is
done), the phone step by name and time, "Mina anmälningar" in words, one text vocabulary, the
error summary taking the focus, phone-width lists, the remembered clinic details and the
journal note. Over real HTTP (the portal app, the test databases); the focus and the 390 px
layout are also checked in Chromium (tests/e2e/test_axe.py)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from test_counselor import CHILD_PNR, submit_form, valid_post

from models.accounts import UserAccount
from models.tables import Report
from orosflow.core.db import session_scope
from orosflow.core.legal import legal_references
from orosflow.core.settings import PROJECT_ROOT
from orosflow.core.smtp_capture import MailCapture

from factories import SECRET_CONCERN, SECRET_NAME, pnr
from portal_support import csrf_of, hand_over, login

STATUS_PAGES = ("/reports/new", "/my/reports")


@pytest.fixture(autouse=True)
def no_flow_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Prefect here: the background flow start does nothing."""

    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)


def _reference(receipt_path: str) -> str:
    with session_scope() as s:
        group = receipt_path.rsplit("/", 1)[-1]
        return s.exec(select(Report).where(Report.sibling_group_id == group)).one().reference


def _box(html: str, pattern: str) -> str:
    found = re.search(pattern, html, re.S)
    assert found, f"{pattern!r} not on the page"
    return found.group(0)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- item 5: one consistent receipt, the phone step done, my reports in words ------------------


def test_acute_receipt_then_the_call_registered_shows_done_with_time_and_unit(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    receipt_path = submit_form(portal, csrf, urgency="acute")
    reference = _reference(receipt_path)
    receipt = portal.get(receipt_path).text
    call = _text(_box(receipt, r'<section[^>]*id="call-now".*?</section>'))
    assert "Ring nu" in call and "Södermalms stadsdelsförvaltning" in call
    # No contradiction: nothing says "call first, written afterwards" beside "already sent".
    whole = _text(receipt)
    assert "ring först" not in whole and "skickas efteråt" not in whole
    assert "redan skickad" not in whole
    # The written report is not sent yet (no flow ran): the receipt says it will be.
    assert "Skickas till Södermalms stadsdelsförvaltning inom några minuter" in whole

    # The phone form preselects the unit that was to be called, not "Annan / vet inte".
    status = portal.get(f"/my/reports/{reference}").text
    assert re.search(r'<option value="sdf-sodermalm" selected>', status), "unit not preselected"
    assert "Telefonkontakt krävs" in _text(_box(status, r'id="phone-step".*?</p>'))
    mine = _text(portal.get("/my/reports").text)
    assert "Ring Södermalms stadsdelsförvaltning: ej registrerat än" in mine
    assert "Skickas till Södermalms stadsdelsförvaltning inom några minuter" in mine

    resp = portal.post(
        f"/my/reports/{reference}/phone",
        data={
            "csrf_token": csrf,
            "phone-answered_by": "Eva Ek, mottagningssekreterare",
            "phone-called_date": "2026-11-23",
            "phone-called_time": "09:55",
            "phone-unit_id": "sdf-sodermalm",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:1000]

    status = portal.get(f"/my/reports/{reference}").text
    step = _text(_box(status, r'<h2 id="phone">.*?</ul>'))
    assert "Klart" in step and "telefonkontakten är registrerad" in step
    assert "2026-11-23 09:55" in step and "Södermalms stadsdelsförvaltning" in step
    assert "(sdf-sodermalm)" not in step and "Telefonkontakt krävs" not in step
    handovers = _text(_box(status, r'<table id="handovers">.*?</table>'))
    assert "Samtal registrerat 2026-11-23 09:55" in handovers
    assert "Telefonkontakt krävs" not in handovers

    receipt = portal.get(receipt_path).text
    done = _text(_box(receipt, r'<section[^>]*id="call-now".*?</section>'))
    assert "Telefonsamtalet är registrerat" in done and "Ring nu" not in done
    assert "Södermalms stadsdelsförvaltning" in done and "2026-11-23 09:55" in done

    row = _text(
        _box(portal.get("/my/reports").text, rf"<tr>\s*<td[^>]*><a[^>]*>{reference}.*?</tr>")
    )
    assert "Samtal registrerat 2026-11-23 09:55 med Södermalms stadsdelsförvaltning" in row
    assert "ej registrerat" not in row


async def test_receipt_says_sent_with_the_time_once_the_unit_was_notified(
    portal: TestClient, smtp: MailCapture, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    receipt_path = submit_form(portal, csrf)
    reference = _reference(receipt_path)
    await hand_over(reference)
    whole = _text(portal.get(receipt_path).text)
    assert "Anmälan gjordes 2026-11-23 10:00" in whole  # past tense, the time it was made
    assert re.search(r"Skickades till Södermalms stadsdelsförvaltning 2026-11-23 \d\d:\d\d", whole)
    assert "inom några minuter" not in whole
    row = _text(
        _box(portal.get("/my/reports").text, rf"<tr>\s*<td[^>]*><a[^>]*>{reference}.*?</tr>")
    )
    assert "Skickad till Södermalms stadsdelsförvaltning – väntar på bekräftelse" in row
    assert "Telefonsamtal krävs inte" in row
    assert "dirigerad" not in row


# --- item 6: text --------------------------------------------------------------------------


def test_counselor_pages_carry_no_unverified_disclaimers(
    portal: TestClient, office_hours: None
) -> None:
    assert any(not r.verified for r in legal_references().values()), "nothing to hide"
    csrf = login(portal, "kim.kurator")
    receipt_path = submit_form(portal, csrf, urgency="acute")
    reference = _reference(receipt_path)
    for path in (*STATUS_PAGES, receipt_path, f"/my/reports/{reference}"):
        page = _text(portal.get(path).text)
        assert "verifierad" not in page and "verifierat" not in page, path


def test_form_errors_speak_one_vocabulary_and_the_clinic_municipality_as_its_list(
    portal: TestClient,
) -> None:
    csrf = login(portal, "kim.kurator")
    resp = portal.post(
        "/reports/new",
        data={
            "csrf_token": csrf,
            "action": "submit",
            "children-count": "1",
            "guardians-count": "1",
            "guardians-0-name": "Förälder",
            "reporter-name": "",
            "reporter-title": "",
            "reporter-phone": "",
            "clinic-municipality": "",
        },
    )
    assert resp.status_code == 400
    summary = _box(resp.text, r'<div class="error-summary".*?</div>')
    messages = [_text(m) for m in re.findall(r"<a [^>]*>(.*?)</a>", summary, re.S)]
    assert messages
    for m in messages:
        said = m.split(": ", 1)[1] if ": " in m else m
        assert said.startswith(("Fyll i", "Välj")), m
    assert any(m.endswith("Välj minst en kategori.") for m in messages)
    assert "Mottagningens kommun: Välj mottagningens kommun i listan." in messages
    for old in ("Uppgiften saknas", "Fältet får inte vara tomt", "Minst 1 måste", "fyra siffror"):
        assert old not in summary, old
    # After a failed submit the summary takes the focus (no JavaScript needed).
    assert re.search(r'<div class="error-summary"[^>]*tabindex="-1"[^>]*autofocus', resp.text)


def test_the_18_plus_message_is_two_sentences_with_a_link_to_more(portal: TestClient) -> None:
    csrf = login(portal, "kim.kurator")
    resp = portal.post(
        "/reports/new",
        data=valid_post(csrf, **{"children-0-personal_number": pnr(date(2007, 1, 1))}),
    )
    assert resp.status_code == 400, resp.text[:500]
    inline = _box(
        resp.text, r'<p class="field-error" id="children-0-personal_number-error">.*?</p>'
    )
    said = _text(inline).removeprefix("Fel: ")
    sentences = [x for x in re.split(r"(?<=\.)\s", said.split(" Mer om")[0]) if x.strip()]
    assert len(sentences) == 2, sentences
    assert 'href="#age-guidance"' in inline
    assert 'id="age-guidance"' in resp.text and "LVU" in resp.text  # the full text, linked


def test_one_urgency_label_everywhere_and_no_doubled_chain_word() -> None:
    roots = [PROJECT_ROOT / "templates", PROJECT_ROOT / "orosflow"]
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.suffix in {".py", ".html", ".j2"}:
                text = path.read_text(encoding="utf-8")
                if re.search(r"Ej akut|\"inte akut\"|JA – akut", text):
                    found.append(str(path.relative_to(PROJECT_ROOT)))
    assert not found, found
    from orosflow.views.auditor.labels import URGENCY_LABELS as AUDIT
    from orosflow.views.intake import URGENCY_LABELS as INTAKE

    assert AUDIT == INTAKE == {"acute": "Akut", "not_acute": "Inte akut"}
    chain = (PROJECT_ROOT / "templates/portal/auditor/report.html").read_text(encoding="utf-8")
    assert 'badge("ok", "Hel")' not in chain


def _hard_breaks(path: Path) -> list[str]:
    """Lines of running text that end mid-sentence while the next line carries on."""
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = []
    for line, following in zip(lines, lines[1:], strict=False):
        text, nxt = line.rstrip(), following.strip()
        if not text or not nxt or nxt.startswith(("{%", "--", "{{ report_url")):
            continue
        if text.endswith((".", ":", "!", "?", "%}", "}}")) or re.match(r"^\S[^:]*:\s{2,}", text):
            continue
        if text.startswith(("Till ", "Hej", "Orosflow ·")) or text == "--":  # signature
            continue
        bad.append(f"{path.name}: {text!r} / {nxt!r}")
    return bad


def test_plain_text_mails_have_no_hard_line_breaks_mid_sentence() -> None:
    bad = [
        b
        for p in sorted((PROJECT_ROOT / "templates/email").glob("*.txt.j2"))
        for b in _hard_breaks(p)
    ]
    assert not bad, "\n".join(bad)


# --- item 7: phone-width lists, the optional guardian block ---------------------------------


def test_lists_are_cards_on_a_phone_and_dates_do_not_wrap(
    portal: TestClient, office_hours: None
) -> None:
    css = (PROJECT_ROOT / "orosflow/portal/static/portal.css").read_text(encoding="utf-8")
    assert re.search(r"\.date[^{]*\{[^}]*white-space: nowrap", css)
    assert re.search(r"@media \(max-width: 40rem\) \{\s*\.cards table", css)
    csrf = login(portal, "kim.kurator")
    submit_form(portal, csrf)
    mine = portal.get("/my/reports").text
    assert 'class="table-scroll cards"' in mine
    assert 'data-label="Status"' in mine and 'data-label="Tidsfrister"' in mine
    assert re.search(r'<td data-label="Anmälan gjordes" class="date">', mine)


def test_an_empty_guardian_block_is_clearly_optional_and_said_on_the_receipt(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    form = portal.get("/reports/new").text
    assert 'Vårdnadshavare <span class="optional">(frivilligt)</span>' in form
    assert "ett tomt block skickas inte med" in form
    blank = {f"guardians-0-{k}": "" for k in ("name", "relation", "phone", "informed")}
    receipt = _text(portal.get(submit_form(portal, csrf, **blank)).text)
    assert "vårdnadshavare informerade: inga vårdnadshavare angivna" in receipt


# --- item 8: remembered clinic details ------------------------------------------------------


def test_clinic_details_are_remembered_with_the_account_and_updated(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    first = portal.get("/reports/new").text
    assert "Sparas till nästa gång" in first
    assert re.search(r'id="clinic-name" name="clinic-name" value=""', first)

    submit_form(portal, csrf, **{"reporter-title": "Skolkurator", "reporter-phone": "08-111 22 33"})
    again = portal.get("/reports/new").text
    assert 'value="Ungdomsmottagningen Exempel"' in again
    assert 'value="Skolkurator"' in again and 'value="08-111 22 33"' in again
    assert re.search(r'<option value="0180"[^>]*selected', again)

    submit_form(
        portal,
        csrf,
        **{
            "clinic-name": "UMO Nacka",
            "clinic-municipality": "0182",
            "children-0-personal_number": "20120316-1235",
        },
    )
    with session_scope() as s:
        user = s.exec(select(UserAccount).where(UserAccount.username == "kim.kurator")).one()
        assert (user.clinic_name, user.clinic_municipality) == ("UMO Nacka", "0182")
        assert (user.work_title, user.work_phone) == ("Kurator", "08-000 00 01")
    assert 'value="UMO Nacka"' in portal.get("/reports/new").text


# --- item 11: the journal note ---------------------------------------------------------------


def test_receipt_offers_a_journal_note_with_only_what_the_counselor_entered(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    reason = "Oron gäller våld i hemmet enligt den unge."
    receipt_path = submit_form(
        portal,
        csrf,
        **{"guardians-0-informed": "no", "guardians-0-not_informed_reason": reason},
    )
    reference = _reference(receipt_path)
    page = portal.get(receipt_path).text
    area = _box(page, r"<textarea[^>]*class=\"journal-text\"[^>]*>.*?</textarea>")
    assert "readonly" in area.split(">", 1)[0]
    note = re.sub(r"<[^>]+>", "", area)
    assert note == (
        f"Orosanmälan gjord 2026-11-23 kl. 10:00 till Södermalms stadsdelsförvaltning, "
        f"referens {reference}; den unge informerad: ja; vårdnadshavare informerade: nej, "
        f"skäl: {reason}."
    )
    for secret in (SECRET_NAME, CHILD_PNR, SECRET_CONCERN, "Förälder Barnsson"):
        assert secret not in note
    # The copy button is progressive enhancement: hidden without JavaScript, a same-origin file.
    assert re.search(r'<button type="button" class="button secondary copy-button"[^>]*hidden', page)
    assert '<script src="/static/copy.js" defer></script>' in page
    assert portal.get("/static/copy.js").status_code == 200
    assert csrf_of(page)
