"""axe-core in real headless Chromium on every page state of the three roles, at 1280 px and
390 px, against a real ``orosflow serve`` with its real Content-Security-Policy.

How axe gets in without weakening the CSP: the page is never given an inline script and the
context does not bypass CSP. Playwright answers requests for one same-origin path
(``AXE_PATH``, under the portal's own origin) with the vendored ``axe/axe.min.js``; a
``<script src>`` for that path is allowed by the production ``script-src 'self'``. Nothing in
the app serves it: outside this test that path is a 404. ``axe.run`` is then called over the
DevTools protocol (``page.evaluate``), which CSP does not govern. The test shows that the
header each page carried is the production one, byte for byte, and that an inline script is
still refused in the same pages.

A violation of impact serious or critical fails the test; the page states covered and the
violation counts per state are printed (``-s`` shows them; a failure lists them too).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from factories import pnr

AXE_FILE = Path(__file__).parent / "axe" / "axe.min.js"
#: axe-core 4.14.1 from the npm registry (tarball integrity sha512-FHfa+lmN…udVGtQ==);
#: see tests/e2e/axe/README.md for how to update it.
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
#: Same origin as the portal, so ``script-src 'self'`` allows it; served by the test only.
AXE_PATH = "/__e2e-only__/axe.min.js"
#: The production page policy, pinned here: the run must see exactly this header.
PRODUCTION_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
FAILING = ("serious", "critical")
WIDTHS = ((1280, 900), (390, 844))
REFERENCE = re.compile(r"OA-\d{4}-\d{6}")
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return {
    passed: result.passes.length,
    violations: result.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
    })),
  };
}"""


class AxeRun:
    """Runs axe on page states and keeps what it found, per state and width."""

    def __init__(self, browser: Any, url: str) -> None:
        self.browser, self.url = browser, url
        self.axe = AXE_FILE.read_bytes()
        self.rows: list[tuple[str, int, list[dict[str, Any]]]] = []
        self.passed: list[int] = []
        self.seconds = 0.0

    def context(self) -> Any:
        """A new browser context (own cookies) that answers AXE_PATH with the axe file."""
        ctx = self.browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
        ctx.route(
            f"{self.url}{AXE_PATH}",
            lambda route: route.fulfill(
                status=200, body=self.axe, content_type="application/javascript"
            ),
        )
        return ctx

    def check(self, page: Any, state: str) -> None:
        """axe at each width on the page as it is now (no reload: posted states stay)."""
        start = time.monotonic()
        _assert_inline_script_refused(page)
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(url=AXE_PATH)
        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            result = page.evaluate(RUN_AXE)
            self.rows.append((state, width, result["violations"]))
            self.passed.append(result["passed"])
        page.set_viewport_size({"width": 1280, "height": 900})
        self.seconds += time.monotonic() - start

    def report(self) -> str:
        lines = [f"axe-core på {len(self.rows)} sidtillstånd × bredd ({self.seconds:.1f} s axe):"]
        for (state, width, violations), passed in zip(self.rows, self.passed, strict=True):
            bad = [v for v in violations if v["impact"] in FAILING]
            counts = {i: sum(v["impact"] == i for v in violations) for i in FAILING}
            others = len(violations) - len(bad)
            lines.append(
                f"  {state:<42} {width:>4} px  critical={counts['critical']} "
                f"serious={counts['serious']} andra={others} (regler utan fynd: {passed})"
                + "".join(
                    f"\n      {v['impact']}: {v['id']} – {v['help']} {v['nodes']}" for v in bad
                )
            )
        return "\n".join(lines)

    def failures(self) -> list[tuple[str, int, str]]:
        return [
            (state, width, v["id"])
            for state, width, violations in self.rows
            for v in violations
            if v["impact"] in FAILING
        ]


def _assert_inline_script_refused(page: Any) -> None:
    """The real CSP is in force in this page: an inline script does not run."""
    try:
        page.add_script_tag(content="window.__inlineRan = true;")
    except Exception:  # noqa: BLE001, S110  (Playwright may report the refused script)
        pass
    assert page.evaluate("window.__inlineRan === undefined"), "an inline script ran: CSP is off"


def _goto(page: Any, url: str, status: int = 200) -> None:
    """Open a page and check it carried the production CSP, unchanged."""
    response = page.goto(url)
    assert response.status == status, (url, response.status)
    assert response.headers.get("content-security-policy") == PRODUCTION_CSP, url


def _post(page: Any, click: Callable[[], None], status: int | None = None) -> None:
    """Submit a form by a click and check the page that comes back carried the production CSP."""
    with page.expect_navigation() as nav:
        click()
    response = nav.value
    if status is not None:
        assert response.status == status, (page.url, response.status)
    # After a redirect the response is the final page's.
    assert response.headers.get("content-security-policy") == PRODUCTION_CSP, page.url


def _login(page: Any, url: str, account: dict[str, Any]) -> None:
    _goto(page, f"{url}/login")
    page.fill("#username", account["username"])
    page.fill("#password", account["password"])
    _post(page, lambda: page.click("main button[type=submit]"))
    assert "/login" not in page.url


def _fill_form(page: Any, personal_number: str) -> None:
    page.fill("#children-0-name", "Axel Axesson")
    page.fill("#children-0-personal_number", personal_number)
    page.select_option("#children-0-municipality", "0180")
    page.select_option("#children-0-district", "sdf-sodermalm")
    page.check("#concern-categories-neglect")
    page.fill("#concern-observations", "Axe-test: eleven säger att det är stökigt hemma.")
    page.check("#urgency-not_acute")
    page.check("#child_told-yes")
    page.fill("#reporter-title", "Kurator")
    page.fill("#reporter-phone", "08-000 00 02")
    page.fill("#clinic-name", "Ungdomsmottagningen Axe")
    page.select_option("#clinic-municipality", "0180")


def test_vendored_axe_is_the_published_file_with_its_licence_header() -> None:
    data = AXE_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256
    head = data[:600].decode()
    assert head.startswith("/*! axe v4.14.1") and "Mozilla Public" in head
    assert (AXE_FILE.parent / "LICENSE").is_file()


def test_axe_finds_no_serious_or_critical_violation_on_any_page_state(
    embedded: Any, browser: Any
) -> None:
    url, accounts = embedded.url, embedded.accounts
    run = AxeRun(browser, url)
    wall = time.monotonic()

    # The test-only path is not part of the app: without the route it is a 404.
    assert httpx.get(f"{url}{AXE_PATH}", timeout=30).status_code == 404

    # --- signed out: login, login with an error, 404 --------------------------------------
    ctx = run.context()
    page = ctx.new_page()
    _goto(page, f"{url}/login")
    run.check(page, "inloggning")
    assert page.evaluate("typeof axe.run") == "function"
    page.fill("#username", accounts["counselor"]["username"])
    page.fill("#password", "fel-lösenord")
    _post(page, lambda: page.click("main button[type=submit]"))
    run.check(page, "inloggning, fel lösenord")
    _goto(page, f"{url}/finns-inte", status=404)
    run.check(page, "404 (utloggad)")
    ctx.close()

    # --- counselor -----------------------------------------------------------------------
    ctx = run.context()
    page = ctx.new_page()
    _login(page, url, accounts["counselor"])
    _goto(page, f"{url}/reports/new")
    run.check(page, "kurator: tomt formulär")
    _post(page, lambda: page.click("#submit-report"), status=400)
    assert page.locator("#error-summary").is_visible()
    run.check(page, "kurator: formulär med fel (tomt skickat)")
    _fill_form(page, "120315-0000")  # wrong check digit: one error, everything else kept
    _post(page, lambda: page.click("#submit-report"), status=400)
    run.check(page, "kurator: formulär med ett fel")
    page.fill("#children-0-personal_number", pnr(date(2012, 3, 15), serial="567"))
    _post(page, lambda: page.click("#submit-report"))
    assert "/my/receipts/" in page.url
    match = REFERENCE.search(page.inner_text("main"))
    assert match, page.inner_text("main")[:1000]
    reference = match.group(0)
    run.check(page, "kurator: kvitto")
    _goto(page, f"{url}/my/reports")
    run.check(page, "kurator: mina anmälningar")
    ctx.close()

    # The intake officer sees the report once its notification went out (a real flow run).
    waited = time.monotonic()
    embedded.wait_for_mail(reference, timeout=180)
    waited = time.monotonic() - waited

    ctx = run.context()
    page = ctx.new_page()
    _login(page, url, accounts["counselor"])
    _goto(page, f"{url}/my/reports/{reference}")
    run.check(page, "kurator: en anmälan")
    _goto(page, f"{url}/my/reports/OA-2000-000000", status=404)
    run.check(page, "404 (inloggad kurator)")
    ctx.close()

    # --- intake officer --------------------------------------------------------------------
    ctx = run.context()
    page = ctx.new_page()
    _login(page, url, accounts["intake"])
    _goto(page, f"{url}/intake")
    assert reference in page.inner_text("main")
    run.check(page, "mottagning: inkorg")
    _goto(page, f"{url}/intake/reports/{reference}")
    run.check(page, "mottagning: en anmälan")
    page.click("#decline summary")
    assert page.locator("#decline details").get_attribute("open") is not None
    run.check(page, "mottagning: avböj-formuläret öppet")
    _post(page, lambda: page.click("#decline button[type=submit]"), status=400)
    assert page.locator("#error-summary").is_visible()
    run.check(page, "mottagning: avböj utan orsak (fel)")
    _goto(page, f"{url}/intake/reports/{reference}/print")
    run.check(page, "mottagning: utskriftsvy")
    ctx.close()

    # --- auditor ---------------------------------------------------------------------------
    ctx = run.context()
    page = ctx.new_page()
    _login(page, url, accounts["auditor"])
    _goto(page, f"{url}/audit")
    run.check(page, "granskare: lista")
    _goto(page, f"{url}/audit?from_date=ig%C3%A5r", status=400)
    run.check(page, "granskare: lista, filter med fel")
    _goto(page, f"{url}/audit/reports/{reference}")
    assert "Kedjan är hel" in page.inner_text("main")
    run.check(page, "granskare: anmälan och kedjan")
    _goto(page, f"{url}/audit/stats")
    run.check(page, "granskare: statistik")
    _goto(page, f"{url}/audit/stats?from_date=ig%C3%A5r", status=400)
    run.check(page, "granskare: statistik, filter med fel")
    ctx.close()

    wall = time.monotonic() - wall
    summary = run.report() + f"\n  väntan på aviseringen {waited:.1f} s, hela testet {wall:.1f} s"
    print("\n" + summary, flush=True)
    assert len(run.rows) == 2 * 20
    assert min(run.passed) > 10, summary  # axe really checked each page
    assert not run.failures(), summary


#: Per date element on the page: how many lines its text takes (1 = it did not wrap).
DATE_LINES = """() => Array.from(document.querySelectorAll('main .date')).map(el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
  return {text: el.textContent.trim(), lines: tops.size, ws: getComputedStyle(el).whiteSpace};
})"""
#: The right edge of every cell holding a state or a deadline, and the page's width.
CELLS_RIGHT = """() => ({
  width: document.documentElement.scrollWidth,
  cells: Array.from(document.querySelectorAll(
    '#my-reports td[data-label="Status"], #my-reports td[data-label="Tidsfrister"]'
  )).map(td => Math.ceil(td.getBoundingClientRect().right)),
})"""
INBOX_CELLS_RIGHT = (
    CELLS_RIGHT.replace("#my-reports", "table.inbox")
    .replace('"Status"', '"Överlämning"')
    .replace('"Tidsfrister"', '"Bekräfta senast"')
)


def test_focus_on_error_summary_and_lists_as_cards_on_a_phone(embedded: Any, browser: Any) -> None:
    """Issue 12, item 7, in Chromium on the same server: after a failed submit the focus is on
    the error summary (WCAG 2.4.3, 3.3.1), without any script of ours; at 390 px "Mina
    anmälningar" shows state and deadlines without sideways scrolling and dates on one line;
    the receipt's journal note gets its copy button when JavaScript runs."""
    url, accounts = embedded.url, embedded.accounts
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    page = ctx.new_page()
    _login(page, url, accounts["counselor"])
    _goto(page, f"{url}/reports/new")
    _post(page, lambda: page.click("#submit-report"), status=400)
    assert page.evaluate("document.activeElement && document.activeElement.id") == "error-summary"
    _fill_form(page, "120315-0000")  # one error left: the focus goes to the summary again
    _post(page, lambda: page.click("#submit-report"), status=400)
    assert page.evaluate("document.activeElement.id") == "error-summary"
    page.fill("#children-0-personal_number", pnr(date(2012, 3, 15), serial="674"))
    _post(page, lambda: page.click("#submit-report"))
    assert "/my/receipts/" in page.url
    button = page.locator("button.copy-button")
    assert button.is_visible()  # shown by /static/copy.js (hidden without JavaScript)
    button.click()
    page.wait_for_function("document.querySelector('.copy-status').textContent.length > 0")
    note = page.input_value("textarea.journal-text")
    assert note.startswith("Orosanmälan gjord ") and "Axel Axesson" not in note
    ctx.close()

    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE")
    page = ctx.new_page()
    _login(page, url, accounts["counselor"])
    _goto(page, f"{url}/my/reports")
    seen = page.evaluate(CELLS_RIGHT)
    assert seen["width"] <= 390, f"my reports scroll sideways on a phone ({seen['width']} px)"
    assert seen["cells"] and all(right <= 390 for right in seen["cells"]), seen
    dates = page.evaluate(DATE_LINES)
    assert dates, "no dates on the page"
    wrapped = [d for d in dates if d["lines"] != 1 or d["ws"] != "nowrap"]
    assert not wrapped, wrapped
    ctx.close()

    # The intake officer's inbox, the same way: handover state and deadline in view.
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE")
    page = ctx.new_page()
    _login(page, url, accounts["intake"])
    _goto(page, f"{url}/intake?status=all")
    seen = page.evaluate(INBOX_CELLS_RIGHT)
    assert seen["width"] <= 390, f"the inbox scrolls sideways on a phone ({seen['width']} px)"
    assert seen["cells"] and all(right <= 390 for right in seen["cells"]), seen
    ctx.close()
