"""The generated data: deterministic, realistic, and consistent with NEO_API.md's arithmetic."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from airflow_provider_neo.endpoints import EVENT_ALLOCATIONS, EXPIRED_POINTS, EXPIRING_ALLOCATIONS
from airflow_provider_neo.records import (
    STATUSES,
    ExpiredPoints,
    PointsAllocation,
    decode_records,
)
from neo_simulator.server import SimulatorSettings, build
from neo_simulator.testing import AS_OF, CUSTOMERS, TIMEZONE, RunningSimulator

TZ = ZoneInfo(TIMEZONE)


def _digest(db_path: str) -> str:
    digest = hashlib.sha256()
    with sqlite3.connect(db_path) as db:
        for table in ("customers", "enrolments", "events", "allocations"):
            for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def _build(tmp_path: Path, name: str, **settings: Any) -> str:
    db_path = str(tmp_path / f"{name}.sqlite3")
    sim = build(SimulatorSettings(db_path=db_path, as_of=AS_OF, **settings))
    sim.store.close()
    return db_path


def test_same_seed_builds_the_same_data_and_another_seed_does_not(tmp_path: Path) -> None:
    first = _digest(_build(tmp_path, "a", customers=200, seed=1))
    again = _digest(_build(tmp_path, "b", customers=200, seed=1))
    other = _digest(_build(tmp_path, "c", customers=200, seed=2))
    assert first == again
    assert first != other


def test_customer_count_follows_the_flag(tmp_path: Path) -> None:
    db_path = _build(tmp_path, "n", customers=123, document_samples=False)
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM customers").fetchone() == (123,)


def _allocations(sim: RunningSimulator) -> list[sqlite3.Row]:
    with sim.db() as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM allocations WHERE customer_id >= 400000001").fetchall()


def test_every_expiry_is_the_last_second_of_a_day_in_the_org_time_zone(
    simulator: RunningSimulator,
) -> None:
    rows = _allocations(simulator)
    assert len(rows) > 500
    for row in rows:
        local = dt.datetime.fromtimestamp(row["expiry_date"] / 1000, TZ)
        assert (local.hour, local.minute, local.second, local.microsecond) == (23, 59, 59, 0)
        assert row["awarded_date"] < row["expiry_date"]


def test_statuses_follow_expiry_and_the_points_arithmetic_holds(
    simulator: RunningSimulator,
) -> None:
    as_of_ms = int(dt.datetime.combine(AS_OF, dt.time.min, TZ).timestamp() * 1000)
    seen: set[str] = set()
    for row in _allocations(simulator):
        status, points = row["status"], row["points_exclusive_milli"]
        redeemed = row["redeemed_exclusive_value_milli"]
        expired = row["expired_exclusive_value_milli"]
        returned = row["returned_exclusive_value_milli"]
        seen.add(status)
        assert min(points, redeemed, expired, returned) >= 0
        assert redeemed + expired + returned <= points
        if status == "AVAILABLE":
            assert row["expiry_date"] >= as_of_ms
            assert expired == 0
        if status in ("EXPIRED", "CONSUMED"):
            assert row["expiry_date"] < as_of_ms
            assert redeemed + expired == points
        if status == "CONSUMED":
            assert redeemed > 0
            assert expired > 0
        if status == "REDEEMED":
            assert redeemed == points
        if status == "RETURNED":
            assert returned == points
    assert seen == set(STATUSES)


def test_some_points_are_fractional_and_survive_the_api_exactly(
    simulator: RunningSimulator,
) -> None:
    with simulator.db() as db:
        customer_id, program_id, category_id, milli = db.execute(
            "SELECT customer_id, program_id, point_category_id, points_exclusive_milli"
            " FROM allocations WHERE points_exclusive_milli % 1000 != 0 LIMIT 1"
        ).fetchone()
    response = simulator.get(
        EXPIRING_ALLOCATIONS.path,
        {
            "entity_id": customer_id, "program_id": program_id, "point_category_id": category_id,
            "expiry_date_start": "2000-01-01", "expiry_date_end": "2099-12-31", "count": 100,
        },
    )  # fmt: skip
    records = decode_records(response.content, PointsAllocation)
    fractional = [r.points_exclusive for r in records if r.points_exclusive % 1]
    assert any(value * 1000 == milli for value in fractional)


def test_remaining_points_from_the_api_equal_the_ground_truth(simulator: RunningSimulator) -> None:
    customers = list(range(400000001, 400000031))
    from_api = Decimal(0)
    for customer_id in customers:
        for program_id, category_id in ((2282, 17383), (3379, 40022), (3379, 40023)):
            response = simulator.get(
                EXPIRING_ALLOCATIONS.path,
                {
                    "entity_id": customer_id, "program_id": program_id,
                    "point_category_id": category_id, "expiry_date_start": AS_OF.isoformat(),
                    "expiry_date_end": (AS_OF + dt.timedelta(days=400)).isoformat(), "count": 100,
                },
            )  # fmt: skip
            from_api += sum(
                r.remaining_points for r in decode_records(response.content, PointsAllocation)
            )
    with simulator.db() as db:
        (truth_milli,) = db.execute(
            "SELECT SUM(MAX(points_exclusive_milli - redeemed_exclusive_value_milli"
            " - expired_exclusive_value_milli - returned_exclusive_value_milli, 0))"
            " FROM allocations WHERE status = 'AVAILABLE' AND customer_id BETWEEN ? AND ?",
            (customers[0], customers[-1]),
        ).fetchone()
    assert from_api * 1000 == truth_milli
    assert truth_milli > 0


def test_expired_points_by_year_equal_the_ground_truth(simulator: RunningSimulator) -> None:
    with simulator.db() as db:
        customer_id, expiry_ms = db.execute(
            "SELECT customer_id, expiry_date FROM allocations"
            " WHERE status IN ('EXPIRED', 'CONSUMED') AND customer_id >= 400000001 LIMIT 1"
        ).fetchone()
        year = dt.datetime.fromtimestamp(expiry_ms / 1000, TZ).year
        low = int(dt.datetime(year, 1, 1, tzinfo=TZ).timestamp() * 1000)
        high = int(dt.datetime(year + 1, 1, 1, tzinfo=TZ).timestamp() * 1000) - 1
        (truth_milli,) = db.execute(
            "SELECT SUM(expired_exclusive_value_milli) FROM allocations"
            " WHERE customer_id = ? AND expiry_date BETWEEN ? AND ?",
            (customer_id, low, high),
        ).fetchone()
    response = simulator.get(EXPIRED_POINTS.path, {"customer_id": customer_id, "year": year})
    rows = decode_records(response.content, ExpiredPoints)
    assert sum(row.points for row in rows) * 1000 == truth_milli
    assert all(row.expired_on.year == year and row.customer_id == customer_id for row in rows)


def test_customers_route_lists_customers_with_programs_and_categories(
    simulator: RunningSimulator,
) -> None:
    customers = simulator.control("GET", "customers")
    generated = [c for c in customers if 400000001 <= c["customer_id"] < 400000001 + CUSTOMERS]
    assert len(generated) == CUSTOMERS
    with simulator.db() as db:
        enrolments = set(
            db.execute("SELECT customer_id, program_id, point_category_id FROM enrolments")
        )
    for customer in customers:
        assert customer["email"].endswith("@example.com")
        assert customer["first_name"]
        for program in customer["programs"]:
            for category in program["point_category_ids"]:
                assert (customer["customer_id"], program["program_id"], category) in enrolments
    page = simulator.control("GET", "customers", params={"limit": 5, "offset": 10})
    assert page == customers[10:15]


BILL_42 = {
    "customer_id": 990000001,
    "program_id": 2282,
    "point_category_id": 17383,
    "entity_id": "BILL-42",
    "event_type_id": 15,
}


def test_allocations_inserted_at_run_time_are_served(simulator: RunningSimulator) -> None:
    new = [
        {**BILL_42, "points": "125.5", "expiry_date": "2027-03-01"},
        {
            **BILL_42,
            "points": 10,
            "expiry_date": "2027-03-02",
            "status": "REDEEMED",
            "redeemed": 10,
        },
    ]
    response = requests.post(f"{simulator.url}/__sim/allocations", json=new, timeout=10)
    assert response.status_code == 201
    created = decode_records(response.content, PointsAllocation)
    assert [str(r.points_exclusive) for r in created] == ["125.5", "10"]
    assert created[0].event_log_id == created[1].event_log_id
    assert created[0].expires_at.astimezone(TZ) == dt.datetime(2027, 3, 1, 23, 59, 59, tzinfo=TZ)
    by_event = simulator.get(
        EVENT_ALLOCATIONS.path,
        {"entity_id": "BILL-42", "customer_id": 990000001, "event_type_id": 15},
    )
    assert [row["id"] for row in by_event.json()] == [r.id for r in created]
    window = simulator.get(
        EXPIRING_ALLOCATIONS.path,
        {"entity_id": 990000001, "program_id": 2282, "point_category_id": 17383,
         "expiry_date_start": "2027-03-01", "expiry_date_end": "2027-03-01"},
    )  # fmt: skip
    assert [row["id"] for row in window.json()] == [created[0].id]


@pytest.mark.parametrize("body", [[{"customer_id": 1}], {"not": "a list"}, "garbage"])
def test_bad_allocation_inserts_are_refused_and_insert_nothing(
    simulator: RunningSimulator, body: Any
) -> None:
    before = simulator.control("GET", "info")["rows"]["allocations"]
    response = requests.post(f"{simulator.url}/__sim/allocations", json=body, timeout=10)
    assert response.status_code == 400
    assert simulator.control("GET", "info")["rows"]["allocations"] == before
