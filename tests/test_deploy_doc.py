"""docs/deploy.md stays true to the code (issue 16): every ``orosflow …`` command it (or the
README) shows exists with the options it uses, every ``OROSFLOW_*`` setting it names is a real
setting, and the figures it states about worker death and sizing are the code's.

Cheap and in-process: the CLI's own argparse tree and the Settings model, no server. Runs in
the suite (CI) and as ``make check-deploy``.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from orosflow.cli.main import build_parser
from orosflow.core.settings import Settings
from orosflow.handover import reconcile

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "docs" / "deploy.md"
README = ROOT / "README.md"
DOCS = (DEPLOY, README)

# `.venv/bin/orosflow ARGS` in a command block, or inline code that starts with `orosflow `.
_IN_BLOCK = re.compile(r"(?:\.venv/bin/|uv run )orosflow((?: [^|;&>`\n]*)?)")
_INLINE = re.compile(r"`orosflow((?: [^`]*)?)`")
_SETTING = re.compile(r"\bOROSFLOW_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S)


def commands(path: Path) -> list[str]:
    """Every orosflow command line the document shows, as the text after ``orosflow``."""
    text = path.read_text(encoding="utf-8")
    found = [m.group(1) for block in _code_blocks(text) for m in _IN_BLOCK.finditer(block)]
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    found += [m.group(1) for m in _INLINE.finditer(prose)]
    return [c.replace("\\|", "|").strip() for c in found if c.strip()]


def check_command(parser: argparse.ArgumentParser, line: str) -> list[str]:
    """Problems with one command line: an unknown subcommand or option. Words after the
    subcommands are arguments (placeholders, quoted values) and are not checked."""
    problems: list[str] = []
    words = line.split()
    current, path = parser, ["orosflow"]
    for word in words:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word.startswith("-"):
            break
        if word not in subs[0].choices:
            problems.append(f"`{' '.join(path)} {word}`: no such command")
            return problems
        current = subs[0].choices[word]
        path.append(word)
    if any(isinstance(a, argparse._SubParsersAction) and a.required for a in current._actions):
        problems.append(f"`{' '.join(path)}` needs a subcommand")
    for word in words:
        option = word.strip("[]").split("=", 1)[0]
        if option.startswith("--") and option not in current._option_string_actions:
            problems.append(f"`{' '.join(path)}` has no option {option}")
    return problems


def test_the_guide_shows_orosflow_commands() -> None:
    found = commands(DEPLOY)
    # The parser below would pass a guide that lost them all.
    assert {"mail test", "reconcile", "portal", "users token"} <= {
        " ".join(c.split()[:2]) if c.startswith(("mail", "users")) else c.split()[0]
        for c in found
        if c
    }


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_orosflow_command_in_the_docs_exists(doc: Path) -> None:
    parser = build_parser()
    problems = [p for line in commands(doc) for p in check_command(parser, line)]
    assert problems == [], f"{doc.name}: " + "; ".join(problems)


def test_the_checker_catches_a_wrong_command() -> None:
    parser = build_parser()
    assert check_command(parser, "mail test drift@example.se") == []
    assert check_command(parser, "mail send x") == ["`orosflow mail send`: no such command"]
    assert check_command(parser, "reconcile --every 5") == [
        "`orosflow reconcile` has no option --every"
    ]
    assert check_command(parser, "users") == ["`orosflow users` needs a subcommand"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_orosflow_setting_in_the_docs_exists(doc: Path) -> None:
    fields = {f"OROSFLOW_{name.upper()}" for name in Settings.model_fields}
    # Read elsewhere than Settings: OROSFLOW_HOME by prefect.yaml's pull step (the checkout),
    # OROSFLOW_TEST_PG_URL by the tests.
    elsewhere = {
        "OROSFLOW_HOME": ROOT / "prefect.yaml",
        "OROSFLOW_TEST_PG_URL": ROOT / "tests" / "conftest.py",
    }
    named = set(_SETTING.findall(doc.read_text(encoding="utf-8")))
    unknown = sorted(
        n
        for n in named - fields
        if n not in elsewhere or n not in elsewhere[n].read_text(encoding="utf-8")
    )
    assert unknown == [], f"{doc.name} names settings that do not exist: {unknown}"


def test_the_guides_figures_are_the_codes() -> None:
    """What the guide says about worker death, the reconciler and sizing."""
    text = " ".join(DEPLOY.read_text(encoding="utf-8").split())
    pool = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for dep in pool["deployments"]:
        assert dep["work_pool"]["job_variables"]["stream_output"] is False, dep["name"]
    assert "`stream_output: false`" in text
    assert reconcile.STALE_AFTER == timedelta(minutes=2) and "for 2 minutes" in text
    assert reconcile.PENDING_AFTER == timedelta(seconds=75) and "PENDING after 75 s" in text
    assert "10 minutes" not in text and "10-minute" not in text
    assert Settings.model_fields["flow_run_limit"].default == 4
    assert "`OROSFLOW_FLOW_RUN_LIMIT` (default 4)" in text
    assert Settings.model_fields["max_restarts"].default == 5
    assert "`OROSFLOW_MAX_RESTARTS` (default 5)" in text


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_doc_installs_uv_into_the_system_python(doc: Path) -> None:
    """PEP 668: Debian's and Ubuntu's python3 refuse it; uv goes into the private .tools/."""
    for block in _code_blocks(doc.read_text(encoding="utf-8")):
        assert not re.search(r"(^|[\s;&|(])python3? -m pip install", block, re.M), block
        assert not re.search(r"(^|[;&|(]|[^m] )pip3? install", block, re.M), block
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "TOOLS := .tools" in makefile and "-m venv $(TOOLS)" in makefile
