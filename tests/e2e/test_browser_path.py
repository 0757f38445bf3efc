"""The whole path in real headless Chromium against a real ``orosflow serve``:

a counselor signs in, fills the concern form with a mistake, sees the error, corrects it and
gets a receipt; the notification reaches the SMTP capture through a real Prefect flow run; the
intake officer signs in, opens the report, confirms it, downloads its PDF and records
feedback (shown in words); the auditor sees the whole chain.
Screenshots of the form, the inbox and the audit view are saved on the way.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from factories import pnr
from support import pdf_text

CHILD_NAME = "Elvira Webbsson"
CHILD_PNR = pnr(date(2012, 3, 15), serial="234")
OBSERVATIONS = "Webbtest: eleven berättar att hon inte vågar gå hem efter skolan."
MARKING = "Sekretess enligt 26 kap. 1 § offentlighets- och sekretesslagen (2009:400)"
REFERENCE = re.compile(r"OA-\d{4}-\d{6}")


def _click_and_load(page: Any, selector: str) -> None:
    """Click something that posts a form, and wait for the page that comes back."""
    with page.expect_navigation():
        page.click(selector)


def _login(page: Any, url: str, account: dict[str, Any]) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", account["username"])
    page.fill("#password", account["password"])
    _click_and_load(page, "main button[type=submit]")
    assert "/login" not in page.url, page.content()[:2000]


def _fill_form(page: Any, personal_number: str) -> None:
    page.fill("#children-0-name", CHILD_NAME)
    page.fill("#children-0-personal_number", personal_number)
    page.select_option("#children-0-municipality", "0180")
    page.select_option("#children-0-district", "sdf-sodermalm")
    page.check("#concern-categories-neglect")
    page.fill("#concern-observations", OBSERVATIONS)
    page.check("#urgency-not_acute")
    page.check("#child_told-yes")
    page.fill("#reporter-title", "Kurator")
    page.fill("#reporter-phone", "08-000 00 01")
    page.fill("#clinic-name", "Ungdomsmottagningen Webbtest")
    page.select_option("#clinic-municipality", "0180")


def test_counselor_to_intake_to_auditor_in_chromium(
    embedded: Any, browser: Any, screenshots: Path
) -> None:
    url = embedded.url
    phone = {"viewport": {"width": 390, "height": 844}}

    # --- the counselor: a mistake, the error summary, the correction, the receipt -------------
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    page = ctx.new_page()
    _login(page, url, embedded.accounts["counselor"])
    page.goto(f"{url}/reports/new")
    _fill_form(page, "120315-0000")  # wrong check digit
    _click_and_load(page, "#submit-report")
    summary = page.locator("#error-summary")
    assert summary.is_visible(), page.inner_text("main")[:3000]
    link = summary.locator('a[href="#children-0-personal_number"]')
    assert link.count() == 1
    link.click()  # the summary takes the keyboard user to the field
    assert page.evaluate("document.activeElement.id") == "children-0-personal_number" or (
        page.url.endswith("#children-0-personal_number")
    )
    assert page.input_value("#children-0-name") == CHILD_NAME  # nothing typed is lost
    page.screenshot(path=str(screenshots / "formular-fel.png"), full_page=True)

    page.fill("#children-0-personal_number", CHILD_PNR)
    _click_and_load(page, "#submit-report")
    page.wait_for_url(re.compile(r".*/my/receipts/.*"))
    receipt = page.inner_text("main")
    match = REFERENCE.search(receipt)
    assert match, receipt[:1000]
    reference = match.group(0)
    page.screenshot(path=str(screenshots / "kvitto.png"), full_page=True)

    page.goto(f"{url}/my/reports")
    assert reference in page.inner_text("main")
    ctx.close()

    # --- the notification arrives by e-mail through a real Prefect flow run -------------------
    mail = embedded.wait_for_mail(reference)
    text = mail.read_text(encoding="utf-8", errors="replace")
    assert CHILD_NAME not in text and CHILD_PNR.replace("-", "") not in text
    assert OBSERVATIONS not in text

    # --- the intake officer: inbox, open, confirm ---------------------------------------------
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    page = ctx.new_page()
    _login(page, url, embedded.accounts["intake"])
    page.goto(f"{url}/intake")
    inbox = page.inner_text("main")
    assert reference in inbox and CHILD_NAME not in inbox  # the list is metadata only
    page.screenshot(path=str(screenshots / "inkorg.png"), full_page=True)
    _click_and_load(page, f"a:text-is('{reference}')")
    page.wait_for_url(re.compile(rf".*/intake/reports/{reference}"))
    opened = page.inner_text("main")
    assert CHILD_NAME in opened and OBSERVATIONS in opened
    _click_and_load(page, "button:has-text('Bekräfta mottagandet')")
    assert "bekräftat" in page.inner_text("main").lower()
    with page.expect_download() as download:  # the PDF for the case file, by the page's link
        page.click("a:text-is('Ladda ner PDF')")
    assert download.value.suggested_filename == f"orosanmalan-{reference}.pdf"
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    for needle in (reference, CHILD_NAME, MARKING):
        assert needle in text, needle
    # Feedback: the outcome in words, its date and who recorded it; then only a correction.
    page.check("#outcome")  # the first choice: an investigation is opened
    _click_and_load(page, "button:has-text('Registrera återkoppling')")
    given = page.inner_text("#feedback")
    assert "Utredning inleds" in given, given
    assert embedded.accounts["intake"]["display_name"] in given and "user:" not in given
    assert page.locator("#feedback summary:has-text('Rätta återkopplingen')").count() == 1
    assert page.locator("button:has-text('Registrera återkoppling')").count() == 0
    ctx.close()

    # --- the auditor: the whole chain, no child data -----------------------------------------
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    page = ctx.new_page()
    _login(page, url, embedded.accounts["auditor"])
    page.goto(f"{url}/audit/reports/{reference}")
    chain = page.inner_text("main")
    assert "Kedjan är hel" in chain
    for needle in ("R-INTAKE", "user:mottagning", "user:kurator"):
        assert needle in chain, needle
    assert CHILD_NAME not in chain and OBSERVATIONS not in chain
    page.screenshot(path=str(screenshots / "granskning.png"), full_page=True)
    ctx.close()

    # --- the form is usable on a phone ---------------------------------------------------------
    ctx = browser.new_context(**phone, locale="sv-SE")
    page = ctx.new_page()
    _login(page, url, embedded.accounts["counselor"])
    page.goto(f"{url}/reports/new")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"form scrolls sideways on a phone ({width}px)"
    page.screenshot(path=str(screenshots / "formular-mobil.png"))
    ctx.close()
