"""Paging (page from 1, count default 10, max 100) and the paIds batch, against ground truth."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_neo.endpoints import (
    DAS_EXPIRING_ALLOCATIONS,
    EVENT_ALLOCATIONS,
    EXPIRING_ALLOCATIONS,
    POINTS_AWARDED,
    Endpoint,
)
from airflow_provider_neo.records import PointsAllocation, decode_records
from neo_simulator.testing import RunningSimulator

WINDOW = {"expiry_date_start": "2024-01-01", "expiry_date_end": "2028-12-31"}


def _busiest_customer(sim: RunningSimulator, minimum: int) -> tuple[int, int, int, list[int]]:
    """A generated customer with at least `minimum` allocations in one program and category."""
    with sim.db() as db:
        row = db.execute(
            "SELECT customer_id, program_id, point_category_id, COUNT(*) AS n FROM allocations"
            " WHERE customer_id >= 400000001"
            " GROUP BY customer_id, program_id, point_category_id HAVING n >= ? ORDER BY n DESC",
            (minimum,),
        ).fetchone()
        assert row is not None, "the generated data should have a busy customer"
        customer_id, program_id, category_id, _ = row
        ids = [
            id_
            for (id_,) in db.execute(
                "SELECT id FROM allocations WHERE customer_id = ? AND program_id = ?"
                " AND point_category_id = ? ORDER BY id",
                (customer_id, program_id, category_id),
            )
        ]
    return customer_id, program_id, category_id, ids


def _params(customer_id: int, program_id: int, category_id: int, **extra: Any) -> dict[str, Any]:
    return {
        **WINDOW,
        "entity_id": customer_id,
        "program_id": program_id,
        "point_category_id": category_id,
        **extra,
    }


def _page(
    sim: RunningSimulator, endpoint: Endpoint[Any], params: dict[str, Any]
) -> list[PointsAllocation]:
    response = sim.get(endpoint.path, params)
    assert response.status_code == 200, response.text
    return decode_records(response.content, PointsAllocation)


@pytest.mark.parametrize(
    "endpoint", [EXPIRING_ALLOCATIONS, DAS_EXPIRING_ALLOCATIONS], ids=lambda e: e.name
)
def test_pages_concatenate_to_the_ground_truth_in_id_order(
    simulator: RunningSimulator, endpoint: Endpoint[Any]
) -> None:
    customer_id, program_id, category_id, ids = _busiest_customer(simulator, 5)
    fetched: list[int] = []
    page = 1
    while True:
        rows = _page(
            simulator, endpoint, _params(customer_id, program_id, category_id, page=page, count=2)
        )
        fetched += [row.id for row in rows]
        if len(rows) < 2:
            break
        page += 1
    assert fetched == ids


def test_count_defaults_to_ten(simulator: RunningSimulator) -> None:
    customer_id, program_id, category_id, ids = _busiest_customer(simulator, 11)
    rows = _page(simulator, EXPIRING_ALLOCATIONS, _params(customer_id, program_id, category_id))
    assert [row.id for row in rows] == ids[:10]


def test_exactly_full_last_page_is_followed_by_an_empty_page(simulator: RunningSimulator) -> None:
    customer_id, program_id, category_id, ids = _busiest_customer(simulator, 4)
    count = len(ids)
    params = _params(customer_id, program_id, category_id, count=count)
    assert [row.id for row in _page(simulator, EXPIRING_ALLOCATIONS, params)] == ids
    assert _page(simulator, EXPIRING_ALLOCATIONS, {**params, "page": 2}) == []


def test_page_past_the_end_is_empty_and_count_100_is_allowed(simulator: RunningSimulator) -> None:
    customer_id, program_id, category_id, ids = _busiest_customer(simulator, 1)
    params = _params(customer_id, program_id, category_id, count=100)
    assert len(_page(simulator, EXPIRING_ALLOCATIONS, params)) == len(ids)
    assert _page(simulator, EXPIRING_ALLOCATIONS, {**params, "page": 50}) == []


def test_event_endpoint_pages(simulator: RunningSimulator) -> None:
    with simulator.db() as db:
        entity_id, customer_id, event_type_id, n = db.execute(
            "SELECT e.entity_id, e.customer_id, e.event_type_id, COUNT(*) AS n FROM events e"
            " JOIN allocations a ON a.event_log_id = e.event_log_id"
            " GROUP BY e.event_log_id HAVING n >= 3 ORDER BY n DESC"
        ).fetchone()
    params = {"entity_id": entity_id, "customer_id": customer_id, "event_type_id": event_type_id}
    first = _page(simulator, EVENT_ALLOCATIONS, {**params, "count": 2})
    rest = _page(simulator, EVENT_ALLOCATIONS, {**params, "count": 2, "page": 2})
    whole = _page(simulator, EVENT_ALLOCATIONS, {**params, "count": 100})
    assert len(whole) == n
    assert [r.id for r in first + rest] == [r.id for r in whole][:4]
    assert all(r.customer_id == customer_id and r.event_type_id == event_type_id for r in whole)


def _paids_truth(sim: RunningSimulator, customers: list[int], status: str) -> list[int]:
    with sim.db() as db:
        return [
            id_
            for (id_,) in db.execute(
                "SELECT id FROM allocations WHERE program_id = 2282 AND point_category_id = 17383"
                f" AND status = ? AND customer_id IN ({','.join('?' * len(customers))})"
                " AND expiry_date BETWEEN ? AND ? ORDER BY id",
                (status, *customers, 0, 10**14),
            )
        ]


@pytest.mark.parametrize("separator", [",", ", "])
def test_paids_batches_many_customers_with_or_without_spaces(
    simulator: RunningSimulator, separator: str
) -> None:
    customers = list(range(400000001, 400000051))
    params = {
        "start_expiry_date": "2000-01-01", "end_expiry_date": "2099-12-31",
        "point_category_id": 17383, "program_id": 2282,
        "entity_id": separator.join(map(str, customers)), "status": "AVAILABLE",
    }  # fmt: skip
    response = simulator.get(POINTS_AWARDED.path, params)
    assert response.status_code == 200
    assert sorted(row["id"] for row in response.json()) == _paids_truth(
        simulator, customers, "AVAILABLE"
    )
    assert {row["customer_id"] for row in response.json()} <= set(customers)


def test_paids_filters_on_org_id(simulator: RunningSimulator) -> None:
    params = {
        "start_expiry_date": "2000-01-01", "end_expiry_date": "2099-12-31",
        "point_category_id": 17383, "program_id": 2282,
        "entity_id": "400000001,400000002,400000003", "status": "EXPIRED",
    }  # fmt: skip
    everything = simulator.get(POINTS_AWARDED.path, params).json()
    assert everything
    assert simulator.get(POINTS_AWARDED.path, {**params, "org_id": 50914}).json() == everything
    assert simulator.get(POINTS_AWARDED.path, {**params, "org_id": 1}).json() == []
