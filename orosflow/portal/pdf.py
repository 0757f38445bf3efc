"""PDFs of portal pages for the case file (*diarieföring*): the page's own HTML and print CSS,
laid out by WeasyPrint as a tagged PDF/UA-1 (headings, lists and reading order survive for
screen readers), so the PDF and the print view cannot drift apart.

Only the portal's own stylesheets are fetched while rendering; any other address (a remote
font, an image link) is refused, so a rendered report never reaches out to the network.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Any

from orosflow.portal.web import STATIC_DIR

#: PDF/UA-1: a tagged PDF with a structure tree, document language and title (accessible).
PDF_VARIANT = "pdf/ua-1"
_STATIC_PREFIX = "/static/"
_BASE_URL = "https://orosflow.invalid/"
# The screen CSS's media features and vendor selectors are expected to be ignored in print:
# WeasyPrint's warnings about them would be noise on every download.
logging.getLogger("weasyprint").setLevel(logging.ERROR)


class RefusedResource(ValueError):
    """A rendered page asked for something other than the portal's own static files."""


def _static_file(url: str) -> Path:
    """The portal's static file an address names, or :class:`RefusedResource`."""
    prefix = _BASE_URL.rstrip("/") + _STATIC_PREFIX
    if not url.startswith(prefix):
        raise RefusedResource("only the portal's static files are fetched")
    root = STATIC_DIR.resolve()
    path = (root / url.removeprefix(prefix).split("?")[0]).resolve()
    if root not in path.parents or not path.is_file():
        raise RefusedResource("no such static file")
    return path


def _fetcher() -> Any:
    """WeasyPrint's URL fetcher limited to the static files (no network, no other files)."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            path = _static_file(url)
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})

    return StaticOnly()


def html_to_pdf(html: str) -> bytes:
    """The page as a tagged, accessible PDF (print media, A4 from the print CSS)."""
    # Imported here: WeasyPrint loads Pango through cffi, which only PDF requests need.
    from weasyprint import HTML

    document = HTML(string=html, base_url=_BASE_URL, url_fetcher=_fetcher())
    pdf = document.write_pdf(pdf_variant=PDF_VARIANT)
    assert pdf is not None  # write_pdf returns the bytes when no target is given
    return pdf
