"""Accessibility of the rendered pages (WCAG 2.1 AA), checked on the HTML the portal serves:

- every sideways-scrolling table wrapper can be reached by keyboard (2.1.1): it is focusable,
  a region, and named by its table's caption;
- headings go in order: the h1 comes first (the error summary's h2 after it), no level is
  skipped, and the report's content sections sit under "Anmälans innehåll" as h3;
- a count of reports is singular or plural ("1 anmälan", "2 anmälningar");
- the date field's calendar button and the scroll wrappers get the focus ring.

The same pages in real Chromium are checked by axe-core in tests/e2e/test_axe.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from orosflow.portal.web import reports_text

from portal_support import hand_over, login, submit_example

STATIC = "orosflow/portal/static"


class _Outline(HTMLParser):
    """Headings inside <main>, in document order, and the table-scroll wrappers."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[int, str]] = []
        self.wrappers: list[dict[str, str | None]] = []
        self.captions: dict[str, str] = {}
        self._in_main = False
        self._heading: int | None = None
        self._caption: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "main":
            self._in_main = True
        elif self._in_main and re.fullmatch(r"h[1-6]", tag):
            self._heading, self._text = int(tag[1]), []
        elif tag == "div" and "table-scroll" in (a.get("class") or "").split():
            self.wrappers.append(a)
        elif tag == "caption":
            self._caption, self._text = a.get("id") or "", []

    def handle_endtag(self, tag: str) -> None:
        if tag == "main":
            self._in_main = False
        elif self._heading and tag == f"h{self._heading}":
            self.headings.append((self._heading, " ".join("".join(self._text).split())))
            self._heading = None
        elif tag == "caption" and self._caption is not None:
            if self._caption:
                self.captions[self._caption] = "".join(self._text).strip()
            self._caption = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def outline(html: str) -> _Outline:
    parser = _Outline()
    parser.feed(html)
    return parser


def assert_heading_order(html: str) -> list[tuple[int, str]]:
    """The first heading in <main> is the only h1, and no level is skipped going down."""
    heads = outline(html).headings
    assert heads and heads[0][0] == 1, heads
    assert [level for level, _ in heads].count(1) == 1, heads
    for (before, _), (level, text) in zip(heads, heads[1:], strict=False):
        assert level <= before + 1, f"h{before} → h{level} ({text}): {heads}"
    return heads


def assert_scroll_regions(html: str, expected: int) -> None:
    """Each .table-scroll wrapper is keyboard-focusable, a region, named by its caption."""
    page = outline(html)
    assert len(page.wrappers) == expected, page.wrappers
    for wrapper in page.wrappers:
        assert wrapper.get("tabindex") == "0", wrapper
        assert wrapper.get("role") == "region", wrapper
        caption = wrapper.get("aria-labelledby")
        assert caption and page.captions.get(caption), (wrapper, page.captions)
    names = [w["aria-labelledby"] for w in page.wrappers]
    assert len(set(names)) == len(names), names  # ids unique on the page


async def test_tables_that_scroll_sideways_are_named_focusable_regions(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "anna.revisor")
    assert_scroll_regions(portal.get("/audit/stats").text, 6)
    assert_scroll_regions(portal.get(f"/audit/reports/{notified_report}").text, 2)
    assert_scroll_regions(portal.get("/audit").text, 1)
    login(portal, "kim.kurator")
    assert_scroll_regions(portal.get(f"/my/reports/{notified_report}").text, 1)
    assert_scroll_regions(portal.get("/my/reports").text, 1)


async def test_headings_go_in_order_with_the_error_summary_after_the_h1(
    portal: TestClient, notified_report: str
) -> None:
    csrf = login(portal, "sara.sodermalm")
    bad = portal.post(f"/intake/reports/{notified_report}/decline", data={"csrf_token": csrf})
    assert bad.status_code == 400 and 'id="error-summary"' in bad.text
    heads = assert_heading_order(bad.text)
    assert heads[0] == (1, f"Anmälan {notified_report}")
    assert heads[1][0] == 2 and heads[1][1].startswith("Formuläret har 1 fel")
    levels = dict((text, level) for level, text in heads)
    assert levels["Anmälans innehåll"] == 2
    for section in ("Barnet", "Vårdnadshavare", "Oron", "Anmälare"):
        assert levels[section] == 3, section
    assert levels["Vad kuratorn har sett och hört"] == 4
    assert_heading_order(portal.get(f"/intake/reports/{notified_report}").text)

    # The print view has no "Anmälans innehåll" heading: its sections stay h2.
    printed = portal.get(f"/intake/reports/{notified_report}/print").text
    assert re.search(r'<h2 id="child-h">Barnet</h2>', printed)
    assert re.search(r"<h3>Vad kuratorn har sett och hört</h3>", printed)

    login(portal, "anna.revisor")
    for path in ("/audit/stats", "/audit"):
        bad = portal.get(path, params={"from_date": "igår"})
        assert bad.status_code == 400 and 'id="error-summary"' in bad.text
        heads = assert_heading_order(bad.text)
        assert heads[1][1].startswith("Formuläret har"), heads
        assert_heading_order(portal.get(path).text)


async def test_a_count_of_reports_is_singular_or_plural(
    portal: TestClient, notified_report: str
) -> None:
    assert [reports_text(n) for n in (0, 1, 2)] == ["0 anmälningar", "1 anmälan", "2 anmälningar"]
    login(portal, "sara.sodermalm")
    assert ": 1 anmälan." in portal.get("/intake").text
    login(portal, "anna.revisor")
    assert "1 anmälan</p>" in portal.get("/audit").text
    assert "<strong>1</strong> anmälan i urvalet" in portal.get("/audit/stats").text

    await hand_over(submit_example())
    login(portal, "sara.sodermalm")
    inbox = portal.get("/intake").text
    assert ": 2 anmälningar." in inbox and "1 anmälningar" not in inbox
    login(portal, "anna.revisor")
    assert "2 anmälningar</p>" in portal.get("/audit").text


def test_date_fields_calendar_button_and_scroll_wrappers_get_the_focus_ring() -> None:
    css = open(f"{STATIC}/portal.css", encoding="utf-8").read()
    ring = "outline: 3px solid var(--focus); outline-offset: 0; box-shadow: 0 0 0 5px var(--ink);"
    rules = {sel.strip(): body.strip() for sel, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)}
    ringed = [s for sel, body in rules.items() if body == ring for s in sel.split(",")]
    ringed = [" ".join(s.split()) for s in ringed]
    for selector in (
        "input[type=date]::-webkit-calendar-picker-indicator:focus-visible",
        "input[type=date]:focus-visible",
        ".table-scroll:focus",
    ):
        assert selector in ringed, (selector, ringed)
    # Its own rule: a browser that does not know the pseudo-element drops only that rule.
    picker = next(sel for sel in rules if "calendar-picker-indicator" in sel)
    assert "a:focus" not in picker
