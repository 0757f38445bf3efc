"""docs/benchmarks.md's before/after section: rows and columns both tables have, each cell
"before → now" (one value when unchanged), and a plain sentence when the old commit is absent."""

from __future__ import annotations

from benchmarks.before_after import figures, section

NOW = """# Benchmarks
- commit: abc
## Figures

|  | col A | col B |
|---|---|---|
| ratio | 4.0× | 3.0× |
| new row | 1 | 2 |
"""
BEFORE = """# Benchmarks
- date: then
- commit: old
## Figures

|  | col A | gone |
|----|----|----|
| ratio | 8.0× | 9× |
| old row | 5 | 6 |
"""


def test_figures_reads_columns_and_rows() -> None:
    cols, rows = figures(NOW)
    assert cols == ["col A", "col B"]
    assert rows == {"ratio": ["4.0×", "3.0×"], "new row": ["1", "2"]}


def test_section_pairs_common_rows_and_columns() -> None:
    text = section(NOW, BEFORE, "old")
    assert "| ratio | 8.0× → 4.0× |" in text
    assert "new row" not in text and "old row" not in text and "gone" not in text
    assert "date: then" in text and "commit: old" in text
    same = section(NOW, NOW.replace("commit: abc", "commit: x"), "x")
    assert "| ratio | 4.0× | 3.0× |" in same


def test_section_without_the_old_commit_says_so() -> None:
    assert "not in this clone" in section(NOW, None, "f9fc58a")
