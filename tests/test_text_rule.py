"""Free text (issue 11, findings 1 and 7): control characters, bidi overrides and invisible-only
values are refused at validation, in every string field of the form, each with a Swedish field
error naming the field and never echoing what was sent.

The field list is taken from the form model itself, so a text field added later is covered
without touching this test.
"""

from __future__ import annotations

import copy
import types
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, EmailStr

from models.form import ConcernForm
from models.text import CODES, text_problem
from orosflow.handover.validation import FormInvalid, validate_form

from factories import form

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

#: Texts an attacker sent to the running instance, and more of their kind.
SINGLE_LINE_ATTACKS = {
    "crlf-header": "Ungdomsmottagningen\r\nBcc: angripare@example.com",
    "lf": "Rad ett\nrad två",
    "trailing-crlf": "Mottagningen\r\n",
    "nul": "Anna\x00",
    "bel": "Anna\x07Berg",
    "esc": "\x1b[31mAnna",
    "del": "Anna\x7f",
    "c1-nel": "Anna\x85Berg",
    "c1-csi": "Anna\x9bBerg",
    "tab": "Anna\tBerg",
    "line-separator": "Anna\u2028Berg",
    "rtl-override": "\u202egnp.exe",
    "lre": "Anna\u202aBerg",
    "pdf": "Anna\u202c",
    "rli-isolate": "\u2067Anna\u2069",
    "fsi": "\u2068Anna",
    "zero-width-only": "\u200b\u200b",
    "zwj-only": "\u200d",
    "word-joiner-and-space": " \u2060 ",
    "bom-only": "\ufeff",
    "nbsp-and-zwsp": "\u00a0\u200b",
    "lone-surrogate": "Anna\ud800",
}
MULTILINE_ATTACKS = {
    k: v
    for k, v in SINGLE_LINE_ATTACKS.items()
    if k not in ("lf", "trailing-crlf", "tab", "line-separator", "crlf-header")
}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        if typing.get_origin(arg) is list:
            inner = _model_of(typing.get_args(arg)[0])
            if inner:
                return inner
    return None


def _is_text(annotation: Any) -> bool:
    if annotation is str or annotation is EmailStr:
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_text(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, str):  # EmailStr and such
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        return any(_is_text(a) for a in typing.get_args(annotation))
    return False


def text_fields(model: type[BaseModel] = ConcernForm, prefix: str = "") -> list[tuple[str, bool]]:
    """(path with list index 0, multiline?) of every string field in the form, recursively."""
    out: list[tuple[str, bool]] = []
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        is_list = typing.get_origin(info.annotation) is list
        path = f"{prefix}{name}"
        if nested is not None:
            out += text_fields(nested, f"{path}.0." if is_list else f"{path}.")
        elif _is_text(info.annotation):
            out.append((path, any(type(m).__name__ == "MultiLine" for m in info.metadata)))
    return out


def _rows() -> dict[str, dict[str, Any]]:
    return {
        "children": form()["children"][0],
        "other_children": {"name": "Lillebror", "age": 9},
        "guardians": form()["guardians"][0],
        "consultations": {"kind": "manager", "date": None},
    }


def with_value(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(form())
    parts = path.split(".")
    if parts[0] in _rows():
        data[parts[0]] = [copy.deepcopy(_rows()[parts[0]])]
    node: Any = data
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = parts[-1]
    node[last] = [value] if last == "categories" else value
    return data


def errors_of(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(FormInvalid) as exc:
        validate_form(data, now=NOW)
    return [(e.field, e.code, e.message) for e in exc.value.errors]


FIELDS = text_fields()


def test_the_form_has_the_text_fields_we_expect() -> None:
    paths = dict(FIELDS)
    assert paths["clinic.name"] is False and paths["reporter.name"] is False
    assert paths["children.0.name"] is False and paths["other_children.0.name"] is False
    assert paths["concern.observations"] is True and paths["concern.child_said"] is True
    assert "consultations.0.note" in paths and "concern.categories" in paths
    assert "children.0.municipality" in paths and "reporter.email" in paths
    assert "guardians.0.phone" in paths
    assert len(paths) >= 28


@pytest.mark.parametrize("path", [p for p, _ in FIELDS])
@pytest.mark.parametrize("attack", sorted(SINGLE_LINE_ATTACKS))
def test_every_text_field_refuses_control_bidi_and_invisible_values(path: str, attack: str) -> None:
    multiline = dict(FIELDS)[path]
    if multiline and attack not in MULTILINE_ATTACKS:
        pytest.skip("allowed in long texts")
    value = SINGLE_LINE_ATTACKS[attack]
    errs = errors_of(with_value(path, value))
    at_field = [e for e in errs if e[0] == path]
    assert at_field, f"{path} accepted {attack!r}: {errs}"
    for _, _code, message in errs:
        assert value not in message and value.strip() not in message
    # The free-text rule answers, unless the field's own format refuses it first.
    if path.rsplit(".", 1)[-1] not in ("email", "personal_number", "birth_date", "date", "age"):
        assert at_field[0][1] in CODES, at_field


@pytest.mark.parametrize("path", [p for p, multi in FIELDS if multi])
def test_long_texts_keep_line_breaks_and_tabs(path: str) -> None:
    text = "Första raden\r\nandra raden\n\tindragen rad"
    result = validate_form(with_value(path, text), now=NOW).model_dump()
    node: Any = result
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    assert node == "Första raden\nandra raden\n\tindragen rad"


@pytest.mark.parametrize(
    "text",
    [
        "Åsa Öberg-Ünal",
        "محمد",  # Arabic, as pasted (right-to-left marks allowed)
        "\u200fمحمد\u200f",
        "שלום",
        "Zoë 👩\u200d👧",  # zero-width joiner inside an emoji sequence
        "Ungdomsmottagningen\u00a0Söder",
    ],
)
def test_ordinary_text_in_any_script_is_accepted(text: str) -> None:
    assert text_problem(text) is None
    data = form(clinic={"name": text, "municipality": "0180"})
    assert validate_form(data, now=NOW).clinic.name == text.strip()


def test_message_names_the_field_and_code_point_but_not_the_value() -> None:
    [(field, code, message)] = errors_of(
        form(clinic={"name": "UM\r\nBcc: angripare@example.com", "municipality": "0180"})
    )
    assert (field, code) == ("clinic.name", "text_control_character")
    assert "U+000D" in message and "Bcc" not in message and "styrtecken" in message
