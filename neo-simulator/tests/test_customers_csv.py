"""The CRM extract written from the simulator: every customer once, in id order, page by page."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from neo_simulator import customers_csv
from neo_simulator.testing import RunningSimulator


def test_an_extract_longer_than_a_page_holds_every_customer_once_in_id_order(
    simulator: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(customers_csv, "PAGE", 70)  # about 300 customers: several pages
    out = tmp_path / "customers.csv"
    written = customers_csv.export_customers(simulator.url, out)
    with out.open(newline="") as handle:
        rows = [(int(row["customer_id"]), row["email"]) for row in csv.DictReader(handle)]
    with simulator.db() as db:
        expected = db.execute("SELECT customer_id, email FROM customers ORDER BY customer_id")
        assert rows == list(expected)
    assert written == len(rows) > 4 * 70
