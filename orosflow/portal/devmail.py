"""Developer view of the mail caught by the embedded SMTP capture (``var/mail``).

Only mounted when ``OROSFLOW_DEV_MAIL`` is true (``orosflow serve`` sets it when it runs its own
capture), so a newcomer can follow a report from form to notification in the browser; and then
for administrators only. The mail goes to every unit and counselor of the installation, so no
counselor, intake officer or auditor may read the others' mail here.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

from models.accounts import Role
from orosflow.core.settings import get_settings
from orosflow.portal.web import api_router, not_found_page, page_router, render

pages = page_router(Role.ADMIN, prefix="/dev")
api = api_router(Role.ADMIN, prefix="/dev", include_in_schema=False)


def enabled() -> bool:
    """Whether the dev mail view exists at all (checked when the app is built and per request)."""
    return get_settings().dev_mail


_NAME = re.compile(r"^[0-9]{6}-[A-Za-z0-9.@-]{1,80}\.eml$")


def _mail_dir() -> Path:
    if not enabled():
        raise not_found_page()
    return get_settings().var_dir / "mail"


def _summary(path: Path) -> dict[str, str]:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    return {
        "name": path.name,
        "subject": str(msg.get("Subject", "")),
        "to": str(msg.get("To", "")),
        "date": str(msg.get("Date", "")),
        "message_id": str(msg.get("Message-ID", "")).strip(),
        "body": body.get_content() if body is not None else "",
    }


@pages.get("/mail")
def mail_list(request: Request) -> Response:
    directory = _mail_dir()
    files = sorted(directory.glob("*.eml"), reverse=True)[:200] if directory.exists() else []
    return render(
        request,
        "dev/mail_list.html",
        {"title": "Fångad e-post", "mails": [_summary(p) for p in files], "directory": directory},
    )


@pages.get("/mail/{name}")
def mail_one(request: Request, name: str) -> Response:
    directory = _mail_dir()
    path = directory / name
    if not _NAME.match(name) or not path.is_file():
        raise not_found_page()
    return render(request, "dev/mail_one.html", {"title": "E-post", "mail": _summary(path)})
