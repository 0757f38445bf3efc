"""Contact channels are deployment configuration; the example file is fake and complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from routing import DirectoryError, Router, clear_router_cache, get_router
from routing.channels import EXAMPLE_CHANNELS
from routing.make_example_channels import FAKE_PHONE, render


def test_example_file_is_generated_output() -> None:
    assert EXAMPLE_CHANNELS.read_text(encoding="utf-8") == render(), (
        "run: uv run python -m routing.make_example_channels"
    )


def test_example_file_is_marked_and_fake(router: Router) -> None:
    text = EXAMPLE_CHANNELS.read_text(encoding="utf-8")
    assert "EXEMPEL / EXAMPLE ONLY" in text.splitlines()[1]
    assert router.channels.is_example
    emails = re.findall(r'^email = "([^"]+)"', text, flags=re.M)
    phones = set(re.findall(r'^phone = "([^"]+)"', text, flags=re.M))
    assert emails and all(e.endswith("@example.se") for e in emails)
    assert phones == {FAKE_PHONE}
    assert len(emails) == len(router.directory.units)


def test_example_covers_every_unit(router: Router) -> None:
    assert router.units_without_channel() == []


def test_units_without_channel_lists_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    path.write_text(
        '[units.intake-0114]\nemail = "mottagning@kommun.example.se"\nverified = true\n'
        '[units.sj-vasteras]\nphone = "000-000 00 01"\n'
        '[units.intake-0115]\nportal_group = "x"\n',
        encoding="utf-8",
    )
    router = Router(channels_path=path)
    missing = router.units_without_channel()
    assert "intake-0114" not in missing and "sj-vasteras" not in missing
    assert "intake-0115" in missing  # a portal group alone reaches nobody
    assert len(missing) == len(router.directory.units) - 2
    assert not router.channels.is_example
    unit = router.unit("intake-0114")
    assert (unit.email, unit.channel_verified, unit.has_channel) == (
        "mottagning@kommun.example.se",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('[units.intake-0114]\nemail = "a@example.se"\n\n[units.intake-9999]\n', 4, "okänd enhet"),
        ('[units.intake-0114]\nemail = "not-an-address"\n', 2, "ogiltig e-postadress"),
        ('[units.intake-0114]\nmail = "a@example.se"\n', 2, "okänt fält"),
        ('[units.intake-0114]\nverified = "yes"\n', 2, "true eller false"),
        ('[units.intake-0114\nemail = "a@example.se"\n', 1, "ogiltig TOML"),
    ],
)
def test_broken_channels_file(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "channels.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(DirectoryError) as info:
        Router(channels_path=path)
    text = str(info.value)
    assert "channels.toml" in text and f"rad {line}" in text and message in text


def test_missing_channels_file(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="filen saknas"):
        Router(channels_path=tmp_path / "nope.toml")


def test_get_router_is_cached_per_path_and_reads_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_router_cache()
    monkeypatch.delenv("OROSFLOW_CHANNELS_FILE", raising=False)
    default = get_router()
    assert get_router() is default
    assert get_router(EXAMPLE_CHANNELS) is default
    assert default.channels.path == EXAMPLE_CHANNELS.resolve()
    path = tmp_path / "channels.toml"
    path.write_text('[units.intake-0114]\nemail = "a@example.se"\n', encoding="utf-8")
    monkeypatch.setenv("OROSFLOW_CHANNELS_FILE", str(path))
    configured = get_router()
    assert configured is not default
    assert configured.channels.path == path.resolve()
    assert configured.unit("intake-0114").email == "a@example.se"
    clear_router_cache()
