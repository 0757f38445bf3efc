"""The figures of docs/benchmarks.md next to those of a commit before (issue 13: f9fc58a).

``make bench`` writes the figures table; this puts, for each row and column both tables have,
"before → now" into a section of the same page. The before table is read from git (the
document as committed then), so the figures are the ones measured then, not copied by hand.
Usage::

    .venv/bin/python -m benchmarks.before_after [--before f9fc58a]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
BEFORE = "f9fc58a"
BEGIN, END = "<!-- before-after: begin -->", "<!-- before-after: end -->"


def figures(markdown: str) -> tuple[list[str], dict[str, list[str]]]:
    """The first table after ``## Figures``: its column titles and its rows by label."""
    lines = markdown.split("## Figures", 1)[-1].splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    rows = [[cell.strip() for cell in ln.strip().strip("|").split("|")] for ln in table]
    rows = [r for r in rows if not set("".join(r)) <= set("-: ")]
    if not rows:
        return [], {}
    return rows[0][1:], {r[0]: r[1:] for r in rows[1:]}


def doc_at(commit: str) -> str | None:
    """docs/benchmarks.md as committed at ``commit``, or None (e.g. a shallow clone)."""
    out = subprocess.run(
        ["git", "show", f"{commit}:docs/benchmarks.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout if out.returncode == 0 else None


def _commit_line(markdown: str) -> Iterator[str]:
    for line in markdown.splitlines():
        if line.startswith(("- commit:", "- Prefect:", "- date:")):
            yield line[2:]


def _change(old: str, new: str) -> str:
    return old if old == new else f"{old} → {new}"


def section(now: str, before: str | None, commit: str) -> str:
    if before is None:
        body = [f"The document of commit {commit} is not in this clone (`git fetch --unshallow`)."]
    else:
        cols_now, rows_now = figures(now)
        cols_before, rows_before = figures(before)
        cols = [c for c in cols_now if c in cols_before]
        head = ["", *cols]
        body = [
            f"Before: docs/benchmarks.md as committed at {commit} ("
            + ", ".join(_commit_line(before))
            + "). Now: the table above. Each cell is before → now (one value: unchanged).",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for label, values in rows_now.items():
            if label not in rows_before:
                continue
            old = dict(zip(cols_before, rows_before[label], strict=False))
            new = dict(zip(cols_now, values, strict=False))
            cells = [_change(old.get(c, "–"), new.get(c, "–")) for c in cols]
            body.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join([BEGIN, "## Before and after issue 13", "", *body, END])


def write(text: str, doc: Path = DOC) -> None:
    """Replace the section between the markers, or put it right after the figures table."""
    old = doc.read_text(encoding="utf-8")
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) :]
    elif "## How it is measured" in old:
        at = old.index("## How it is measured")
        new = old[:at] + text + "\n\n" + old[at:]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    doc.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with")
    args = parser.parse_args(argv)
    write(section(DOC.read_text(encoding="utf-8"), doc_at(args.before), args.before))
    print(f"wrote the before/after section of {DOC.relative_to(ROOT)} (before: {args.before})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
