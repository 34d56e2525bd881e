"""Every CSV a person may open is safe in a spreadsheet: no text cell is read as a formula
(OWASP's CSV-injection rule), and numbers stay numbers."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_neo.utils.output import atomic_csv, spreadsheet_safe

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("https://x.test","win")', '\'=HYPERLINK("https://x.test","win")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-12.500", "-12.500"),  # a number with a sign stays a number
        ("+5", "+5"),
        ("1e-3", "1e-3"),
        ("Ana", "Ana"),
        (12, 12),
        (Decimal("-1.5"), Decimal("-1.5")),
    ],
)
def test_a_cell_is_neutralised_only_when_a_spreadsheet_would_run_it(
    cell: object, written: object
) -> None:
    assert spreadsheet_safe(cell) == written


@given(st.text())
def test_no_text_cell_written_starts_a_formula_unless_it_is_a_plain_number(text: str) -> None:
    safe = spreadsheet_safe(text)
    if safe != text:
        assert safe == "'" + text
    elif text.startswith(TRIGGERS):
        float(text)  # left alone only because it is a plain number


@given(st.lists(st.tuples(st.text(), st.integers()), max_size=20))
def test_the_csv_writer_keeps_every_cell_but_guards_formulas(rows: list[tuple[str, int]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "out.csv"
        with atomic_csv(str(target), ["name", "points"]) as writer:
            writer.writerows(rows)
        with target.open(newline="", encoding="utf-8") as handle:
            read = list(csv.reader(handle))[1:]
    assert [(name, int(points)) for name, points in read] == [
        (spreadsheet_safe(name), points) for name, points in rows
    ]
